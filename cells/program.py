"""A program: what one operation of a cell does, as timed motion plus tool events.

The task logic (:mod:`cells.tasks`) builds one :class:`Program` per operation (place a
part, drive a screw): a single :class:`~planners.trajectory.Trajectory` for the arm,
the :class:`Segment` s it is made of (each with its kind and TCP speed cap), the tool
events (grasp, release) at their times and the spindle runs. The controller validates
a program in PyBullet before anything runs and executes the same object afterwards.

:class:`ProgramBuilder` appends joint paths (timed under the arm's limits and the
segment's TCP cap, rest to rest) and dwells (the gripper closing, the spindle running)
one after the other.
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
from planners.trajectory import Trajectory
from sim.replay import ToolAction, ToolEvent
from sim.verdict import Violation, ViolationKind

__all__ = ["PlanningError", "Program", "ProgramBuilder", "Segment", "SpindleRun"]

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
