"""cellctl keys, and refusals of serve-arm / serve as one line and exit 2."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cells.cli import app, main


def test_keys_command_writes_keys(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    secret = tmp_path / "k" / "server" / "server.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (tmp_path / "k" / "allowed" / "client.key").is_file()


def test_serve_refuses_without_keys_and_plaintext_off_loopback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        ["serve", "--bind", "ipc:///tmp/rc-cli-test"],
        ["serve", "--bind", "tcp://0.0.0.0:5999", "--insecure-plaintext"],
        ["serve-arm", "--robot", "ur5e", "--bind", "ipc:///tmp/rc-cli-arm"],
    ):
        monkeypatch.setattr(sys, "argv", ["cellctl", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("error:"), err
        assert "Traceback" not in err


def test_serve_arm_unknown_start_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve-arm", "--robot", "ur5e", "--bind", "ipc:///tmp/rc-cli-arm-start"]
    monkeypatch.setattr(sys, "argv", ["cellctl", *args, "--insecure-plaintext", "--start", "nope"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nope" in err[0], err
    assert "ready" in err[0]  # the valid names
