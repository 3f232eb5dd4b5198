"""Kinematic sweep: exact collision and clearance along a trajectory, plus its limits.

The trajectory is sampled densely enough that between two samples the TCP moves at
most ``max_tcp_step`` and no joint more than ``max_joint_step`` (defaults 1 mm and
0.01 rad; :func:`sim.sweep_samples.sweep_samples`). At each sample the arm (with its
tool and any held part) is placed in the world and PyBullet's exact geometry answers
(:class:`sim.sweep_queries.SweepQueries`): contacts with the world, contacts between
the arm's links that PyBullet checks (non-adjacent, see
:meth:`sim.arm_body.ArmBody.exclude_adjacent_pairs`), and the closest distance to the
world within ``query_distance``. The limits come from
:func:`planners.limit_check.check_limits` on the same trajectory function.

A *screen* (:class:`sim.screen.WorldScreen`) makes this fast without changing the
verdict. The sphere model of the same world gives, per sample and world body, a lower
bound on their distance: contact queries run only against bodies whose bound comes
within ``screen_margin`` of contact, and the minimum clearance is searched in increasing
order of the bound, stopping when the bound exceeds the best exact distance found.
Self-collision is screened pair by pair, by the pair's sphere gap or, where its spheres
overlap, by exact distances, each carried to the following samples by a bound on how
fast the pair's distance can change (:class:`sim.pair_screen.PairScreen`): the links
are queried only at samples where some pair may come into contact. Both bounds are
true lower bounds, so the verdict is the one of exact queries at every sample (the
benchmark and the tests check it); the screen keeps caches and buffers between sweeps.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planners.errors import InputError
from planners.limit_check import LimitKind, check_limits
from planners.poe import screws_of
from planners.trajectory import Trajectory
from sim.pair_screen import checked_pairs
from sim.replay import ToolAction, ToolEvent
from sim.screen import WorldScreen
from sim.sweep_queries import SweepQueries
from sim.sweep_samples import sweep_samples
from sim.verdict import Verdict, Violation, ViolationKind, first_per_place
from sim.world import World

__all__ = ["SweepSettings", "sweep"]

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


@dataclass(frozen=True)
class _Hold:
    """One grasp-to-release window of a part: its grip and where it is put down."""

    part: str
    start: float
    end: float
    grip: NDArray[np.float64]  # T_tcp_part
    put_down: NDArray[np.float64]  # world pose after the release


def _holds(
    before: Mapping[str, NDArray[np.float64]],
    trajectory: Trajectory,
    tcp: Callable[[float], NDArray[np.float64]],
    events: Sequence[ToolEvent],
) -> list[_Hold]:
    """Grasp windows in time order, each grip taken where the part is at its grasp.

    Args:
        before: Each handled part's world pose before the trajectory.
        trajectory: The motion.
        tcp: TCP pose (4x4) at a time.
        events: The grasps and releases.
    """
    pose = dict(before)
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


def _state(
    holds: Sequence[_Hold], t: float, placed: Mapping[str, NDArray]
) -> tuple[dict[str, NDArray], dict[str, NDArray]]:
    """Parts held at ``t`` (their grips) and bodies away from the world's spec at ``t``
    (``placed`` before the trajectory, or put down before ``t``: their poses)."""
    held: dict[str, NDArray] = {}
    moved: dict[str, NDArray] = {name: T for name, T in placed.items()}
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
    placed: Mapping[str, NDArray[np.float64]] | None = None,
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
            only against bodies whose bound comes within ``screen_margin`` (same verdict,
            faster). Ignored when the world has other arms (they move; the screen cannot
            know).
        placed: Bodies the caller moved in the world (``World.set_body_pose``) before
            the sweep, by name (4x4 world poses): the screen bounds them there, not at
            the spec's pose (parts placed by earlier operations, driven screws).

    Returns:
        A :class:`Verdict` with COLLISION, SELF_COLLISION, CLEARANCE and limit
        violations, the minimum clearance and its pair, and the statistics
        ``sweep_samples``, ``sweep_exact_queries`` (samples placed in the world),
        ``sweep_pair_queries`` (exact distances of link pairs for the self-collision
        screen), ``sweep_wall_s``, ``sweep_x_realtime``.
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
    allowed = world.pairs(allowed_contacts, "allowed_contacts")
    started = wall.perf_counter()
    violations: list[Violation] = []
    report = check_limits(
        trajectory, arm.limits, arm=arm, tcp_speed=cfg.tcp_speed, rate_hz=cfg.limit_rate_hz
    )
    for v in report.violations:
        kind, unit = _LIMIT_KINDS[v.kind]
        violations.append(Violation(v.time, kind, v.joint, v.value, v.limit, unit))

    screws = screen.screws if screen is not None else screws_of(arm)
    inside = [e.time for e in events if trajectory.start_time <= e.time <= trajectory.end_time]
    times, Q, P = sweep_samples(
        trajectory,
        screws,
        cfg.max_joint_step,
        cfg.max_tcp_step,
        inside,
        screen.buffers if screen is not None else None,
    )  # fmt: skip  (a sample at every grasp and release)

    def tcp(t: float) -> NDArray[np.float64]:
        """TCP pose at time t (a sample when t is a tool event)."""
        k = int(np.searchsorted(times, t))
        if k < len(times) and times[k] == t:
            out = np.eye(4)
            out[:3] = P[k, -1] @ screws.T0_tcp
            return out
        return arm.fk_batch(trajectory.sample([t]))[0]

    handled = [e.part for e in events]
    if screen is not None:
        exact = screen.queries(handled, allowed, cfg.touch_tolerance)
    else:
        exact = SweepQueries(
            world,
            arm_name,
            handled,
            allowed,
            [(body.link_index(a), body.link_index(b)) for a, b in checked_pairs(world, arm_name)],
            cfg.touch_tolerance,
        )
    holds = _holds(exact.start_poses, trajectory, tcp, events)
    # The held/put-down state only changes at grasps and releases: one state per interval.
    edges = np.unique([t for h in holds for t in (h.start, h.end)])
    interval = np.searchsorted(edges, times, side="right")
    spans = np.flatnonzero(np.diff(interval)) + 1
    bounds_of = np.concatenate(([0], spans, [len(times)]))  # interval i: samples lo..hi
    interval_state = [
        _state(holds, float(times[lo]), placed or {}) for lo in bounds_of[:-1]
    ]  # one per run of samples
    run_of = np.repeat(np.arange(len(interval_state)), np.diff(bounds_of))
    n, B = len(times), len(world.bodies)
    M = 1 + len(exact.start_poses)  # movers: the arm, then the parts it may hold, by name
    parts = sorted(exact.start_poses)
    near_limit = cfg.screen_margin + cfg.min_clearance

    def body_bounds(cap: float) -> NDArray[np.float64]:
        """(n, M, B) bounds per mover and body; a part not held counts as far."""
        assert screen is not None
        lb = np.full((n, M, B), cap)
        for i, (held, moved) in enumerate(interval_state):
            lo, hi = bounds_of[i], bounds_of[i + 1]
            rows = [0, *(1 + parts.index(p) for p in sorted(held))]
            lb[lo:hi, rows] = screen.body_bounds(
                P[lo:hi], Q[lo:hi], held, moved, allowed=allowed, cap=cap
            )
        return lb

    cap = near_limit + 1e-3
    lb = body_bounds(cap) if screen is not None else np.full((n, M, B), -np.inf)
    best: tuple[float, str | None, float | None] = (np.inf, None, None)
    queries = 0
    pair_queries = 0

    def place(ks: NDArray[np.int64]) -> Iterator[tuple[int, list[tuple[int, str]], set[int]]]:
        """Set each sample of ``ks`` in turn; yields its position in ``ks``, its movers and
        held parts."""
        if not len(ks):
            return
        qs = Q[ks][:, :, None].tolist()
        poses: dict[str, list] = {}
        held_parts = {p for held, _ in interval_state for p in held}
        if held_parts:
            T_tcp = P[ks, -1] @ screws.T0_tcp  # (K, 3, 4)
            eye = np.eye(4)
            for part in held_parts:
                grips = np.array([interval_state[run_of[k]][0].get(part, eye) for k in ks])
                poses[part] = exact.held_poses(T_tcp, grips, part)
        for i, k in enumerate(ks.tolist()):
            held, moved = interval_state[run_of[k]]
            at = {part: poses[part][i] for part in held}
            movers, held_ids = exact.place(qs[i], at, moved)
            yield i, movers, held_ids

    bit = [1 << j for j in range(B)]
    row_of = {arm_name: 0, **{p: 1 + i for i, p in enumerate(parts)}}

    def reach_now() -> float:
        """Distances that matter: below the best so far or the required clearance; never
        0, which PyBullet answers by another path (-2.5 mm vs -2.4999999988 mm)."""
        return max(min(best[0], cfg.query_distance), cfg.min_clearance, 1e-6)

    def columns_within(
        rows: list[list[float]] | None, movers: list[tuple[int, str]], reach: float
    ) -> tuple[int, ...]:
        """Per mover, the bodies whose bound (``rows``: per mover, per body) allows a
        distance within ``reach``, by bit."""
        if rows is None:
            return (-1,) * len(movers)
        lim = reach + cfg.screen_margin
        return tuple(
            sum(b for b, v in zip(bit, rows[row_of[name]], strict=True) if v <= lim)
            for _, name in movers
        )

    def record(k: int, d: float, where: str | None, close: list[tuple[float, str]]) -> None:
        nonlocal best
        t = float(times[k])
        if d < best[0]:
            best = (d, where, t)
        for d, where in close:
            violations.append(
                Violation(t, ViolationKind.CLEARANCE, where, d, cfg.min_clearance, "m")
            )

    with exact.restored():
        if screen is not None:
            self_check, _, pair_queries = screen.self_check(
                P, Q, cfg.touch_tolerance, cfg.screen_margin
            )
        else:
            self_check = np.ones(n, np.bool_)
        flat = lb.reshape(n, -1)
        bound = flat.min(axis=1) if flat.shape[1] else np.full(n, np.inf)
        near = (bound <= near_limit) | self_check
        nearest_first = np.flatnonzero(near)[np.argsort(bound[near], kind="stable")]
        ks = nearest_first.tolist()
        rows = lb[nearest_first].tolist() if screen is not None else None
        checks = self_check[nearest_first].tolist()
        for i, movers, held_ids in place(nearest_first):  # contacts where contact may be
            queries += 1
            reach = reach_now()
            columns = columns_within(rows[i] if rows else None, movers, reach)
            found, d, where, close = exact.probe(
                float(times[ks[i]]), movers, held_ids, columns, reach, cfg.min_clearance,
                checks[i],
            )  # fmt: skip
            violations.extend(found)
            record(ks[i], d, where, close)
        far = np.flatnonzero(~near)
        if screen is not None and far.size and cap - cfg.screen_margin <= best[0]:
            lb = body_bounds(min(best[0], cfg.query_distance) + cfg.screen_margin + 1e-3)
            flat = lb.reshape(n, -1)
            bound = flat.min(axis=1) if flat.shape[1] else np.full(n, np.inf)
        order = far[np.argsort(bound[far], kind="stable")]  # minimum clearance: nearest first
        stop = int(
            np.searchsorted(
                bound[order] - cfg.screen_margin, min(best[0], cfg.query_distance), side="right"
            )
        )
        order = order[:stop]
        rows = lb[order].tolist() if screen is not None else None
        for i, movers, held_ids in place(order):
            k = int(order[i])
            if bound[k] - cfg.screen_margin > min(best[0], cfg.query_distance):
                break
            queries += 1
            reach = reach_now()
            d, where, close = exact.distances(
                movers, held_ids, columns_within(rows[i] if rows else None, movers, reach),
                reach, cfg.min_clearance,
            )  # fmt: skip
            record(k, d, where, close)
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
