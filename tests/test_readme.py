"""Every README snippet runs as written: Python blocks are executed, shell lines are parsed by the real CLI."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _commands() -> list[list[str]]:
    """Every ``spectrum ...`` command of the README's bash blocks, as argv (after the ``spectrum`` word)."""
    found = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                for prefix in (["spectrum"], [".venv/bin/spectrum"], ["accelerate", "launch", "-m",
                                                                      "spectrum_parsing.cli"]):
                    if words[:len(prefix)] == prefix:
                        found.append(words[len(prefix):])
                if words[:1] == ["bash"]:
                    assert (ROOT / words[1]).is_file(), f"README runs {words[1]}, which does not exist"
    return found


def test_readme_shell_commands_use_commands_and_flags_that_exist():
    from spectrum_parsing.cli import build_parser

    commands = _commands()
    assert len(commands) >= 5 and {c[0] for c in commands} >= {"parse", "train", "eval"}
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as err:  # argparse exits 2 on an unknown command or flag
            pytest.fail(f"README command `spectrum {' '.join(argv)}` is refused by the CLI ({err})")
    for path in re.findall(r"--config (\S+\.yaml)", README):
        if "CONFIG" not in path and "C.yaml" not in path:
            assert (ROOT / path).is_file(), f"README names {path}, which does not exist"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_snippets_run_as_written(index, tmp_path):
    """Run in a fresh process from a folder that holds the repository's ``examples/`` (so files the snippet
    writes, such as ``build/tiny`` or ``my-model``, stay out of the checkout)."""
    code = _blocks("python")[index]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SPECTRUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, f"README Python block {index} failed:\n{code}\n{proc.stderr[-3000:]}"
