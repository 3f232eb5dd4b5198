"""``cellctl run``: the main job. Plan, validate, run, judge and record cycles of a cell.

:func:`run_cell` drives a :class:`~cells.controller.CellController` for ``cycles``
product cycles with a progress bar, records everything in the results store, prints a
closing table (time per operation, cycle time against the takt, verdicts, minimum
clearance) and returns the summary that ``--json`` writes::

    {"cell": str, "cycles": int, "cycle_time_s": float, "plan_time_s": float,
     "validate_time_s": float, "min_clearance_m": float | null,
     "operations": [{"kind": "pick_place" | "screw", "index": int,
                     "verdict": "OK" | "NOK", "reason": str | null}]}

Times are per cycle, medians over the cycles that ran; ``operations`` lists every
operation of every cycle (``index`` counts them through the run). :func:`run_cell`
returns NaN where there is no number (``min_clearance_m`` when every cycle was refused
before it ran); the JSON files carry ``null`` there (:func:`json_document`): JSON has no
NaN or infinity.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cells.cell_file import load_cell
from cells.controller import CellController
from cells.cycle_results import CycleResult, Injection
from cells.records import ResultsStore

__all__ = ["json_document", "run_cell"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def run_cell(
    cell_path: Path,
    *,
    cycles: int = 1,
    injections: Sequence[Injection] = (),
    seed: int = 0,
    db: Path | None = None,
    report: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run ``cycles`` cycles of the cell in ``cell_path``; returns the JSON summary.

    Args:
        cell_path: The cell file.
        cycles: Product cycles to run (the run stops early when the cell must stop).
        injections: Faults to plant (``FAULT@INDEX``: at the INDEX-th tightening).
        seed: Seed of the planners and the simulated spindle.
        db: Results store (``./runs/results.sqlite`` by default).
        report: Folder for ``summary.json``, ``cycles.json`` and the first cycle's
            trajectories (``.npz``, for ``cellctl inspect``).
        console: Where the progress and the table go (``None``: quiet).
    """
    cell = load_cell(cell_path)
    results: list[CycleResult] = []
    with (
        ResultsStore(db) as store,
        CellController(cell, seed=seed, store=store, injections=injections) as controller,
    ):
        run_id = store.start_run(cell.name, cell_path, note=f"seed {seed}")
        controller.run_id = run_id
        status = "failed"
        try:
            with _progress(console) as progress:
                task = progress.add_task(cell.name, total=cycles)
                for i in range(cycles):
                    result = controller.run_cycle(i)
                    results.append(result)
                    progress.update(task, advance=1, description=_describe(result))
                    if result.stop:
                        break
            stopped = bool(results) and results[-1].stop
            status = "stopped" if stopped else "finished"
        finally:
            store.finish_run(run_id, status)
        if report is not None:
            _write_report(report, controller, results)
    summary = _summary(cell.name, results)
    summary["run_id"] = run_id
    summary["status"] = status
    summary["store"] = str(store.path)
    if console is not None:
        _print_table(console, cell.name, cell.takt, results, summary)
    return summary


def json_document(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) replaced by ``None``, so that
    ``json.dumps(..., allow_nan=False)`` writes valid JSON (``null`` there).

    Dicts, lists and tuples are copied (tuples and numpy arrays become lists); numpy
    scalars become Python numbers; anything else is returned as it is.
    """
    if isinstance(value, dict):
        return {k: json_document(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_document(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_document(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, *args: object, **kwargs: object) -> None:
        return None


def _progress(console: Console | None) -> Any:
    if console is None:
        return _Quiet()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _describe(r: CycleResult) -> str:
    colour = "green" if r.verdict == "OK" else "red"
    return f"cycle {r.index + 1}: [{colour}]{r.verdict}[/] {r.cycle_time:.1f} s"


def _summary(cell: str, results: list[CycleResult]) -> dict[str, Any]:
    ran = [r for r in results if r.verdict != "ABORTED"] or results

    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else float("nan")

    ops: list[dict[str, Any]] = []
    for r in results:
        for op in r.operations:
            if op.kind == "home":
                continue
            ops.append(
                {"kind": op.kind, "index": len(ops), "verdict": op.verdict, "reason": op.reason}
            )
    clearances = [r.min_clearance for r in results if r.min_clearance == r.min_clearance]
    return {
        "cell": cell,
        "cycles": len(results),
        "cycle_time_s": med([r.cycle_time for r in ran]),
        "plan_time_s": med([r.plan_time for r in results]),
        "validate_time_s": med([r.validate_time for r in results]),
        "min_clearance_m": min(clearances) if clearances else float("nan"),
        "operations": ops,
        "verdicts": [
            {"cycle": r.index, "serial": r.serial, "verdict": r.verdict, "reason": r.reason}
            for r in results
        ],
    }


def _print_table(
    console: Console, name: str, takt: float, results: list[CycleResult], s: dict[str, Any]
) -> None:
    per_op: dict[tuple[str, str], list[float]] = defaultdict(list)
    verdicts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results:
        for op in r.operations:
            per_op[(op.kind, op.target)].append(op.end - op.start)
            verdicts[(op.kind, op.target)].append(op.verdict if op.reason is None else op.reason)
    table = Table(title=f"{name}: time per operation (median over cycles)")
    for col in ("operation", "target", "runs", "time s", "verdicts"):
        table.add_column(col, justify="right" if col in ("runs", "time s") else "left")
    for (kind, target), times in per_op.items():
        counts: dict[str, int] = defaultdict(int)
        for v in verdicts[(kind, target)]:
            counts[v] += 1
        text = ", ".join(f"{k} x{n}" for k, n in counts.items())
        table.add_row(kind, target, str(len(times)), f"{statistics.median(times):.2f}", text)
    console.print(table)
    cycles = Table(title="Cycles")
    for col in ("cycle", "serial", "verdict", "reason", "cycle s", "takt s", "plan s",
                "validate s", "min clearance mm"):  # fmt: skip
        cycles.add_column(col)
    for r in results:
        within = r.cycle_time <= takt
        ct = f"[{'green' if within else 'red'}]{r.cycle_time:.2f}[/]"
        clr = f"{r.min_clearance * 1e3:.2f}" if r.min_clearance == r.min_clearance else "-"
        colour = "green" if r.verdict == "OK" else "red"
        cycles.add_row(str(r.index + 1), r.serial, f"[{colour}]{r.verdict}[/]", r.reason or "",
                       ct, f"{takt:.1f}", f"{r.plan_time:.2f}", f"{r.validate_time:.2f}",
                       clr)  # fmt: skip
    console.print(cycles)
    console.print(
        f"run {s['run_id']} {s['status']}: {s['cycles']} cycle(s), median cycle "
        f"{s['cycle_time_s']:.2f} s (takt {takt:.1f} s), plan {s['plan_time_s']:.2f} s, "
        f"validate {s['validate_time_s']:.2f} s per cycle; records in {s['store']}"
    )


def _write_report(folder: Path, controller: CellController, results: list[CycleResult]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "cycle": r.index, "serial": r.serial, "verdict": r.verdict, "reason": r.reason,
            "cycle_time_s": r.cycle_time, "plan_time_s": r.plan_time,
            "validate_time_s": r.validate_time, "min_clearance_m": r.min_clearance,
            "segments": [list(seg) for seg in r.segments],
            "operations": [
                {"kind": o.kind, "target": o.target, "attempt": o.attempt, "verdict": o.verdict,
                 "reason": o.reason, "start": o.start, "end": o.end, "detail": o.detail}
                for o in r.operations
            ],
        }
        for r in results
    ]  # fmt: skip
    text = json.dumps(json_document(rows), indent=1, allow_nan=False, default=float)
    (folder / "cycles.json").write_text(text + "\n")
    for i, p in enumerate(controller.first_programs):
        p.trajectory.save(folder / f"{i:02d}_{p.kind}_{p.target}.npz")
