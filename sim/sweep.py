"""Kinematic sweep: exact collision and clearance along a trajectory, plus its limits.

The trajectory is sampled densely enough that between two samples the TCP moves at
most ``max_tcp_step`` and no joint more than ``max_joint_step`` (defaults 1 mm and
0.01 rad). At each sample the arm (with its tool and any held part) is placed in the
world and PyBullet's exact geometry answers: contacts with the world, contacts between
non-adjacent links of the arm (see :meth:`sim.arm_body.ArmBody.exclude_adjacent_pairs`),
and the closest distance to the world within ``query_distance``. The limits come from
:func:`planners.limit_check.check_limits` on the same trajectory function.

A *screen* (:class:`sim.screen.WorldScreen`, the batched sphere model of the same
world) gives a lower bound on the clearance of every sample at once. Exact contact
queries then run only where the bound comes within ``screen_margin`` of contact, and
the minimum clearance is searched in increasing order of the bound, stopping when the
bound exceeds the best exact distance found: the verdict is the same as without the
screen, at a fraction of the queries.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.errors import InputError
from planners.limit_check import LimitKind, check_limits
from planners.trajectory import Trajectory
from sim.replay import ToolAction, ToolEvent
from sim.screen import WorldScreen
from sim.verdict import Verdict, Violation, ViolationKind, first_per_place
from sim.world import World

__all__ = ["SweepSettings", "sample_times", "sweep"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


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
        screen_margin: With a screen, samples whose clearance bound is within this
            distance [m] of contact get exact queries (covers PyBullet's own collision
            margins, about 1 mm on cylinders).
        tcp_speed: TCP speed cap [m/s] for the limit check, or ``None``.
        limit_rate_hz: Sample rate of the limit check [Hz].
    """

    max_tcp_step: float = 1e-3
    max_joint_step: float = 0.01
    query_distance: float = 0.05
    min_clearance: float = 0.0
    touch_tolerance: float = 1e-5
    screen_margin: float = 0.005
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
    keep = _thin(q, p, settings.max_joint_step, settings.max_tcp_step)
    return times[keep]


@nb.njit(cache=True)
def _thin(
    q: NDArray[np.float64], p: NDArray[np.float64], dq_max: float, dp_max: float
) -> NDArray[np.int64]:
    """Greedy: keep a grid point when skipping it would put the next one out of bounds."""
    n, dof = q.shape
    keep = np.empty(n, np.int64)
    keep[0] = 0
    m = 1
    last = 0
    for i in range(1, n):
        far = False
        for j in range(dof):
            if abs(q[i, j] - q[last, j]) > dq_max:
                far = True
        d = np.sqrt(
            (p[i, 0] - p[last, 0]) ** 2 + (p[i, 1] - p[last, 1]) ** 2 + (p[i, 2] - p[last, 2]) ** 2
        )
        if far or d > dp_max:
            keep[m] = i - 1
            m += 1
            last = i - 1
    if keep[m - 1] != n - 1:
        keep[m] = n - 1
        m += 1
    return keep[:m]


@dataclass(frozen=True)
class _Hold:
    """One grasp-to-release window of a part: its grip and where it is put down."""

    part: str
    start: float
    end: float
    grip: NDArray[np.float64]  # T_tcp_part
    put_down: NDArray[np.float64]  # world pose after the release


def _holds(
    world: World,
    trajectory: Trajectory,
    tcp: Callable[[float], NDArray[np.float64]],
    events: Sequence[ToolEvent],
) -> list[_Hold]:
    """Grasp windows in time order, each grip taken where the part is at its grasp."""
    pose = {e.part: world.body_pose(e.part) for e in events}
    open_: dict[str, tuple[float, NDArray[np.float64]]] = {}
    holds = []
    end = trajectory.end_time
    for e in sorted(events, key=lambda e: e.time):
        if e.action is ToolAction.GRASP and e.part not in open_:
            open_[e.part] = (e.time, np.linalg.inv(tcp(e.time)) @ pose[e.part])
        elif e.action is ToolAction.RELEASE and e.part in open_:
            start, grip = open_.pop(e.part)
            pose[e.part] = tcp(e.time) @ grip
            holds.append(_Hold(e.part, start, e.time, grip, pose[e.part]))
    for part, (start, grip) in open_.items():
        holds.append(_Hold(part, start, end + 1.0, grip, tcp(end) @ grip))
    return sorted(holds, key=lambda h: h.start)


def _state(holds: Sequence[_Hold], t: float) -> tuple[dict[str, NDArray], dict[str, NDArray]]:
    """Parts held at ``t`` (their grips) and parts put down before ``t`` (their poses)."""
    held: dict[str, NDArray] = {}
    moved: dict[str, NDArray] = {}
    for h in holds:
        if h.start <= t < h.end:
            held[h.part] = h.grip
            moved.pop(h.part, None)
        elif h.end <= t:
            moved[h.part] = h.put_down
    return held, moved


def sweep(
    world: World,
    arm_name: str,
    trajectory: Trajectory,
    *,
    events: Sequence[ToolEvent] = (),
    allowed_contacts: Iterable[tuple[str, str]] = (),
    settings: SweepSettings | None = None,
    screen: WorldScreen | None = None,
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
        screen: A :class:`~sim.screen.WorldScreen` of this world and arm: exact queries
            only where its bound comes within ``screen_margin`` (same verdict, faster).
            Ignored when the world has other arms (they move; the screen cannot know).

    Returns:
        A :class:`Verdict` with COLLISION, SELF_COLLISION, CLEARANCE and limit
        violations, the minimum clearance and its pair, and the statistics
        ``sweep_samples``, ``sweep_exact_queries`` (samples placed in the world),
        ``sweep_pair_queries`` (exact queries of the unscreened link pairs), ``sweep_wall_s``,
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
    if len(world.arms) > 1:
        screen = None
    allowed = {tuple(sorted(p)) for p in allowed_contacts}
    started = wall.perf_counter()
    violations: list[Violation] = []
    report = check_limits(
        trajectory, arm.limits, arm=arm, tcp_speed=cfg.tcp_speed, rate_hz=cfg.limit_rate_hz
    )
    for v in report.violations:
        kind, unit = _LIMIT_KINDS[v.kind]
        violations.append(Violation(v.time, kind, v.joint, v.value, v.limit, unit))

    times = sample_times(trajectory, lambda Q: arm.fk_batch(Q)[:, :3, 3], cfg)
    inside = [e.time for e in events if trajectory.start_time <= e.time <= trajectory.end_time]
    times = np.unique(np.concatenate((times, inside)))  # sample at every grasp and release
    Q = trajectory.sample(times)
    T_tcp = arm.fk_batch(Q)
    holds = _holds(world, trajectory, lambda t: arm.fk_batch(trajectory.sample([t]))[0], events)
    # The held/put-down state only changes at grasps and releases: one state per interval.
    edges = np.unique([t for h in holds for t in (h.start, h.end)])
    interval = np.searchsorted(edges, times, side="right")
    interval_state = {
        int(i): _state(holds, float(times[np.argmax(interval == i)])) for i in np.unique(interval)
    }
    states = [interval_state[int(i)] for i in interval]
    bound = np.full(len(times), -np.inf)
    if screen is not None:
        for i, (held, moved) in interval_state.items():
            idx = np.flatnonzero(interval == i)
            bound[idx] = screen.bounds(Q[idx], held, moved)
    client = world.client
    skip = set()  # self contacts the pair screen checks (at every sample)
    if screen is not None:
        skip = {(body.link_index(a), body.link_index(b)) for a, b in screen.pairs.pairs}
        skip |= {(b, a) for a, b in skip}
    best: tuple[float, str | None, float | None] = (np.inf, None, None)
    queries = 0
    pair_queries = 0

    def place(k: int) -> tuple[list[tuple[int, str]], set[int]]:
        body.set_q(Q[k])
        held, moved = states[k]
        for part, T in moved.items():
            world.set_body_pose(part, T)
        for part, grip in held.items():
            world.set_body_pose(part, T_tcp[k] @ grip)
        held_ids = {world.body(p) for p in held}
        return [(body.body, arm_name)] + [(world.body(p), p) for p in held], held_ids

    def others_of(mover: int, name: str, held_ids: set[int]) -> list[tuple[int, str]]:
        out = []
        for other in [
            *world.bodies.values(),
            *(a.body for n, a in world.arms.items() if n != arm_name),
        ]:
            if other == mover or other in held_ids:
                continue
            other_name = world.place(other).split("/")[0]
            if tuple(sorted((name, other_name))) not in allowed:
                out.append((other, other_name))
        return out

    def distances(k: int, movers: list[tuple[int, str]], held_ids: set[int]) -> None:
        nonlocal best
        t = float(times[k])
        for mover, name in movers:
            for other, _ in others_of(mover, name, held_ids):
                if mover in held_ids and other == body.body:
                    continue
                for c in client.getClosestPoints(mover, other, cfg.query_distance):
                    d = float(c[8])
                    where = f"{world.place(mover, c[3])} | {world.place(other, c[4])}"
                    if d < best[0]:
                        best = (d, where, t)
                    if 0.0 < d < cfg.min_clearance:
                        violations.append(
                            Violation(t, ViolationKind.CLEARANCE, where, d, cfg.min_clearance, "m")
                        )

    with world.preserved():
        near = np.flatnonzero(bound <= cfg.screen_margin + cfg.min_clearance)
        for k in near:  # exact contacts (and distances) where the bound allows contact
            queries += 1
            t = float(times[k])
            movers, held_ids = place(int(k))
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
                    if other == mover and (c[3], c[4]) in skip:
                        continue
                    where = f"{world.place(mover, c[3])} | {world.place(other, c[4])}"
                    kind = (
                        ViolationKind.SELF_COLLISION if other == mover else ViolationKind.COLLISION
                    )
                    violations.append(Violation(t, kind, where, max(-float(c[8]), 0.0), 0.0, "m"))
            distances(int(k), movers, held_ids)
        far = np.setdiff1d(np.arange(len(times)), near)
        for k in far[np.argsort(bound[far], kind="stable")]:  # minimum clearance: nearest first
            if bound[k] - cfg.screen_margin > min(best[0], cfg.query_distance):
                break
            queries += 1
            movers, held_ids = place(int(k))
            distances(int(k), movers, held_ids)
        if screen is not None and screen.pairs.pairs:
            # Pairs the sphere model does not check: exact, where their rate bound needs it.
            hits, pair_queries = screen.pairs.check(Q, cfg.touch_tolerance)
            for hit in hits:
                a, b = screen.pairs.pairs[hit.pair]
                where = f"{arm_name}/{a} | {arm_name}/{b}"
                t = float(times[hit.sample])
                violations.append(
                    Violation(t, ViolationKind.SELF_COLLISION, where, hit.depth, 0.0, "m")
                )
    elapsed = wall.perf_counter() - started
    stats = {
        "sweep_samples": len(times),
        "sweep_exact_queries": queries,
        "sweep_pair_queries": pair_queries,
        "sweep_wall_s": elapsed,
        "sweep_x_realtime": trajectory.duration / elapsed if elapsed > 0 else float("inf"),
        "limit_peak_ratio": {k.value: v for k, v in report.peak_ratio.items()},
    }
    return Verdict(tuple(first_per_place(violations)), best[0], best[1], best[2], stats)
