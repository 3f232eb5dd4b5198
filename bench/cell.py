"""Cell benchmark: plan + validate wall time per cycle, cycle time per screw and per part.

For each reference cell (``cells/phone_screw.toml``: 8 screws; ``cells/phone_pick_place.toml``:
3 parts) one :class:`~cells.controller.CellController` plans a whole cycle and validates
it ``repeats`` times after one warm-up cycle (numba kernels compiled, sphere models
built):

* **plan**: every operation's program (IK, transfers on the sphere model, Cartesian
  lines, timing under joint limits and TCP caps);
* **validate**: the exact sweep with the sphere screen, then the 1 kHz physics replay
  (with ``workers`` > 1 the replays of the cycle's groups run side by side in that many
  worker processes, started in the warm-up); **sweep only** is the sweep alone (the
  kinematic check without physics);
* **cycle time**: simulated time of the cycle (the programs back to back, the spindle
  included, back to ``ready``), per screw or per placed part.

Medians over the repeats; the machine is shared, so compare within a run.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cells.cell_file import load_cell
from cells.controller import CellController

__all__ = ["CELLS", "print_table", "run"]

_HERE = Path(__file__).resolve().parent.parent / "cells"
CELLS = (_HERE / "phone_screw.toml", _HERE / "phone_pick_place.toml")


def run(
    repeats: int = 5, progress: Console | None = None, workers: int | None = None
) -> dict[str, Any]:
    """Measure both reference cells; returns ``{"cells": [...]}`` with medians.

    ``workers``: replay processes, overriding each cell file's ``[validation] workers``.
    """
    rows = []
    for path in CELLS:
        cell = load_cell(path)
        with CellController(cell, seed=0, workers=workers) as c:
            if progress is not None:
                progress.print(f"{cell.name}: warm-up cycle (compiles kernels, builds models)")
            c.validate(c.plan_cycle())
            plan, full, sweep = [], [], []
            cycle_time = 0.0
            for i in range(repeats):
                if progress is not None:
                    progress.print(f"{cell.name}: run {i + 1}/{repeats}")
                t0 = time.perf_counter()
                programs = c.plan_cycle()
                t1 = time.perf_counter()
                verdict = c.validate(programs)
                t2 = time.perf_counter()
                c.physics = False
                c.validate(programs)
                c.physics = True
                t3 = time.perf_counter()
                plan.append(t1 - t0)
                full.append(t2 - t1)
                sweep.append(t3 - t2)
                if not verdict.ok:
                    raise RuntimeError(f"{cell.name}: validation failed: {verdict.first}")
                cycle_time = sum(p.duration for p in programs)
        units = len(cell.holes) or len(cell.parts)
        screws = [p for p in programs if p.kind == "screw"]
        parts = [p for p in programs if p.kind == "pick_place"]
        ops = screws or parts
        med_plan, med_full, med_sweep = (statistics.median(v) for v in (plan, full, sweep))
        rows.append(
            {
                "cell": cell.name,
                "unit": "screw" if screws else "part",
                "units": units,
                "workers": c.workers,
                "plan_s": med_plan,
                "validate_s": med_full,
                "sweep_only_s": med_sweep,
                "plan_validate_s": med_plan + med_full,
                "plan_sweep_s": med_plan + med_sweep,
                "cycle_time_s": cycle_time,
                "cycle_time_per_unit_s": cycle_time / units,
                "operation_time_median_s": statistics.median(p.duration for p in ops),
                "takt_s": cell.takt,
                "min_clearance_m": verdict.min_clearance,
            }
        )
    return {"repeats": repeats, "cells": rows}


def print_table(console: Console, result: dict[str, Any]) -> None:
    """Print the figures."""
    table = Table(title=f"Reference cells: one cycle (median of {result['repeats']} runs)")
    cols = ("cell", "workers", "plan s", "validate s", "sweep only s", "plan+validate s",
            "cycle s", "per screw/part s", "takt s", "min clearance mm")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right")
    for r in result["cells"]:
        table.add_row(
            r["cell"], str(r["workers"]), f"{r['plan_s']:.3f}", f"{r['validate_s']:.3f}",
            f"{r['sweep_only_s']:.3f}", f"{r['plan_validate_s']:.3f}", f"{r['cycle_time_s']:.2f}",
            f"{r['cycle_time_per_unit_s']:.2f} / {r['unit']}", f"{r['takt_s']:.1f}",
            f"{r['min_clearance_m'] * 1e3:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "targets: screw cycle <= 1.5 s per screw including the presenter pick; "
        "plan + validate an 8-screw cycle <= 2 s wall (reach 0.5 s)"
    )
