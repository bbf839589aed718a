"""Hub sources: a hub that never answers gives a clear error within the configured deadline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spectrum_parsing.hub import ModelLoadError, hub_timeout

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def silent_server():
    """A TCP server that accepts connections and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()
    for conn in held:
        conn.close()


def test_cli_gives_up_on_a_silent_hub_with_one_line(silent_server, tmp_path):
    image = REPO / "examples" / "selfie.jpg"
    env = {**os.environ, "HF_ENDPOINT": silent_server, "SPECTRUM_HUB_TIMEOUT": "2", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "0"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from spectrum_parsing.cli import main; raise SystemExit(main())",
                           "parse", str(image), "--model", "owner/never-answers", "--out", str(tmp_path / "out"),
                           "--mode", "bottom-up"],
                          capture_output=True, text=True, env=env, timeout=120)
    took = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    assert "did not answer" in proc.stderr and "within 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert took < 60


def test_hub_timeout_setting(monkeypatch):
    monkeypatch.setenv("SPECTRUM_HUB_TIMEOUT", "7.5")
    assert hub_timeout() == 7.5
    monkeypatch.setenv("SPECTRUM_HUB_TIMEOUT", "soon")
    with pytest.raises(ModelLoadError, match="number of seconds"):
        hub_timeout()
