"""What ``make demo`` runs: both reference cells, end to end, on the simulated cell.

For each reference cell (``cells/phone_pick_place.toml``, ``cells/phone_screw.toml``):
plan every operation of a cycle, validate the programs in PyBullet (exact sweep and
1 kHz physics replay), run them on the simulated arm, gripper and spindle, judge every
tightening and record everything in the results store. The screw cell's first cycle
has a cross-threaded screw planted at its fourth hole: the classifier finds it and the
cell rejects that phone (its reaction policy), then the next cycle runs clean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from cells.cycle_results import Injection
from cells.run_job import run_cell
from sim.spindle import Fault

__all__ = ["REFERENCE_CELLS", "run_demo"]

_HERE = Path(__file__).resolve().parent
REFERENCE_CELLS = (_HERE / "phone_pick_place.toml", _HERE / "phone_screw.toml")


def run_demo(
    console: Console, seed: int = 0, cycles: int = 2, db: Path | None = None
) -> list[dict[str, Any]]:
    """Run both reference cells for ``cycles`` cycles each; returns their summaries."""
    out = []
    for path in REFERENCE_CELLS:
        planted = [Injection(Fault.CROSS_THREAD, 3)] if "screw" in path.stem else []
        note = " (cross-thread planted at the 4th tightening)" if planted else ""
        console.rule(f"[bold]{path.name}[/]{note}")
        out.append(
            run_cell(path, cycles=cycles, injections=planted, seed=seed, db=db, console=console)
        )
    return out
