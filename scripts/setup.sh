#!/usr/bin/env bash
# Create .venv and install Spectrum (editable) with its dev tools, on the CPU build of PyTorch 2.13.
# Idempotent: re-running only installs what is missing. Set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# PyTorch first and pinned: an unpinned torch would pull the multi-GB CUDA build.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
# dev: tests and linters (playwright drives Debian's /usr/bin/chromium; never run `playwright install`);
# demo: `spectrum serve` (FastAPI, uvicorn, python-multipart).
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,demo]"
echo "setup done: $(.venv/bin/python -c 'import spectrum_parsing, torch; print("spectrum_parsing", spectrum_parsing.__version__, "torch", torch.__version__)')"
