"""A small results store for the inspection tests: one run of the screw cell, simulated clock."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cells.records import ResultsStore
from cells.tightening import TighteningSpec, classify
from sim.spindle import Fault, ScrewJoint, tighten

SPEC = TighteningSpec()
#: Per cycle: its cycle time [s] and the fault of each of its two tightenings (h1, h8).
CYCLES = (
    (28.0, (Fault.NONE, Fault.NONE)),
    (35.0, (Fault.STRIPPED, Fault.NONE)),
    (30.0, (Fault.NONE, Fault.NO_SEAT)),
)


@dataclass(frozen=True)
class StoredRun:
    """What :func:`build_store` wrote: the run id and what a reader should find."""

    run_id: int
    cycle_times: tuple[float, ...]
    reasons: Counter[str]
    nok_cycles: int


def build_store(
    path: Path, cell_file: str = "cells/phone_screw.toml", t0: float = 0.0
) -> StoredRun:
    """One run: 3 cycles of pick + screw on h1 and h8, tightenings simulated and judged.

    Times are on a simulated clock starting at ``t0`` [s]; each cycle's operations fill
    its first 6 s.
    """
    reasons: Counter[str] = Counter()
    nok = 0
    with ResultsStore(path) as store:
        run = store.start_run("phone_screw", cell_file, note="inspection test")
        t = t0
        for n, (cycle_time, faults) in enumerate(CYCLES):
            cycle = store.start_cycle(run, f"SN{n:04d}", at=t)
            verdict, reason = "OK", None
            for i, (hole, fault) in enumerate(zip(("h1", "h8"), faults, strict=True)):
                s = t + 3.0 * i
                store.record_operation(cycle, "pick", "screw", "OK", started=s, finished=s + 1)
                rng = np.random.default_rng(10 * n + i)
                trace = tighten(ScrewJoint(), SPEC.program(), rng, fault)
                judgement = classify(trace, SPEC)
                reasons[judgement.reason.value] += 1
                ok = "OK" if judgement.ok else "NOK"
                if not judgement.ok and verdict == "OK":
                    verdict, reason = "NOK", judgement.reason.value
                op = store.record_operation(cycle, "screw", hole, ok, started=s + 1, finished=s + 3)
                store.record_tightening(
                    cycle, hole, trace, judgement, spec=SPEC, operation_id=op, at=s + 3
                )
            store.finish_cycle(cycle, verdict, reason, at=t + cycle_time)
            nok += verdict != "OK"
            t += cycle_time
        store.finish_run(run)
    return StoredRun(run, tuple(c for c, _ in CYCLES), reasons, nok)
