"""The command line: the demo runs, bad input ends in one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from cells.cli import app


def test_demo_solves_every_target() -> None:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert result.output.count("yes") == 10
    assert " no " not in result.output


def test_typed_error_is_one_line_and_exit_code_2() -> None:
    code = (
        "import sys; sys.argv = ['cellctl', 'demo'];"
        "import cells.demo as d; from planners import load_arm;"
        "d._ARMS = (('ur99', None),);"
        "from cells.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: unknown arm 'ur99'; valid: panda, ur5e"]
    assert "Traceback" not in proc.stderr
