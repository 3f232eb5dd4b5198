"""What the arm's limits are worth to the screw cycle: a what-if, planning only.

The screw cell's cycle is planned (not validated) with the arm model's jerk and
acceleration limits scaled in the time parameterization of every move, and the cycle
time per screw is reported per scale, with the segments' medians. It answers "how much
of the cycle is the arm model and how much the process": the fixed process time (insert,
vacuum, engage, drive) does not scale, the short jerk-bound moves and the transfers do.

The scaled limits exist only here (the arm's ``limits`` are replaced in the timing
calls of :mod:`cells.program`); nothing validates or runs these cycles.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import cells.program as program_module
from cells.cell_file import load_cell
from cells.tasks import TaskPlanner

__all__ = ["DEFAULT_SCALES", "print_table", "run"]

_CELL = Path(__file__).resolve().parent.parent / "cells" / "phone_screw.toml"
# (jerk, acceleration) scales: the model, stiffer jerk, then the UR5e's ~14 rad/s^2 too
DEFAULT_SCALES = ((1.0, 1.0), (2.0, 1.0), (4.0, 1.0), (10.0, 1.0), (4.0, 1.75), (10.0, 1.75))


@contextlib.contextmanager
def _scaled_timing(jerk: float, acceleration: float) -> Iterator[None]:
    original = program_module.time_parameterize

    def scaled(path: Any, limits: Any, **kwargs: Any) -> Any:
        limits = dataclasses.replace(
            limits, jerk=limits.jerk * jerk, acceleration=limits.acceleration * acceleration
        )
        return original(path, limits, **kwargs)

    program_module.time_parameterize = scaled
    try:
        yield
    finally:
        program_module.time_parameterize = original


def run(
    scales: Sequence[tuple[float, float]] = DEFAULT_SCALES, cell_path: Path = _CELL
) -> dict[str, Any]:
    """Plan one screw cycle per (jerk, acceleration) scale; per-screw figures."""
    cell = load_cell(cell_path)
    rows = []
    for jerk, acceleration in scales:
        with _scaled_timing(jerk, acceleration):
            planner = TaskPlanner(cell, seed=0)
            q = planner.home()
            programs = []
            for hole in cell.holes.values():
                programs.append(planner.screw(hole, q))
                q = programs[-1].q_end
        segments: dict[str, list[float]] = {}
        for p in programs:
            for s in p.segments:
                segments.setdefault(s.label.replace(p.target, "hole"), []).append(s.duration)
        rows.append({
            "jerk_scale": jerk,
            "acceleration_scale": acceleration,
            "per_screw_s": statistics.mean(p.duration for p in programs),
            "segments_median_s": {k: statistics.median(v) for k, v in segments.items()},
        })  # fmt: skip
    return {"cell": cell.name, "screws": len(cell.holes), "rows": rows}


def print_table(console: Console, result: dict[str, Any]) -> None:
    """Print the figures."""
    table = Table(title=f"{result['cell']}: cycle per screw with the arm's limits scaled")
    table.add_column("jerk x", justify="right")
    table.add_column("accel x", justify="right")
    table.add_column("per screw s", justify="right")
    table.add_column("ratio to model", justify="right")
    table.add_column("segments (median s)")
    base = result["rows"][0]["per_screw_s"]
    for r in result["rows"]:
        segs = ", ".join(f"{k} {v:.2f}" for k, v in r["segments_median_s"].items())
        table.add_row(
            f"{r['jerk_scale']:g}", f"{r['acceleration_scale']:g}", f"{r['per_screw_s']:.3f}",
            f"{r['per_screw_s'] / base:.3f}", segs,
        )  # fmt: skip
    console.print(table)
    console.print("target: 1.5 s per screw including the presenter pick (planning only here)")
