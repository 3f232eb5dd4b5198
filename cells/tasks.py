"""Task logic: the pick-and-place and screw-driving operations of a cell, as programs.

:class:`TaskPlanner` turns one operation into a :class:`~cells.program.Program`:

* **pick and place** (:meth:`TaskPlanner.pick_place`): collision-free transfer to above
  the part, Cartesian descent (approach speed, then the insert speed for the last
  millimetres), grasp (gripper closing, the part attached), Cartesian lift, transfer
  with the part held (its shapes move with the TCP in the collision model), Cartesian
  descent into the target, release (the part detached), Cartesian retreat;
* **screw driving** (:meth:`TaskPlanner.screw`): transfer to above the presenter, bit
  down into the screw's recess at the insert speed, vacuum on (the screw attached) and
  a check that it is on the bit, lift, transfer with the screw to above the hole with
  the bit on the hole's axis (any axis direction), approach along the axis, engage at
  the engage speed until the screw tip is on the thread, drive (the spindle runs the
  screw down; the arm follows the screw at its feed, pitch x spindle speed), retract
  along the axis.

Transfers are planned by :func:`planners.plan` on the sphere model of the world as it is
at that moment (parts put down where they were put, the held part at the TCP) with a
padding; Cartesian segments by :func:`planners.cartesian_line` (branch jumps are
refused). Every segment is timed under the arm's joint limits and its kind's TCP speed
cap. Nothing here runs anything: the controller validates each program in PyBullet
first.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from cells.cell_model import Cell, Hole, Part, Robot, SegmentKind
from cells.program import Move, PlanningError, Program, ProgramBuilder
from planners.cartesian import cartesian_line, chord_of
from planners.ik import solve_ik
from planners.plan import plan
from planners.space import collision_space
from sim.replay import ToolAction
from sim.world import BodySpec, WorldSpec
from sim.world_scene import WorldScene

__all__ = [
    "LINE_TOLERANCE",
    "SCREW_BODY",
    "PickProcess",
    "ScrewProcess",
    "TaskPlanner",
    "seated_body",
    "world_spec_of",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

SCREW_BODY = "screw"  # the world body of the screw on its way from the presenter
LINE_TOLERANCE = 1e-4  # m: how far a Cartesian move's TCP may stray from its line
# Where the bodies that stand for driven screws wait until their screw is driven: far
# below the cell, 0.1 m apart (out of every check's reach) [m].
_PARKED = np.array([0.0, 0.0, -10.0])


def seated_body(hole: str) -> str:
    """The world body that stands for the screw driven into ``hole``."""
    return f"{SCREW_BODY}@{hole}"


@dataclass(frozen=True)
class ScrewProcess:
    """Timing of the screw process (the spindle and the pick-up at the presenter).

    Attributes:
        rundown_rpm: Spindle speed during the run-down [rev/min].
        final_rpm: Spindle speed for the last ``final_angle`` [rev/min].
        final_angle: Angle run at the slow speed before shut-off [deg].
        vacuum_time: Bit on the screw until the vacuum holds it [s].
        engage_distance: Last part of the approach at the engage speed [m].
        clear_height: Bit tip this far above the presenter or the hole between
            operations [m].
    """

    rundown_rpm: float = 1500.0
    final_rpm: float = 200.0
    final_angle: float = 60.0
    vacuum_time: float = 0.05
    engage_distance: float = 0.001
    clear_height: float = 0.015

    def drive_time(self, angle: float) -> float:
        """Spindle time for ``angle`` [deg] of run-down and tightening [s]."""
        slow = min(angle, self.final_angle)
        return (angle - slow) / (6.0 * self.rundown_rpm) + slow / (6.0 * self.final_rpm)


@dataclass(frozen=True)
class PickProcess:
    """Timing of the gripper.

    Attributes:
        close_time: Gripper closing on a part [s].
        open_time: Gripper opening [s].
        clear_height: TCP this far above a pick or a place between operations [m].
        insert_height: The last part of a descent at the insert speed [m].
    """

    close_time: float = 0.15
    open_time: float = 0.1
    clear_height: float = 0.04
    insert_height: float = 0.004


class TaskPlanner:
    """Plans the operations of one robot of a cell.

    Args:
        cell: The cell.
        robot: The robot's name (the cell's first robot by default).
        padding: Distance the transfers keep from everything (sphere model) [m].
        seed: Seed of the planners (a seed fixes every program).
        plan_timeout: Time limit of one transfer plan [s].
    """

    def __init__(
        self,
        cell: Cell,
        robot: str | None = None,
        *,
        padding: float = 0.003,
        seed: int = 0,
        plan_timeout: float = 2.0,
        screw_process: ScrewProcess | None = None,
        pick_process: PickProcess | None = None,
    ) -> None:
        self.cell = cell
        self.robot: Robot = cell.robot(robot) if robot else next(iter(cell.robots.values()))
        self.arm = self.robot.arm
        self.spec = world_spec_of(cell)
        self.scene = WorldScene(self.spec, self.arm, padding=padding)
        self.rng = np.random.default_rng(seed)
        self.plan_timeout = plan_timeout
        self.screw_process = screw_process or ScrewProcess()
        self.pick_process = pick_process or PickProcess()
        self.moved: dict[str, NDArray[np.float64]] = {}

    # ------------------------------------------------------------------ building blocks
    def home(self) -> NDArray[np.float64]:
        """Where every cycle starts and ends: the arm's ``ready`` (or ``home``) configuration."""
        configs = self.arm.configurations
        return np.array(configs.get("ready", configs.get("home", np.zeros(self.arm.dof))))

    def _cap(self, kind: SegmentKind) -> float | None:
        return self.cell.speeds.caps.get(kind)

    def ik(
        self,
        T: NDArray[np.float64],
        q_ref: NDArray[np.float64],
        what: str,
        held: Mapping[str, NDArray[np.float64]] | None = None,
        rolls: int = 1,
    ) -> NDArray[np.float64]:
        """A collision-free IK solution for TCP pose ``T`` nearest ``q_ref``.

        With ``rolls`` > 1 the tool may turn about its z axis (a symmetric bit): the
        roll whose solution is nearest ``q_ref`` wins.
        """
        model = self.scene.model(held, self.moved)
        best: NDArray[np.float64] | None = None
        reason = "no solution"
        for k in range(rolls):
            R = np.eye(4)
            a = 2.0 * math.pi * k / rolls
            R[:2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
            res = solve_ik(self.arm, T @ R, q_ref, rng=self.rng)
            if not res.success:
                reason = str(res.reason)
                continue
            q = np.asarray(res.q)
            if not bool(model.valid(q[None])[0]):
                reason = "every solution found is in collision"
                continue
            if best is None or np.linalg.norm(q - q_ref) < np.linalg.norm(best - q_ref):
                best = q
        if best is None:
            raise PlanningError(f"{what}: IK failed: {reason}")
        return best

    def transfer(
        self,
        b: ProgramBuilder,
        q_goal: NDArray[np.float64],
        label: str,
        held: Mapping[str, NDArray[np.float64]] | None = None,
    ) -> None:
        """Collision-free joint-space move from the builder's configuration to ``q_goal``."""
        if np.max(np.abs(b.q - q_goal)) < 1e-9:
            return
        model = self.scene.model(held, self.moved)
        space = collision_space(model, self.arm)
        result = plan(space, b.q, q_goal, rng=self.rng, timeout=self.plan_timeout)
        if not result.success:
            raise PlanningError(f"{label}: {result.status.value}: {result.reason}")
        b.move(result.path, label, SegmentKind.TRANSFER, self._cap(SegmentKind.TRANSFER))

    def line(
        self,
        b: ProgramBuilder,
        T_goal: NDArray[np.float64],
        label: str,
        kind: SegmentKind,
        min_duration: float = 0.0,
    ) -> None:
        """Straight TCP line from the builder's configuration to ``T_goal``.

        A short line is one jerk-limited move along its chord when the chord keeps the
        TCP within :data:`LINE_TOLERANCE` of the line (and 1 mrad of its orientation).
        """
        path = self._line_path(b.q, T_goal, label)
        chord = chord_of(self.arm, path, LINE_TOLERANCE)
        b.move(path if chord is None else chord, label, kind, self._cap(kind), min_duration)

    def _line_path(
        self, q: NDArray[np.float64], T_goal: NDArray[np.float64], label: str
    ) -> NDArray[np.float64]:
        res = cartesian_line(self.arm, q, T_goal, step=0.002)
        if not res.success:
            raise PlanningError(f"{label}: Cartesian line failed: {res.reason}")
        return np.asarray(res.path)

    def two_speed_line(
        self,
        b: ProgramBuilder,
        T_change: NDArray[np.float64],
        T_goal: NDArray[np.float64],
        labels: tuple[str, str],
        kinds: tuple[SegmentKind, SegmentKind],
    ) -> None:
        """A straight TCP line to ``T_goal`` whose cap changes at ``T_change`` (a point on
        it: the approach slows to the insert or engage speed for its last millimetres, a
        pick-and-place lift speeds up after its first): two segments, passed from one to
        the other at speed when the whole line is one joint-space chord within
        :data:`LINE_TOLERANCE`, else two lines (each a chord when it can be) with a stop
        between."""
        first = self._line_path(b.q, T_change, labels[0])
        second = self._line_path(first[-1], T_goal, labels[1])
        chord = chord_of(self.arm, np.vstack([first, second[1:]]), LINE_TOLERANCE)
        if chord is None:
            for path, label, kind in zip((first, second), labels, kinds, strict=True):
                part = chord_of(self.arm, path, LINE_TOLERANCE)
                b.move(path if part is None else part, label, kind, self._cap(kind))
            return
        # the cut: where T_change's configuration projects onto the chord (the chord
        # keeps the TCP within the tolerance of the line, so the cut's TCP is too)
        d = chord[1] - chord[0]
        u = float(np.clip((first[-1] - chord[0]) @ d / (d @ d), 0.0, 1.0))
        mid = chord[0] + u * d
        b.flow([
            Move(np.stack([chord[0], mid]), labels[0], kinds[0], self._cap(kinds[0])),
            Move(np.stack([mid, chord[1]]), labels[1], kinds[1], self._cap(kinds[1])),
        ])  # fmt: skip

    # ------------------------------------------------------------------ operations
    def pick_place(self, part: Part, q_start: NDArray[np.float64]) -> Program:
        """Pick ``part`` where it waits and place it at its target, from ``q_start``."""
        p = self.pick_process
        b = ProgramBuilder(self.arm, np.asarray(q_start, dtype=np.float64))
        name = part.name
        pick_pose = self.moved.get(name, part.pose)
        pick = pick_pose @ part.grasp
        place = part.target @ part.grasp
        up, ins = p.clear_height, p.insert_height
        q_above = self.ik(_back_off(pick, up), b.q, f"above {name} (pick)")
        self.transfer(b, q_above, f"transfer to {name}")
        labels = (f"approach {name}", f"insert fingers at {name}")
        kinds = (SegmentKind.APPROACH, SegmentKind.INSERT)
        self.two_speed_line(b, _back_off(pick, ins), pick, labels, kinds)
        b.dwell(p.close_time, f"grasp {name}")
        b.event(ToolAction.GRASP, name)
        grip = np.linalg.inv(pick) @ pick_pose  # T_tcp_part
        held = {name: grip}
        up_kinds = (SegmentKind.RETRACT, SegmentKind.APPROACH)
        labels = (f"pull {name} free", f"lift {name}")
        self.two_speed_line(b, _back_off(pick, ins), _back_off(pick, up), labels, up_kinds)
        q_place = self.ik(_back_off(place, up), b.q, f"above {name} (place)", held)
        self.transfer(b, q_place, f"transfer {name}", held)
        labels = (f"approach place {name}", f"insert {name}")
        self.two_speed_line(b, _back_off(place, ins), place, labels, kinds)
        b.event(ToolAction.RELEASE, name)
        b.dwell(p.open_time, f"release {name}")
        self.moved[name] = np.array(part.target)
        labels = (f"fingers off {name}", f"retreat from {name}")
        self.two_speed_line(b, _back_off(place, ins), _back_off(place, up), labels, up_kinds)
        return b.build("pick_place", name, self.robot.name)

    def screw(
        self, hole: Hole, q_start: NDArray[np.float64], at_presenter: bool = False
    ) -> Program:
        """Take a screw at the presenter and drive it into ``hole``, from ``q_start``.

        ``at_presenter``: the bit is still in the presenter's nest after a failed pick;
        it first lifts straight out along the screw axis.
        """
        sp = self.screw_process
        feed = self.cell.feed_for(hole.screw)
        screw = feed.screw
        b = ProgramBuilder(self.arm, np.asarray(q_start, dtype=np.float64))
        if at_presenter:
            T = np.asarray(self.arm.fk(b.q).A)
            T[:3, 3] = feed.tcp_pose(sp.clear_height)[:3, 3]
            self.line(b, T, "lift empty bit", SegmentKind.RETRACT)
        at_screw = feed.tcp_pose(0.0)
        q_above = self.ik(feed.tcp_pose(sp.clear_height), b.q, f"above {feed.name}", rolls=8)
        self.transfer(b, q_above, f"transfer to {feed.name}")
        roll = _roll_of(self.arm, q_above, feed.tcp_pose(sp.clear_height))
        self.two_speed_line(b, _rolled(feed.tcp_pose(0.003), roll), _rolled(at_screw, roll),
                            ("approach screw", "bit into screw"),
                            (SegmentKind.APPROACH, SegmentKind.INSERT))  # fmt: skip
        b.dwell(sp.vacuum_time, "vacuum on")
        b.event(ToolAction.GRASP, SCREW_BODY)
        T_tcp = np.asarray(self.arm.fk(b.q).A)
        grip = np.linalg.inv(T_tcp) @ feed.pose  # T_tcp_screw
        held = {SCREW_BODY: grip}
        self.line(b, _rolled(feed.tcp_pose(sp.clear_height), roll), "lift screw",
                  SegmentKind.RETRACT)  # fmt: skip
        # The bit tip over the hole: the screw's head height + length above the hole top.
        seated = screw.head_height
        start = seated + screw.length
        above = hole.tcp_pose(start + sp.clear_height)
        q_hole = self.ik(above, b.q, f"above {hole.name}", held, rolls=8)
        roll = _roll_of(self.arm, q_hole, above)
        self.transfer(b, q_hole, f"transfer to {hole.name}", held)
        self.two_speed_line(b, _rolled(hole.tcp_pose(start + sp.engage_distance), roll),
                            _rolled(hole.tcp_pose(start), roll),
                            (f"approach {hole.name}", f"engage {hole.name}"),
                            (SegmentKind.APPROACH, SegmentKind.ENGAGE))  # fmt: skip
        drive_time = sp.drive_time(screw.seat_angle + sp.final_angle)
        t0 = b.time
        # The arm follows the screw down at its feed (pitch x spindle speed), no faster.
        feed_speed = screw.pitch * sp.rundown_rpm / 60.0
        res = cartesian_line(self.arm, b.q, _rolled(hole.tcp_pose(seated), roll), step=0.001)
        if not res.success:
            raise PlanningError(f"drive {hole.name}: Cartesian line failed: {res.reason}")
        b.move(res.path, f"drive {hole.name}", SegmentKind.ENGAGE, feed_speed, drive_time)
        b.spindle(hole.name, t0, b.time)
        b.event(ToolAction.RELEASE, SCREW_BODY)
        seated_pose = np.asarray(self.arm.fk(b.q).A) @ grip
        self.line(b, _rolled(hole.tcp_pose(start + sp.clear_height), roll),
                  f"retract from {hole.name}", SegmentKind.RETRACT)  # fmt: skip
        # The screw stays in the hole: later transfers plan around it, later programs
        # are validated with its stand-in body there.
        left = {seated_body(hole.name): seated_pose}
        self.moved.update(left)
        return b.build("screw", hole.name, self.robot.name, (SCREW_BODY,), left)

    def screw_order(self, holes: list[Hole]) -> list[Hole]:
        """The holes in the order with the shortest estimated cycle.

        Every screw is a round trip from the presenter (presenter -> hole -> presenter),
        so the order changes only the last leg: from the last hole the arm goes home
        instead of back to the presenter. The estimate of a leg is its joint-space lower
        bound (largest joint distance over that joint's velocity limit) between the IK
        configurations above the presenter and each hole; the hole that saves the most as
        the last one moves to the end, the others keep the file's order.
        """
        if len(holes) < 2:
            return list(holes)
        sp = self.screw_process
        v = np.asarray(self.arm.limits.velocity)
        home = self.home()

        def t(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
            return float(np.max(np.abs(a - b) / v))

        feed = self.cell.feed_for(holes[0].screw)
        q_feed = self.ik(feed.tcp_pose(sp.clear_height), home, f"above {feed.name}", rolls=8)
        gain = []
        for hole in holes:
            screw = self.cell.feed_for(hole.screw).screw
            above = hole.tcp_pose(screw.head_height + screw.length + sp.clear_height)
            q = self.ik(above, q_feed, f"above {hole.name}", rolls=8)
            gain.append(t(q, home) - t(q, q_feed))
        last = int(np.argmin(gain))
        return [h for i, h in enumerate(holes) if i != last] + [holes[last]]

    def return_home(self, q_start: NDArray[np.float64]) -> Program:
        """Back to :meth:`home` (the end of a cycle)."""
        b = ProgramBuilder(self.arm, np.asarray(q_start, dtype=np.float64))
        self.transfer(b, self.home(), "return home")
        return b.build("home", "home", self.robot.name)


def world_spec_of(cell: Cell, driven: bool = True) -> WorldSpec:
    """The cell's world; when it drives screws, a screw body at the first presenter (the
    one on its way) and, with ``driven``, per hole a fixed body for the driven screw,
    parked far below the cell until the controller puts it in its hole
    (:func:`seated_body`). Drawings leave the parked bodies out (``driven=False``)."""
    spec = cell.world_spec()
    if not cell.holes:
        return spec
    feed = cell.feed_for(next(iter(cell.holes.values())).screw)
    bodies = [BodySpec(SCREW_BODY, feed.screw.model, feed.pose, fixed=False)]
    for i, hole in enumerate(cell.holes.values() if driven else ()):
        parked = np.eye(4)
        parked[:3, 3] = _PARKED - [0.0, 0.0, 0.1 * i]
        model = cell.feed_for(hole.screw).screw.model
        bodies.append(BodySpec(seated_body(hole.name), model, parked))
    return replace(spec, bodies=(*spec.bodies, *bodies))


def _back_off(T: NDArray[np.float64], distance: float) -> NDArray[np.float64]:
    out = np.array(T, dtype=np.float64)
    out[:3, 3] -= distance * out[:3, 2]
    return out


def _roll_of(arm: object, q: NDArray[np.float64], T: NDArray[np.float64]) -> float:
    """The tool's roll about its z axis at ``q`` relative to pose ``T`` [rad]."""
    A = np.asarray(arm.fk(q).A)  # type: ignore[attr-defined]
    R = T[:3, :3].T @ A[:3, :3]
    return math.atan2(R[1, 0], R[0, 0])


def _rolled(T: NDArray[np.float64], roll: float) -> NDArray[np.float64]:
    R = np.eye(4)
    R[:2, :2] = [[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]]
    return np.asarray(T) @ R
