"""Validation with replay workers: the groups' physics replays side by side in worker
processes give the serial verdict, faults included; a dead worker is an error.

One controller with two workers serves the module (a spawned worker takes seconds to
start); a four-hole copy of the reference screw cell keeps each validation short.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cells.cell_file import load_cell
from cells.controller import CellController
from cells.program import Program
from planners.errors import InputError
from planners.scene import Box
from sim.replay_pool import ReplayPoolError
from sim.verdict import Verdict, ViolationKind
from sim.world import World

SCREW = Path("cells/phone_screw.toml")
HOLES = ("h1", "h8", "h4", "h5")  # four groups: one per screw, home with the last
REPLAY_KINDS = (ViolationKind.CONTACT, ViolationKind.EFFORT, ViolationKind.TRACKING)


def _cell_text(validation: str) -> str:
    text = SCREW.read_text()
    start, end = text.index("[[holes]]"), text.index("[speeds]")
    holes = "".join(f'[[holes]]\nname = "{h}"\nsite = "frame/{h}"\n\n' for h in HOLES)
    text = text[:start] + holes + text[end:] + validation
    return text.replace('screw_order = "shortest"', 'screw_order = "file"', 1)


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CellController]:
    path = tmp_path_factory.mktemp("cells") / "four_holes.toml"
    path.write_text(_cell_text("\n[validation]\nworkers = 2\n"))
    with CellController(load_cell(path), seed=3) as c:
        yield c


@pytest.fixture(scope="module")
def programs(controller: CellController) -> list[Program]:
    return controller.plan_cycle()


def _both(c: CellController, programs: list[Program]) -> tuple[Verdict, Verdict]:
    """The serial and the parallel verdict of the same programs."""
    c.workers = 1
    try:
        serial = c.validate(programs)
    finally:
        c.workers = 2
    return serial, c.validate(programs)


def _same(serial: Verdict, parallel: Verdict) -> None:
    assert parallel.ok == serial.ok
    assert parallel.violations == serial.violations
    assert parallel.min_clearance == serial.min_clearance
    assert parallel.clearance_pair == serial.clearance_pair
    assert parallel.clearance_time == serial.clearance_time


def test_parallel_replays_give_the_serial_verdict(
    controller: CellController, programs: list[Program]
) -> None:
    assert controller.workers == 2  # from the cell file
    serial, parallel = _both(controller, programs)
    assert serial.ok, serial.first
    _same(serial, parallel)
    # the replays ran (in the workers), and tracked the same: the same physics
    for key in ("replay_steps", "replay_max_error", "replay_peak_torque_ratio"):
        assert parallel.stats[key] == serial.stats[key]


def test_a_dead_worker_fails_the_validation(
    controller: CellController, programs: list[Program]
) -> None:
    controller.validate(programs[:1])  # the workers are up
    pool = controller._pool
    assert pool is not None and pool._executor is not None
    pids = list(pool._executor._processes)  # type: ignore[attr-defined]
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    with pytest.raises(ReplayPoolError, match="worker process died"):
        controller.validate(programs)
    controller.validate(programs[:1])  # new workers
    pool = controller._pool
    assert pool is not None and pool._executor is not None
    os.kill(next(iter(pool._executor._processes)), signal.SIGKILL)  # type: ignore[attr-defined]
    cycle = controller.run_cycle(0)  # a cycle whose validation failed does not run
    assert cycle.verdict == "ABORTED" and cycle.stop and cycle.operations == []
    assert "worker process died" in (cycle.reason or "")


def test_a_hung_worker_fails_the_validation_in_time(
    controller: CellController, programs: list[Program]
) -> None:
    home = programs[-1:]  # a short move: the wait is the timeout + twice its duration
    assert controller.validate(home).ok  # the workers are up
    pool = controller._pool
    assert pool is not None and pool._executor is not None
    pids = list(pool._executor._processes)  # type: ignore[attr-defined]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # alive, never answering
    timeout, pool.timeout = pool.timeout, 0.2
    try:
        started = time.monotonic()
        with pytest.raises(ReplayPoolError, match=r"no verdict .* within"):
            controller.validate(home)
        assert time.monotonic() - started < 0.2 + 2 * home[0].duration + 5.0
    finally:
        pool.timeout = timeout
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert controller.validate(home).ok  # new workers


def test_planted_box_in_a_later_group_is_found_as_in_serial(
    controller: CellController, programs: list[Program]
) -> None:
    """A box the planner never saw above the third hole: the sweep stops at that group,
    whose replay (in a worker) runs into the box; the parallel verdict is the serial one,
    with the same kind, place and time of every violation."""
    third = programs[2]
    assert third.target == HOLES[2]
    leg = next(s for s in third.segments if s.label == f"approach {HOLES[2]}")
    q = third.trajectory.sample([0.5 * (leg.start + leg.end)])[0]
    box = Box("intruder", np.asarray(controller.arm.fk(q).A), [0.01, 0.01, 0.01])
    spec = controller.world.spec
    planted = type(spec)(spec.arms, spec.bodies, (*spec.obstacles, box), spec.gravity)
    original, screen = controller.world, controller.screen
    with World(planted) as world:
        controller.world, controller.screen = world, None  # type: ignore[assignment]
        try:
            # new workers with the box (the broken pool above is replaced too)
            assert controller.validate(programs[:2]).ok  # the first two groups are clear
            serial, parallel = _both(controller, programs)
        finally:
            controller.world, controller.screen = original, screen
    assert not serial.ok
    assert any("intruder" in v.where for v in serial.of_kind(ViolationKind.COLLISION))
    replayed = serial.of_kind(*REPLAY_KINDS)
    assert replayed, serial.violations  # the replay in the third group's world hit it too
    _same(serial, parallel)
    assert [(v.kind, v.where, v.time) for v in parallel.of_kind(*REPLAY_KINDS)] == [
        (v.kind, v.where, v.time) for v in replayed
    ]


def test_workers_key_of_the_cell_file(tmp_path: Path) -> None:
    assert load_cell(SCREW).validation_workers == 1  # the default: serial
    cases = {
        "workers = 0": "got an integer 0, expected an integer in [1, 64]",
        "workers = 1.5": "got a number 1.5, expected an integer in [1, 64]",
        'workers = "2"': "got a string '2', expected an integer in [1, 64]",
        "worker = 2": "unknown key, expected one of: workers",
    }
    for line, problem in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(_cell_text(f"\n[validation]\n{line}\n"))
        key = line.split(" = ")[0]
        with pytest.raises(InputError) as info:
            load_cell(path)
        assert str(info.value) == f"{path}:validation.{key}: {problem}"
    with pytest.raises(InputError, match="workers: got 0, expected an integer >= 1"):
        CellController(load_cell(SCREW), workers=0)
