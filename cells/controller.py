"""The cell controller: plan a cycle, validate it in PyBullet, run it, judge, react, record.

One cycle of a cell is one product: the cell's parts placed (in file order) and its
screws driven (in the cell's ``screw_order``), then back to ``ready``. :class:`CellController` does,
for each cycle:

1. **plan**: one :class:`~cells.program.Program` per operation (:mod:`cells.tasks`);
2. **validate** every program before anything moves (:func:`sim.validate.validate`:
   exact sweep with clearance and limits, then the 1 kHz physics replay with grasps,
   releases and placed-part poses), plus each segment's own TCP speed cap. Programs in
   which no body is grasped twice are validated as one trajectory, so parts put down
   earlier in the cycle are where they were put; each screw is its own group (the
   presenter offers a new screw each time). With more than one validation worker the
   groups are swept here and replayed side by side in worker processes
   (:class:`sim.replay_pool.ReplayPool`), with the same verdict. A cycle with a
   violation does not run: the run stops with the violation as its reason;
3. **execute** each program on the simulated arm (:class:`sim.sim_arm.SimArm`, position
   control at 1 kHz) and the simulated spindle (:func:`sim.spindle.tighten`) at each
   drive; the arm's tracking error is watched;
4. **judge** every tightening (:func:`cells.tightening.classify`) and **react** with the
   cell's policy: retry (a new screw, re-planned and re-validated), reject the part (the
   rest of the cycle is skipped, the arm goes home), or stop the cell;
5. **record** the cycle, every operation and every tightening with its trace in the
   results store, each committed as it happens.

Times in the store are the cell's clock: in simulation, the simulated time of the run
anchored at its start (so a cycle's ``finished - started`` is its cycle time).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cells.cell_model import Cell, Hole, ScrewOrder
from cells.cycle_results import CycleResult, Injection, OperationResult, PickFault
from cells.program import PlanningError, Program, Segment
from cells.records import ResultsStore
from cells.tasks import SCREW_BODY, TaskPlanner, seated_body
from cells.tightening import Judgement, Reaction, Reason, classify
from planners.errors import InputError, RobotCellError
from planners.trajectory import Trajectory
from sim.replay import ReplaySettings, ToolAction, ToolEvent
from sim.replay_pool import ReplayJob, ReplayPool, ReplayPoolError
from sim.screen import WorldScreen
from sim.sim_arm import SimArm
from sim.spindle import Fault, TighteningTrace, tighten
from sim.sweep import SweepSettings
from sim.validate import validate
from sim.verdict import Verdict
from sim.world import World

__all__ = ["CellController"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

TRACKING_LIMIT = 0.02  # rad: the executing arm stops when it falls this far behind


class CellController:
    """Plans, validates, runs and records cycles of one cell on the simulated arm.

    Args:
        cell: The cell.
        seed: Seed of the planners and of the simulated spindle.
        store: Where records go (``None``: nothing is recorded).
        injections: Faults to plant, by tightening index in the run.
        physics: Validate with the physics replay too (the sweep always runs).
        workers: Processes for the physics replays (``None``: the cell file's
            ``[validation] workers``; 1: serial, in this process).
    """

    def __init__(
        self,
        cell: Cell,
        *,
        seed: int = 0,
        store: ResultsStore | None = None,
        injections: Sequence[Injection] = (),
        physics: bool = True,
        workers: int | None = None,
    ) -> None:
        workers = cell.validation_workers if workers is None else workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError(f"workers: got {workers!r}, expected an integer >= 1")
        self.workers = workers
        self._pool: ReplayPool | None = None  # started on the first parallel validation
        self.cell = cell
        self.planner = TaskPlanner(cell, seed=seed)
        self.robot = self.planner.robot
        self.arm = self.robot.arm
        self.store = store
        self.physics = physics
        self.spindle_rng = np.random.default_rng(seed + 1)
        self.faults = {i.index: i.fault for i in injections}
        self.screw_attempts = 0  # every screw attempt of the run: the index of injections
        self.world = World(self.planner.spec)
        self.screen = WorldScreen(self.world, self.robot.name)
        self.sim = SimArm(self.arm, 1000.0, q0=self.planner.home())
        self.run_id: int | None = None
        self.first_programs: list[Program] = []  # the first cycle's plan, for reports
        self._screw_order: list[Hole] = []  # chosen once per cell
        self._seated: dict[str, NDArray[np.float64]] = {}  # this cycle's screws driven OK
        self._clock = time.time()  # the cell's clock at the start of the current cycle

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release the simulators and the replay workers."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self.sim.close()
        self.world.close()

    def __enter__(self) -> CellController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plan, validate
    def plan_cycle(self) -> list[Program]:
        """The programs of one cycle from ``ready``: parts, then screws, then home.

        Raises:
            PlanningError: an operation could not be planned (the step and reason).
        """
        self.planner.moved.clear()
        q = self.planner.home()
        programs = []
        for part in self.cell.parts.values():
            programs.append(self.planner.pick_place(part, q))
            q = programs[-1].q_end
        holes = list(self.cell.holes.values())
        if self.cell.screw_order is ScrewOrder.SHORTEST:
            holes = self._screw_order or self.planner.screw_order(holes)
            self._screw_order = holes
        for hole in holes:
            programs.append(self.planner.screw(hole, q))
            q = programs[-1].q_end
        programs.append(self.planner.return_home(q))
        return programs

    def validate(
        self,
        programs: Sequence[Program],
        placed: Mapping[str, NDArray[np.float64]] | None = None,
    ) -> Verdict:
        """Validate programs that run one after the other; the first violation wins.

        ``placed``: bodies already where earlier programs left them (screws driven
        before a re-plan), by name; each program's own :attr:`Program.left` bodies and
        placed parts are put in the world for the programs after it.

        Per-segment TCP caps are checked here; the sweep checks the largest cap. With
        ``workers`` > 1 every group is swept first (up to the first that fails), then
        their replays run in the worker processes; the verdicts merge in group order
        exactly as the serial path's.

        Raises:
            ReplayPoolError: a replay worker died (the programs are not validated).
        """
        for program in programs:
            capped = program.tcp_cap_violations(self.arm)
            if capped:
                return Verdict(tuple(capped))
        verdict = Verdict(())
        caps = [s.tcp_cap for p in programs for s in p.segments if s.tcp_cap is not None]
        sweep_settings = SweepSettings(tcp_speed=max(caps) if caps else None)
        parts = self.cell.parts
        tolerance = min((p.tolerance_position for p in parts.values()), default=2e-4)
        angle = min((p.tolerance_rotation for p in parts.values()), default=np.radians(0.5))
        replay_settings = ReplaySettings(part_tolerance=(tolerance, angle))
        allowed = [(self.robot.name, p) for p in parts] + [(self.robot.name, SCREW_BODY)]
        allowed += [(p, f.name) for p in parts for f in self.cell.fixtures.values()]
        allowed += [(SCREW_BODY, f.name) for f in self.cell.fixtures.values()]
        allowed += [
            (seated_body(h), f.name) for h in self.cell.holes for f in self.cell.fixtures.values()
        ]
        bodies = {*self.world.arms, *self.world.bodies}  # a cell without screws has none
        allowed = [(a, b) for a, b in allowed if a in bodies and b in bodies]
        self.world.reset()
        parallel = self.physics and self.workers > 1
        swept: list[tuple[Verdict, Future[Any]]] = []  # the parallel path's sweeps, replays
        placed = dict(placed or {})
        for group in _groups(programs):
            traj, events = _joined(group)
            targets = {e.part: parts[e.part].target for e in events if e.part in parts}
            for name, T in placed.items():
                self.world.set_body_pose(name, T)
            result = validate(
                self.world,
                self.robot.name,
                traj,
                events=events,
                allowed_contacts=allowed,
                part_targets={k: v for k, v in targets.items()},
                sweep_settings=sweep_settings,
                replay_settings=replay_settings,
                screen=self.screen,
                physics=self.physics and not parallel,
                fastened=(SCREW_BODY,),
                placed=placed,
            )
            if parallel:
                job = ReplayJob(self.robot.name, traj, tuple(events), targets, tuple(allowed),
                                replay_settings, (SCREW_BODY,), dict(placed))  # fmt: skip
                swept.append((result, self._replay_pool().submit(job)))  # runs while we sweep
            else:
                verdict = verdict.merged(result)
            if not result.ok:
                break
            placed.update(targets)
            for p in group:
                placed.update(p.left)
        self.world.reset()
        return self._replayed(swept) if parallel else verdict

    def _replay_pool(self) -> ReplayPool:
        """The replay workers, started for the current world and worker count."""
        pool = self._pool
        if pool is None or pool.spec is not self.world.spec or pool.workers != self.workers:
            if pool is not None:
                pool.close()
            pool = self._pool = ReplayPool(self.world.spec, self.workers)
        return pool

    def _replayed(self, swept: Sequence[tuple[Verdict, Future[Any]]]) -> Verdict:
        """Each group's sweep merged with its replay (from the pool), in group order, up
        to the first group with a violation: the serial path's verdict."""
        verdict = Verdict(())
        pool = self._replay_pool()
        for k, (sweep, future) in enumerate(swept):
            result = sweep.merged(pool.result(future))
            verdict = verdict.merged(result)
            if not result.ok:
                for _, later in swept[k + 1 :]:  # their verdicts would not count
                    pool.discard(later)
                break
        return verdict

    # ------------------------------------------------------------------ execute
    def execute(self, program: Program, until: float | None = None) -> float:
        """Run ``program`` (up to time ``until``) on the simulated arm at 1 kHz; its largest
        tracking error [rad].

        Raises:
            RobotCellError: the arm fell more than :data:`TRACKING_LIMIT` behind (it is
                stopped where it is).
        """
        traj = program.trajectory
        end = traj.duration if until is None else min(until, traj.duration)
        times = np.arange(0.0, end + 1e-9, 1e-3)
        Q = traj.sample(times, 0)
        QD = traj.sample(times, 1)
        worst = 0.0
        for k in range(len(times)):
            self.sim.command(Q[k], QD[k])
            q, _ = self.sim.read()
            err = float(np.max(np.abs(q - Q[min(k + 1, len(times) - 1)])))
            worst = max(worst, err)
            if err > TRACKING_LIMIT:
                self.sim.emergency_stop()
                raise RobotCellError(
                    f"{program.kind} {program.target}: tracking error {err:.4f} rad at "
                    f"t={times[k]:.3f} s (limit {TRACKING_LIMIT} rad): stopped"
                )
        return worst

    def tighten(
        self, hole_name: str, fault: Fault = Fault.NONE
    ) -> tuple[Judgement, TighteningTrace]:
        """Drive one screw with the simulated spindle (``fault`` planted); judge it."""
        hole = self.cell.hole(hole_name)
        screw = self.cell.feed_for(hole.screw).screw
        trace = tighten(screw.joint(), hole.tightening.program(), self.spindle_rng, fault)
        return classify(trace, hole.tightening), trace

    # ------------------------------------------------------------------ a cycle
    def run_cycle(self, index: int, serial: str | None = None) -> CycleResult:
        """Plan, validate and run one cycle; records it when there is a store."""
        serial = serial or f"{self.cell.name}-{index + 1:06d}"
        t0 = time.perf_counter()
        try:
            programs = self.plan_cycle()
        except PlanningError as exc:
            return self._refused(index, serial, f"planning: {exc}", time.perf_counter() - t0, 0.0)
        plan_time = time.perf_counter() - t0
        if not self.first_programs:
            self.first_programs = list(programs)
        t0 = time.perf_counter()
        try:
            verdict = self.validate(programs)
        except ReplayPoolError as exc:  # not validated: the cycle must not run
            why = f"validation: {exc}"
            return self._refused(index, serial, why, plan_time, time.perf_counter() - t0)
        validate_time = time.perf_counter() - t0
        if not verdict.ok:
            why = f"validation: {verdict.first}"
            return self._refused(index, serial, why, plan_time, validate_time)
        result = CycleResult(
            index, serial, "OK", None, 0.0, plan_time, validate_time, verdict.min_clearance
        )
        cycle_id = self._start_cycle(serial)
        self.sim.reset(programs[0].q_start)
        clock = 0.0
        pending = list(programs)
        attempts: dict[str, int] = {}
        self._seated = {}
        while pending:
            program = pending.pop(0)
            attempt = attempts.get(program.target, 0) + 1
            attempts[program.target] = attempt
            start = clock
            for s in program.segments:
                kind = s.kind.value if s.kind else "dwell"
                result.segments.append((s.label, kind, start + s.start, start + s.end))
            until = None
            if program.kind == "screw" and (
                self.faults.get(self.screw_attempts) is PickFault.EMPTY_PICK
            ):
                until = _segment(program, "vacuum on").end
            try:
                self.execute(program, until)
            except RobotCellError as exc:
                clock += program.duration
                op = OperationResult(program.kind, program.target, attempt, "NOK", "tracking",
                                     start, clock, str(exc))  # fmt: skip
                self._record_op(cycle_id, op)
                result.operations.append(op)
                result.verdict, result.reason, result.stop = "NOK", f"tracking: {exc}", True
                break
            clock += program.duration
            if program.kind != "screw":
                op = OperationResult(
                    program.kind, program.target, attempt, "OK", None, start, clock
                )
                self._record_op(cycle_id, op)
                result.operations.append(op)
                continue
            planted = self.faults.get(self.screw_attempts, Fault.NONE)
            self.screw_attempts += 1
            if planted is PickFault.EMPTY_PICK:  # the vacuum check after the pick fails
                q_stop, clock = self._empty_pick(program, start, cycle_id, attempt, result)
                holes = [program.target] + [p.target for p in pending if p.kind == "screw"]
                build = functools.partial(self._screws_then_home, holes, at_presenter=True)
                reaction = self.cell.reaction.react(Reason.MISSING_SCREW, attempt)
                replanned = (
                    self._replanned(build, q_stop, result) if reaction is Reaction.RETRY else None
                )
                if replanned is None:
                    if reaction is not Reaction.RETRY:
                        result.verdict, result.reason = "NOK", Reason.MISSING_SCREW.value
                        result.stop = True  # the arm stands in the presenter: nothing to plan
                    break
                pending = replanned
                continue
            assert isinstance(planted, Fault)
            judgement, trace = self.tighten(program.target, planted)
            spin = program.spindle[0]
            needed = self.planner.screw_process.drive_time(trace.final_angle)
            clock += max(0.0, needed - (spin.end - spin.start))  # the arm waits for the spindle
            ok = judgement.ok
            op = OperationResult("screw", program.target, attempt, "OK" if ok else "NOK",
                                 None if ok else judgement.reason.value, start, clock,
                                 judgement.detail, judgement)  # fmt: skip
            op_id = self._record_op(cycle_id, op)
            if self.store is not None and cycle_id is not None:
                self.store.record_tightening(
                    cycle_id, program.target, trace, judgement,
                    spec=self.cell.hole(program.target).tightening, attempt=attempt,
                    operation_id=op_id, at=self._clock + start + spin.end,
                )  # fmt: skip
            result.operations.append(op)
            if ok:
                self._seated.update(program.left)
            reaction = self.cell.reaction.react(judgement.reason, attempt)
            if reaction is Reaction.CONTINUE:
                continue
            if reaction is Reaction.RETRY:  # a new screw into the same hole, then the rest
                holes = [program.target] + [p.target for p in pending if p.kind == "screw"]
                replanned = self._replanned(
                    functools.partial(self._screws_then_home, holes), program.q_end, result
                )
                if replanned is None:
                    break
                pending = replanned
                continue
            result.verdict, result.reason = "NOK", judgement.reason.value
            if reaction is Reaction.STOP_CELL:
                result.stop = True
                break
            home = self._replanned(lambda q: [self.planner.return_home(q)], program.q_end, result)
            pending = home or []
            if home is None:
                break
        result.cycle_time = clock
        self._finish_cycle(cycle_id, result)
        return result

    # ------------------------------------------------------------------ helpers
    def _empty_pick(
        self, program: Program, start: float, cycle_id: int | None, attempt: int,
        result: CycleResult,
    ) -> tuple[NDArray[np.float64], float]:  # fmt: skip
        """Record the failed vacuum check; where the arm stopped and the cycle clock then."""
        vac = _segment(program, "vacuum on")
        clock = start + vac.end
        detail = "vacuum check after the pick: no screw on the bit"
        op = OperationResult("screw", program.target, attempt, "NOK",
                             Reason.MISSING_SCREW.value, start, clock, detail)  # fmt: skip
        self._record_op(cycle_id, op)
        result.operations.append(op)
        return program.trajectory.sample([vac.end])[0], clock

    def _screws_then_home(
        self, holes: list[str], q: NDArray[np.float64], at_presenter: bool = False
    ) -> list[Program]:
        out = []
        for h in holes:  # not driven yet: no screw there to plan around
            self.planner.moved.pop(seated_body(h), None)
        for i, h in enumerate(holes):
            out.append(self.planner.screw(self.cell.hole(h), q, at_presenter and i == 0))
            q = out[-1].q_end
        out.append(self.planner.return_home(q))
        return out

    def _replanned(
        self,
        build: Callable[[NDArray[np.float64]], list[Program]],
        q: NDArray[np.float64],
        result: CycleResult,
    ) -> list[Program] | None:
        """Plan and validate programs from ``q`` mid-cycle; ``None`` stops the cell."""
        t0 = time.perf_counter()
        try:
            programs = build(q)
        except PlanningError as exc:
            result.verdict, result.reason, result.stop = "NOK", f"planning: {exc}", True
            return None
        t1 = time.perf_counter()
        verdict = self.validate(programs, self._seated)
        result.plan_time += t1 - t0
        result.validate_time += time.perf_counter() - t1
        if not verdict.ok:
            result.verdict, result.reason = "NOK", f"validation: {verdict.first}"
            result.stop = True
            return None
        result.min_clearance = min(result.min_clearance, verdict.min_clearance)
        return programs

    def _refused(
        self, index: int, serial: str, reason: str, plan_time: float, validate_time: float
    ) -> CycleResult:
        logger.error("cycle %s refused: %s", serial, reason)
        result = CycleResult(index, serial, "ABORTED", reason, 0.0, plan_time, validate_time,
                             float("nan"), stop=True)  # fmt: skip
        cycle_id = self._start_cycle(serial)
        self._finish_cycle(cycle_id, result)
        return result

    def _start_cycle(self, serial: str) -> int | None:
        if self.store is None or self.run_id is None:
            return None
        return self.store.start_cycle(self.run_id, serial, at=self._clock)

    def _finish_cycle(self, cycle_id: int | None, result: CycleResult) -> None:
        if self.store is not None and cycle_id is not None:
            self.store.finish_cycle(
                cycle_id, result.verdict, result.reason, at=self._clock + result.cycle_time
            )
        self._clock += result.cycle_time

    def _record_op(self, cycle_id: int | None, op: OperationResult) -> int | None:
        if self.store is None or cycle_id is None:
            return None
        return self.store.record_operation(
            cycle_id, op.kind, op.target, op.verdict, op.reason,
            started=self._clock + op.start, finished=self._clock + op.end,
            attempt=op.attempt, detail=op.detail,
        )  # fmt: skip


def _segment(program: Program, label: str) -> Segment:
    return next(s for s in program.segments if s.label == label)


def _groups(programs: Sequence[Program]) -> list[list[Program]]:
    """Consecutive programs in which no body is grasped twice."""
    groups: list[list[Program]] = [[]]
    grasped: set[str] = set()
    for p in programs:
        parts = {e.part for e in p.events if e.action is ToolAction.GRASP}
        if parts & grasped:
            groups.append([])
            grasped = set()
        groups[-1].append(p)
        grasped |= parts
    return [g for g in groups if g]


def _joined(group: Sequence[Program]) -> tuple[Trajectory, list[ToolEvent]]:
    """One trajectory and its events for programs that run back to back."""
    pieces, events, t = [], [], 0.0
    for p in group:
        pieces.append(p.trajectory.shifted(t))
        events += [ToolEvent(e.time + t, e.action, e.part) for e in p.events]
        t += p.duration
    return (pieces[0] if len(pieces) == 1 else Trajectory.concatenate(pieces)), events
