"""Kinematic sweep: exact collision and clearance along a trajectory, plus its limits.

The trajectory is sampled densely enough that between two samples the TCP moves at
most ``max_tcp_step`` and no joint more than ``max_joint_step`` (defaults 1 mm and
0.01 rad). At each sample the arm (with its tool and any held part) is placed in the
world and PyBullet's exact geometry answers: contacts with the world, contacts between
non-adjacent links of the arm (see :meth:`sim.arm_body.ArmBody.exclude_adjacent_pairs`),
and the closest distance to the world within ``query_distance``. The limits come from
:func:`planners.limit_check.check_limits` on the same trajectory function.

A *screen* may skip exact queries: a function giving, for (N, dof) configurations, a
lower bound on the clearance [m] (the batched sphere model is one: its spheres enclose
the real geometry). Samples whose bound exceeds ``query_distance`` cannot collide and
cannot set the minimum clearance, so they are not queried; the verdict is unchanged.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planners.errors import InputError
from planners.limit_check import LimitKind, check_limits
from planners.trajectory import Trajectory
from sim.replay import ToolAction, ToolEvent
from sim.verdict import Verdict, Violation, ViolationKind, first_per_place
from sim.world import World

__all__ = ["Screen", "SweepSettings", "sample_times", "sweep"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: (N, dof) configurations -> (N,) lower bounds on the clearance to the world [m].
Screen = Callable[[NDArray[np.float64]], NDArray[np.float64]]

_LIMIT_KINDS = {
    LimitKind.POSITION: (ViolationKind.POSITION, "rad"),
    LimitKind.VELOCITY: (ViolationKind.VELOCITY, "rad/s"),
    LimitKind.ACCELERATION: (ViolationKind.ACCELERATION, "rad/s^2"),
    LimitKind.JERK: (ViolationKind.JERK, "rad/s^3"),
    LimitKind.TCP_SPEED: (ViolationKind.TCP_SPEED, "m/s"),
}


@dataclass(frozen=True)
class SweepSettings:
    """Resolution and thresholds of a sweep.

    Attributes:
        max_tcp_step: Largest TCP travel between two samples [m].
        max_joint_step: Largest joint motion between two samples [rad or m].
        query_distance: Clearances are measured up to this distance [m]; farther
            counts as "far".
        min_clearance: Required distance to the world [m]; closer (but not touching)
            is a CLEARANCE violation. 0 disables it.
        touch_tolerance: A contact is a collision only when it penetrates deeper than
            this [m]; shallower is touching (a part resting in its pocket reports 0).
        tcp_speed: TCP speed cap [m/s] for the limit check, or ``None``.
        limit_rate_hz: Sample rate of the limit check [Hz].
    """

    max_tcp_step: float = 1e-3
    max_joint_step: float = 0.01
    query_distance: float = 0.05
    min_clearance: float = 0.0
    touch_tolerance: float = 1e-5
    tcp_speed: float | None = None
    limit_rate_hz: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("max_tcp_step", "max_joint_step", "query_distance"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise InputError(f"sweep.{name}: expected a positive number, got {value!r}")
        for name in ("min_clearance", "touch_tolerance"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"sweep.{name}: expected >= 0 [m], got {value!r}")


def sample_times(
    trajectory: Trajectory,
    tcp_of: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    settings: SweepSettings,
) -> NDArray[np.float64]:
    """Times at which consecutive samples are within the TCP and joint step bounds.

    A fine grid is refined until every step is within the bounds, then thinned
    greedily: a grid point is kept when skipping it would break a bound.

    Args:
        trajectory: The motion.
        tcp_of: (N, dof) -> (N, 3) TCP positions [m].
        settings: The bounds.
    """
    t0, t1 = trajectory.start_time, trajectory.end_time
    if t1 <= t0:
        return np.array([t0])
    n = max(int(np.ceil((t1 - t0) * 1000.0)), 2)
    while True:
        times = np.linspace(t0, t1, n + 1)
        q = trajectory.sample(times)
        p = tcp_of(q)
        dq = np.abs(np.diff(q, axis=0)).max(axis=1)
        dp = np.linalg.norm(np.diff(p, axis=0), axis=1)
        if (
            dq.max() <= settings.max_joint_step and dp.max() <= settings.max_tcp_step
        ) or n > 2_000_000:
            break
        n *= 2
    keep = [0]
    last = 0
    for i in range(1, len(times)):
        # Distance from the last kept sample to grid point i.
        acc_q = np.abs(q[i] - q[last])
        acc_p = np.linalg.norm(p[i] - p[last])
        if acc_q.max() > settings.max_joint_step or acc_p > settings.max_tcp_step:
            keep.append(i - 1)
            last = i - 1
    if keep[-1] != len(times) - 1:
        keep.append(len(times) - 1)
    return times[np.unique(keep)]


def _held_windows(events: Sequence[ToolEvent], end: float) -> list[tuple[str, float, float]]:
    """(part, grasp time, release time) for every grasp, in time order."""
    windows = []
    open_: dict[str, float] = {}
    for e in sorted(events, key=lambda e: e.time):
        if e.action is ToolAction.GRASP:
            open_.setdefault(e.part, e.time)
        elif e.part in open_:
            windows.append((e.part, open_.pop(e.part), e.time))
    windows.extend((p, t, end + 1.0) for p, t in open_.items())
    return windows


def sweep(
    world: World,
    arm_name: str,
    trajectory: Trajectory,
    *,
    events: Sequence[ToolEvent] = (),
    allowed_contacts: Iterable[tuple[str, str]] = (),
    settings: SweepSettings | None = None,
    screen: Screen | None = None,
) -> Verdict:
    """Sweep ``trajectory`` of arm ``arm_name`` through the world; the world is restored.

    Args:
        world: The world.
        arm_name: The arm that moves.
        trajectory: Joint names must be the arm's.
        events: Grasps and releases: a grasped part moves rigidly with the TCP from its
            grasp to its release and is checked against the world like the arm.
        allowed_contacts: Pairs of body names that may touch (the gripper and the part
            it picks, a part and the fixture it is placed into).
        settings: Resolution and thresholds.
        screen: Optional lower bound on clearance for (N, dof) configurations.

    Returns:
        A :class:`Verdict` with COLLISION, SELF_COLLISION, CLEARANCE and limit
        violations, the minimum clearance and its pair, and the statistics
        ``sweep_samples``, ``sweep_exact_queries``, ``sweep_wall_s``,
        ``sweep_x_realtime``.
    """
    cfg = settings or SweepSettings()
    body = world.arm(arm_name)
    arm = body.arm
    if tuple(trajectory.joint_names) != tuple(arm.joint_names):
        raise InputError(
            f"trajectory.joint_names {list(trajectory.joint_names)} do not match arm "
            f"{arm_name!r} joints {list(arm.joint_names)}"
        )
    for e in events:
        world.body(e.part)
    allowed = {tuple(sorted(p)) for p in allowed_contacts}
    started = wall.perf_counter()
    violations: list[Violation] = []
    report = check_limits(
        trajectory, arm.limits, arm=arm, tcp_speed=cfg.tcp_speed, rate_hz=cfg.limit_rate_hz
    )
    for v in report.violations:
        kind, unit = _LIMIT_KINDS[v.kind]
        violations.append(
            Violation(
                v.time,
                kind,
                v.joint,
                v.value,
                v.limit,
                "m/s" if kind is ViolationKind.TCP_SPEED else unit,
            )
        )

    times = sample_times(trajectory, lambda Q: arm.fk_batch(Q)[:, :3, 3], cfg)
    inside = [e.time for e in events if trajectory.start_time <= e.time <= trajectory.end_time]
    times = np.unique(np.concatenate((times, inside)))  # sample at every grasp and release
    Q = trajectory.sample(times)
    T_tcp = arm.fk_batch(Q)
    bound = screen(Q) if screen is not None else np.full(len(times), -np.inf)
    windows = _held_windows(events, trajectory.end_time)
    client = world.client
    others = [b for name, b in world.bodies.items()] + [
        a.body for n, a in world.arms.items() if n != arm_name
    ]
    best: tuple[float, str | None, float | None] = (np.inf, None, None)
    queries = 0
    with world.preserved():
        grips: dict[str, NDArray[np.float64]] = {}
        for k, t in enumerate(times):
            held = [w for w in windows if w[1] <= t < w[2]]
            if bound[k] > cfg.query_distance and not held:
                continue
            queries += 1
            body.set_q(Q[k])
            movers = [(body.body, arm_name)]
            for part, t_grasp, _ in held:
                if part not in grips:  # where the part sits in the TCP frame at the grasp
                    T_grasp = arm.fk_batch(trajectory.sample([t_grasp]))[0]
                    grips[part] = np.linalg.inv(T_grasp) @ world.body_pose(part)
                world.set_body_pose(part, T_tcp[k] @ grips[part])
                movers.append((world.body(part), part))
            held_ids = {world.body(p) for p, _, _ in held}
            client.performCollisionDetection()
            for mover, name in movers:
                for c in client.getContactPoints(bodyA=mover):
                    if -float(c[8]) <= cfg.touch_tolerance:
                        continue  # touching, not penetrating
                    other = c[2]
                    other_name = world.place(other).split("/")[0]
                    if other in held_ids or (mover in held_ids and other == body.body):
                        continue
                    if tuple(sorted((name, other_name))) in allowed:
                        continue
                    where = f"{world.place(mover, c[3])} | {world.place(other, c[4])}"
                    kind = (
                        ViolationKind.SELF_COLLISION if other == mover else ViolationKind.COLLISION
                    )
                    violations.append(
                        Violation(float(t), kind, where, max(-float(c[8]), 0.0), 0.0, "m")
                    )
                for other in others:
                    if (
                        other == mover
                        or other in held_ids
                        or (mover in held_ids and other == body.body)
                    ):
                        continue
                    other_name = world.place(other).split("/")[0]
                    if tuple(sorted((name, other_name))) in allowed:
                        continue
                    for c in client.getClosestPoints(mover, other, cfg.query_distance):
                        d = float(c[8])
                        if d < best[0]:
                            best = (
                                d,
                                f"{world.place(mover, c[3])} | {world.place(other, c[4])}",
                                float(t),
                            )
                        if 0.0 < d < cfg.min_clearance:
                            where = f"{world.place(mover, c[3])} | {world.place(other, c[4])}"
                            violations.append(
                                Violation(
                                    float(t),
                                    ViolationKind.CLEARANCE,
                                    where,
                                    d,
                                    cfg.min_clearance,
                                    "m",
                                )
                            )
    elapsed = wall.perf_counter() - started
    stats = {
        "sweep_samples": len(times),
        "sweep_exact_queries": queries,
        "sweep_wall_s": elapsed,
        "sweep_x_realtime": trajectory.duration / elapsed if elapsed > 0 else float("inf"),
        "limit_peak_ratio": {k.value: v for k, v in report.peak_ratio.items()},
    }
    return Verdict(tuple(first_per_place(violations)), best[0], best[1], best[2], stats)
