"""cellctl keys, and refusals of serve-arm / serve as one line and exit 2."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cells.cli import app


def test_keys_command_writes_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    secret = tmp_path / "k" / "server" / "server.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (tmp_path / "k" / "allowed" / "client.key").is_file()


def test_serve_refuses_without_keys_and_plaintext_off_loopback(tmp_path: Path) -> None:
    for args in (
        ["serve", "--bind", "ipc:///tmp/rc-cli-test"],
        ["serve", "--bind", "tcp://0.0.0.0:5999", "--insecure-plaintext"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "cells", *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("error:")
        assert "Traceback" not in out.stderr
