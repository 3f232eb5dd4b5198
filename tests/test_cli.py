"""The command line: the demo runs, bad input ends in one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cells.cli import app


def test_demo_runs_both_reference_cells(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--cycles", "1", "--db", str(tmp_path / "d.db")])
    assert result.exit_code == 0, result.output
    assert "phone_pick_place" in result.output and "phone_screw" in result.output
    # pick and place: every part placed; screws: the planted cross-thread is found
    assert "camera_module" in result.output and "battery" in result.output
    assert "cross_thread" in result.output
    assert result.output.count("run ") >= 2 and "finished" in result.output


def test_typed_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad_cell.toml"
    bad.write_text(
        Path("cells/phone_screw.toml").read_text().replace('arm = "ur5e"', 'arm = "ur99"', 1)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cells", "check-cell", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "bad_cell.toml:" in lines[0] and "ur99" in lines[0]
    assert "ur5e" in lines[0]  # the valid arms are listed
    assert "Traceback" not in proc.stderr
