"""bench cell-limits: a stiffer arm model plans a shorter screw cycle; nothing leaks out."""

from __future__ import annotations

import cells.program as program_module
from bench.cell_limits import run


def test_stiffer_limits_shorten_the_moves_not_the_process() -> None:
    original = program_module.time_parameterize
    result = run(scales=((1.0, 1.0), (4.0, 1.0)))
    assert program_module.time_parameterize is original  # the what-if is undone
    model, stiff = result["rows"]
    assert result["screws"] == 8
    assert stiff["per_screw_s"] < model["per_screw_s"] - 0.1
    a, b = model["segments_median_s"], stiff["segments_median_s"]
    assert abs(a["vacuum on"] - 0.05) < 1e-9 and abs(b["vacuum on"] - 0.05) < 1e-9  # a dwell
    assert b["approach hole"] < a["approach hole"]  # a short jerk-bound move does
