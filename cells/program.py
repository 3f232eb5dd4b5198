"""A program: what one operation of a cell does, as timed motion plus tool events.

The task logic (:mod:`cells.tasks`) builds one :class:`Program` per operation (place a
part, drive a screw): a single :class:`~planners.trajectory.Trajectory` for the arm,
the :class:`Segment` s it is made of (each with its kind and TCP speed cap), the tool
events (grasp, release) at their times and the spindle runs. The controller validates
a program in PyBullet before anything runs and executes the same object afterwards.

:class:`ProgramBuilder` appends joint paths (timed under the arm's limits and the
segment's TCP cap, rest to rest) and dwells (the gripper closing, the spindle running)
one after the other. :meth:`ProgramBuilder.flow` appends moves along one joint-space line
(a descent whose TCP speed cap drops for its last millimetres): each keeps its own cap,
and the arm passes from one to the next at speed instead of stopping.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from cells.cell_model import SegmentKind
from planners.arm import Arm
from planners.errors import RobotCellError
from planners.limit_check import tcp_speeds
from planners.timing import time_parameterize
from planners.timing_path import dedupe
from planners.trajectory import Trajectory
from sim.replay import ToolAction, ToolEvent
from sim.verdict import Violation, ViolationKind

__all__ = ["Move", "PlanningError", "Program", "ProgramBuilder", "Segment", "SpindleRun"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class PlanningError(RobotCellError):
    """An operation could not be planned; the message names the step and the reason."""


@dataclass(frozen=True)
class Segment:
    """One step of a program.

    Attributes:
        label: What it does (``approach h3``, ``grasp battery``).
        kind: Its segment kind (its TCP speed cap), or ``None`` for a dwell.
        start: Start [s, program time].
        end: End [s, program time].
        tcp_cap: TCP speed cap [m/s] it was timed under, or ``None``.
    """

    label: str
    kind: SegmentKind | None
    start: float
    end: float
    tcp_cap: float | None = None

    @property
    def duration(self) -> float:
        """Length [s]."""
        return self.end - self.start


@dataclass(frozen=True)
class Move:
    """A joint path to append, with what it is (one :class:`Segment` once timed).

    Attributes:
        path: (M, dof) waypoints [rad].
        label: The segment's label.
        kind: Its kind.
        tcp_cap: TCP speed cap [m/s] (``None``: joint limits only).
    """

    path: NDArray[np.float64]
    label: str
    kind: SegmentKind
    tcp_cap: float | None


# Junction speeds tried, as fractions of the largest one both moves allow; 0 (a stop) is
# always among them, so a chain is never slower than its moves rest to rest.
_JUNCTION_FRACTIONS = (1.0, 0.6, 0.35, 0.0)
_JUNCTION_SHARE = 0.98  # of the largest junction speed: the timing keeps a margin below caps
_SAME_DIRECTION = 1e-9  # 1 - cos(angle) below which two moves continue one line


@dataclass(frozen=True)
class SpindleRun:
    """The spindle driving a screw during a program.

    Attributes:
        hole: Hole name.
        start: Run-down start [s, program time] (screw tip on the thread).
        end: Shut-off [s, program time].
    """

    hole: str
    start: float
    end: float


@dataclass(frozen=True)
class Program:
    """One operation's motion and tool actions.

    Attributes:
        kind: ``pick_place`` or ``screw``.
        target: The part or hole it works on.
        robot: The robot that runs it.
        trajectory: The whole motion, from time 0, rest to rest.
        segments: Its steps in time order, covering the trajectory.
        events: Grasps and releases in time order.
        spindle: Spindle runs in time order.
        fastened: Parts that stay where they are released (a driven screw).
        left: Bodies the program leaves in the world, by name, at their world poses
            (the driven screw, as the fixed body that stands for it in its hole); the
            programs after it are validated with them there.
    """

    kind: str
    target: str
    robot: str
    trajectory: Trajectory
    segments: tuple[Segment, ...]
    events: tuple[ToolEvent, ...] = ()
    spindle: tuple[SpindleRun, ...] = ()
    fastened: frozenset[str] = frozenset()
    left: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Length [s]."""
        return self.trajectory.duration

    @property
    def q_start(self) -> NDArray[np.float64]:
        """First configuration."""
        return self.trajectory.q[0]

    @property
    def q_end(self) -> NDArray[np.float64]:
        """Last configuration."""
        return self.trajectory.q[-1]

    def segment_at(self, t: float) -> Segment:
        """The segment running at program time ``t`` (the last one after the end)."""
        for s in self.segments:
            if t < s.end:
                return s
        return self.segments[-1]

    def tcp_cap_violations(self, arm: Arm, rate_hz: float = 1000.0) -> list[Violation]:
        """Segments whose TCP speed exceeds their own cap (the fastest moment of each).

        The sweep checks one cap for a whole trajectory; this checks each segment's.
        """
        out = []
        for s in self.segments:
            if s.tcp_cap is None or s.duration <= 0:
                continue
            n = max(2, int(np.ceil(s.duration * rate_hz)) + 1)
            times = np.linspace(s.start, s.end, n)
            q, qd = self.trajectory.sample(times, 0), self.trajectory.sample(times, 1)
            speed = tcp_speeds(arm, q, qd)
            k = int(np.argmax(speed))
            if speed[k] > s.tcp_cap * (1.0 + 1e-3):
                where = f"{self.kind} {self.target}: {s.label}"
                out.append(
                    Violation(
                        float(times[k]),
                        ViolationKind.TCP_SPEED,
                        where,
                        float(speed[k]),
                        s.tcp_cap,
                        "m/s",
                    )
                )
        return out


@dataclass
class ProgramBuilder:
    """Appends timed motions and dwells into one :class:`Program`.

    Args:
        arm: The arm (limits, forward kinematics for TCP caps).
        q: Where the program starts.
    """

    arm: Arm
    q: NDArray[np.float64]
    _pieces: list[Trajectory] = field(default_factory=list)
    _segments: list[Segment] = field(default_factory=list)
    _events: list[ToolEvent] = field(default_factory=list)
    _spindle: list[SpindleRun] = field(default_factory=list)
    _t: float = 0.0

    @property
    def time(self) -> float:
        """Program time so far [s]."""
        return self._t

    def move(
        self,
        path: npt.ArrayLike,
        label: str,
        kind: SegmentKind,
        tcp_cap: float | None,
        min_duration: float = 0.0,
    ) -> Segment:
        """Append a joint path (starting at the current configuration), rest to rest.

        Args:
            path: (M, dof) waypoints; the first must be the current configuration.
            label: The segment's label.
            kind: Its kind.
            tcp_cap: TCP speed cap [m/s] (``None``: joint limits only).
            min_duration: Stretch the segment to at least this long [s] (a drive that
                must last as long as the spindle's run-down).

        Raises:
            PlanningError: the path does not start here, or cannot be timed.
        """
        P = np.asarray(path, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != self.arm.dof:
            raise PlanningError(f"{label}: expected an (M, {self.arm.dof}) path")
        if np.max(np.abs(P[0] - self.q)) > 1e-6:
            raise PlanningError(f"{label}: path starts away from the arm's configuration")
        timed = time_parameterize(P, self.arm.limits, arm=self.arm, tcp_speed=tcp_cap)
        if timed.trajectory is None:
            raise PlanningError(f"{label}: timing failed: {timed.reason}")
        traj = timed.trajectory
        if traj.duration < min_duration and traj.duration > 0:
            traj = _stretched(traj, min_duration / traj.duration)
        return self._append(traj, label, kind, tcp_cap)

    def flow(self, moves: Sequence[Move]) -> list[Segment]:
        """Append moves that continue one another, the first from the current configuration.

        Each move is timed under the arm's limits and its own TCP cap (one
        :class:`Segment` each). Where a move leaves in the direction the one before
        arrives (joint space: pieces of one straight joint path, such as a descent cut
        where its cap drops), the arm passes the junction at speed: the junction speeds
        are chosen among a few fractions of what the smaller cap and the joint velocity
        limits allow, for the shortest chain (dynamic programming over the junctions).
        Elsewhere it stops. The chain starts and ends at rest.

        Raises:
            PlanningError: a move does not start where the one before ends, or cannot
                be timed even at rest.
        """
        if not moves:
            return []
        paths: list[NDArray[np.float64]] = []
        q = self.q
        for m in moves:
            P = np.asarray(m.path, dtype=np.float64)
            if P.ndim != 2 or P.shape[1] != self.arm.dof or len(P) < 1:
                raise PlanningError(f"{m.label}: expected an (M, {self.arm.dof}) path")
            if np.max(np.abs(P[0] - q)) > 1e-6:
                where = "the end of the move before" if paths else "the arm's configuration"
                raise PlanningError(f"{m.label}: path starts away from {where}")
            paths.append(dedupe(P))
            q = P[-1]
        n = len(moves)
        speeds: list[list[float]] = [[0.0]]  # candidate path speeds at each boundary
        dirs = np.zeros((n + 1, self.arm.dof))
        for j in range(n - 1):
            A, B = paths[j], paths[j + 1]
            top = 0.0
            if len(A) >= 2 and len(B) >= 2:
                dA, dB = _unit(A[-1] - A[-2]), _unit(B[1] - B[0])
                if 1.0 - float(dA @ dB) <= _SAME_DIRECTION:
                    dirs[j + 1] = dA
                    top = self._junction_speed(A[-1], dA, moves[j].tcp_cap, moves[j + 1].tcp_cap)
            speeds.append([f * top for f in _JUNCTION_FRACTIONS] if top > 0 else [0.0])
        speeds.append([0.0])
        reasons: list[str] = []

        def timed(i: int, s0: float, s1: float) -> Trajectory | None:
            m = moves[i]
            res = time_parameterize(
                paths[i], self.arm.limits, arm=self.arm, tcp_speed=m.tcp_cap,
                start_velocity=s0 * dirs[i] if s0 > 0 else None,
                end_velocity=s1 * dirs[i + 1] if s1 > 0 else None,
            )  # fmt: skip
            if res.trajectory is None:
                reasons.append(f"{m.label}: timing failed: {res.reason}")
            return res.trajectory

        # best[k]: the shortest timed moves so far ending at candidate speed k
        best: dict[int, tuple[float, list[Trajectory]]] = {0: (0.0, [])}
        for i in range(n):
            nxt: dict[int, tuple[float, list[Trajectory]]] = {}
            for k1, s1 in enumerate(speeds[i + 1]):
                for k0, (total, trajs) in best.items():
                    traj = timed(i, speeds[i][k0], s1)
                    if traj is not None and (k1 not in nxt or total + traj.duration < nxt[k1][0]):
                        nxt[k1] = (total + traj.duration, [*trajs, traj])
            if not nxt:
                raise PlanningError(reasons[-1] if reasons else f"{moves[i].label}: timing failed")
            best = nxt
        trajs = best[0][1]
        return [
            self._append(traj, m.label, m.kind, m.tcp_cap)
            for m, traj in zip(moves, trajs, strict=True)
        ]

    def _junction_speed(
        self,
        q: NDArray[np.float64],
        d: NDArray[np.float64],
        cap_a: float | None,
        cap_b: float | None,
    ) -> float:
        """Fastest path speed [rad/s] through ``q`` along unit direction ``d``."""
        with np.errstate(divide="ignore"):
            sd = float(np.min(np.asarray(self.arm.limits.velocity) / np.abs(d)))
        caps = [c for c in (cap_a, cap_b) if c is not None]
        if caps:
            gain = float(tcp_speeds(self.arm, q[None], d[None])[0])
            if gain > 0:
                sd = min(sd, min(caps) / gain)
        return _JUNCTION_SHARE * sd

    def dwell(self, duration: float, label: str) -> Segment:
        """Hold still for ``duration`` [s] (a gripper closing, a spindle finishing)."""
        q = np.asarray(self.q)
        z = np.zeros_like(q)
        traj = Trajectory(
            self.arm.joint_names, np.array([0.0, duration]), np.stack([q, q]), np.stack([z, z]),
            np.stack([z, z]),
        )  # fmt: skip
        return self._append(traj, label, None, None)

    def event(self, action: ToolAction, part: str, at: float | None = None) -> None:
        """A tool event at program time ``at`` (now by default)."""
        self._events.append(ToolEvent(self._t if at is None else at, action, part))

    def spindle(self, hole: str, start: float, end: float) -> None:
        """A spindle run between two program times."""
        self._spindle.append(SpindleRun(hole, start, end))

    def _append(
        self, traj: Trajectory, label: str, kind: SegmentKind | None, cap: float | None
    ) -> Segment:
        seg = Segment(label, kind, self._t, self._t + traj.duration, cap)
        if traj.duration > 0:
            self._pieces.append(traj.shifted(self._t - traj.start_time))
            self._t = seg.end
            self.q = np.array(traj.q[-1])
        self._segments.append(seg)
        return seg

    def build(
        self,
        kind: str,
        target: str,
        robot: str,
        fastened: Sequence[str] = (),
        left: Mapping[str, NDArray[np.float64]] | None = None,
    ) -> Program:
        """The program built so far.

        Raises:
            PlanningError: nothing was appended.
        """
        if not self._pieces:
            raise PlanningError(f"{kind} {target}: the program has no motion")
        traj = Trajectory.concatenate(self._pieces)
        return Program(
            kind,
            target,
            robot,
            traj,
            tuple(self._segments),
            tuple(sorted(self._events, key=lambda e: e.time)),
            tuple(self._spindle),
            frozenset(fastened),
            dict(left or {}),
        )


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def _stretched(traj: Trajectory, factor: float) -> Trajectory:
    """``traj`` run ``factor`` (>= 1) times slower: same path, lower every derivative."""
    t0 = traj.start_time
    return Trajectory(
        traj.joint_names,
        t0 + (traj.t - t0) * factor,
        traj.q,
        traj.qd / factor,
        traj.qdd / factor**2,
    )
