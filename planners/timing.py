"""Near time-optimal, jerk-limited time parameterization of a joint path.

:func:`time_parameterize` turns joint waypoints (a planner's path, the IK samples of a
Cartesian line) into a :class:`~planners.trajectory.Trajectory` that respects per-joint
position, velocity, acceleration and jerk limits and, optionally, a TCP speed cap. It
builds two candidates and returns the shorter (:class:`TimingMethod`):

* **Stop-and-go** (:mod:`planners.timing_lines`): ruckig's time-optimal jerk-limited
  profile along each straight line of the polyline, at rest at every corner. Exact
  (closed form), on the polyline, and a fraction of a millisecond; the better choice
  for few, sharp corners and long lines (the UR5e's large random moves).
* **Blended** (below): corners rounded within ``blend_tolerance``, TOPP and a jerk
  filter. Better for many small-angle corners (IK samples of a Cartesian line) and
  joints whose jerk limit is far above their acceleration limit (the Panda).

The stop-and-go candidate comes first; the blended one is abandoned as soon as a TOPP
pass shows it cannot be shorter (later passes only tighten its constraints), which
keeps the cost of the pair close to that of the cheaper one.

The blended candidate:

1. **Path.** The waypoints become a C2 path (:class:`~planners.timing_path.BlendedPath`):
   straight joint-space lines with degree-5 Bezier blends at the corners, within
   ``blend_tolerance`` [rad] (Euclidean joint distance) of the polyline. With
   ``blend_tolerance=0`` the motion stops at every corner and follows the polyline
   exactly.
2. **Velocity and acceleration.** A reachability-analysis TOPP (TOPP-RA's
   discretisation, closed-form scalar passes compiled with numba) on a grid that is
   dense in the blends, with constraints made conservative over each grid interval so
   they hold between grid points too.
3. **Jerk.** The path-parameter profile is smoothed by a moving average of width
   ``Tj`` in time (:class:`~planners.timing_profile.FilteredProfile`): the path is
   followed exactly, velocity and acceleration stay within their bounds (the
   constraints are dilated over the distance covered in ``Tj``), and jerk is bounded by
   the acceleration change over ``Tj``. ``Tj`` starts at ``max(a_i / j_i)`` and grows
   only as far as the measured jerk needs. A rest-to-rest motion gets ``Tj`` longer;
   joints with a jerk limit far above acceleration (the Panda) lose almost nothing.

Both candidates are **checked**: the trajectory is evaluated at every knot and inside
every interval (the quintic the streamer samples); if any quantity exceeds its limit
the candidate is rebuilt with a longer ``Tj`` or slightly lower limits, up to
``max_attempts`` times, and otherwise it fails with the reason, never a trajectory that
breaks a limit.

toppra and ruckig are the peers this is measured against (``cellctl bench timing``):
toppra's velocity-plus-acceleration optimum on the same path is the lower bound of the
duration; ruckig (whose community version has no intermediate waypoints) moves
waypoint to waypoint with a stop at each, all joints phase-synchronised where it can.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import as_vector
from planners.errors import InputError
from planners.limit_check import LimitKind, peak_ratios, tcp_speeds
from planners.limits import JointLimits
from planners.timing_lines import line_tcp_gain, stop_and_go
from planners.timing_path import BlendedPath, split_at_corners
from planners.timing_profile import FilteredProfile, speed_caps, topp, window_max
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["TimingMethod", "TimingResult", "TimingStats", "TimingStatus", "time_parameterize"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_GRID = 100  # uniform grid intervals over the path, before the blend refinement
_BLEND_INTERVALS = 8  # grid intervals per blend
_KNOT_SPACING = 0.01  # largest time between trajectory knots in a blend [s]
_LINE_KNOT_EVERY = 10  # on lines (where the quintic is exact) a knot every 10 spacings
_MIN_KNOT_GAP = 1e-4  # knots closer than this [s] are merged
_JERK_SHARE = 0.85  # share of the jerk limit reserved for the path's own third derivative
_EXACT_GUARD = 1e-9  # share of the velocity and acceleration limits held back from ruckig
_TJ_GROWTH = 4.0  # largest growth of the jerk window per attempt
_TCP_SPACING = 0.005  # TCP speed checked at least this often [s]
_FRACTIONS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


class TimingStatus(Enum):
    """Outcome of :func:`time_parameterize`."""

    SUCCESS = "success"
    INFEASIBLE = "infeasible"
    LIMITS_NOT_MET = "limits_not_met"


class TimingMethod(Enum):
    """Which trajectory :func:`time_parameterize` builds.

    Attributes:
        AUTO: Both candidates below; the shorter wins (the blended one is abandoned as
            soon as it provably cannot be shorter).
        BLENDED: The blended path (corners rounded within ``blend_tolerance``), TOPP
            and jerk filter.
        STOP_AND_GO: ruckig along each straight line of the polyline, at rest at every
            corner (the path followed exactly).
    """

    AUTO = "auto"
    BLENDED = "blended"
    STOP_AND_GO = "stop_and_go"


@dataclass(frozen=True)
class TimingStats:
    """Figures of one time parameterization.

    Attributes:
        compute_time: Wall time spent [s].
        duration: Trajectory duration [s] (0 on failure).
        jerk_window: Width ``Tj`` of the jerk filter [s].
        grid_intervals: TOPP grid intervals (summed over stop-separated parts).
        knots: Trajectory knots.
        attempts: Passes of the build-and-check loop (largest over parts).
        path_length: Length of the blended path in joint space [rad] (lines' arc length
            plus blend parameter length).
        peak_ratio: Largest value / limit over the checked samples, per quantity
            (``velocity``, ``acceleration``, ``jerk``, ``tcp_speed``).
        method: The candidate returned (``None`` on failure or for a still trajectory).
        candidates: Durations [s] of the candidates completed, in the order computed
            (a blended candidate abandoned because it could not be shorter is absent).
    """

    compute_time: float = 0.0
    duration: float = 0.0
    jerk_window: float = 0.0
    grid_intervals: int = 0
    knots: int = 0
    attempts: int = 0
    path_length: float = 0.0
    peak_ratio: tuple[tuple[str, float], ...] = ()
    method: TimingMethod | None = None
    candidates: tuple[tuple[TimingMethod, float], ...] = ()


@dataclass(frozen=True)
class TimingResult:
    """Result of :func:`time_parameterize`.

    Attributes:
        status: SUCCESS, or why not.
        reason: ``None`` on success; otherwise what failed, with numbers.
        trajectory: The trajectory on success, ``None`` otherwise.
        stats: Figures of the run.
    """

    status: TimingStatus
    reason: str | None
    trajectory: Trajectory | None
    stats: TimingStats

    @property
    def success(self) -> bool:
        """True when a trajectory within every limit was found."""
        return self.status is TimingStatus.SUCCESS


class _NotShorterError(Exception):
    """The blended candidate cannot be shorter than the stop-and-go one."""


class _FailureError(Exception):
    def __init__(self, status: TimingStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _check_inputs(
    path: npt.ArrayLike,
    limits: JointLimits,
    arm: Arm | None,
    tcp_speed: float | None,
    blend_tolerance: float,
) -> NDArray[np.float64]:
    if not isinstance(limits, JointLimits):
        raise InputError(f"limits: expected a JointLimits, got {type(limits).__name__}")
    dof = limits.dof
    try:
        W = np.array(path, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"path: expected an (M, {dof}) array of joint waypoints") from exc
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] != dof:
        raise InputError(
            f"path: expected an (M, {dof}) array of joint waypoints, got shape {W.shape}"
        )
    if not np.all(np.isfinite(W)):
        rows = sorted({int(i) for i in np.argwhere(~np.isfinite(W))[:, 0]})
        raise InputError(f"path: waypoints {rows} hold non-finite values")
    outside = ~limits.within(W)
    if outside.any():
        i = int(np.argmax(outside))
        j = int(np.argmax((W[i] < limits.lower) | (W[i] > limits.upper)))
        raise InputError(
            f"path[{i}]: joint {limits.names[j]!r} at {W[i, j]:.6g} is outside"
            f" [{limits.lower[j]:.6g}, {limits.upper[j]:.6g}]"
        )
    if arm is not None and tuple(arm.joint_names) != tuple(limits.names):
        raise InputError(
            f"arm: joints {list(arm.joint_names)} differ from limits {list(limits.names)}"
        )
    if tcp_speed is not None:
        if not (np.isfinite(tcp_speed) and tcp_speed > 0):
            raise InputError(f"tcp_speed: expected a positive speed [m/s], got {tcp_speed!r}")
        if arm is None:
            raise InputError("arm: needed for a tcp_speed cap (TCP = arm.fk_batch)")
    if not (np.isfinite(blend_tolerance) and blend_tolerance >= 0):
        raise InputError(
            f"blend_tolerance: expected a non-negative distance [rad], got {blend_tolerance!r}"
        )
    return W


def _path_speed(v: NDArray[np.float64] | None, tangent: NDArray[np.float64], field: str) -> float:
    """Path speed of a boundary velocity, which must point along the path's tangent."""
    if v is None:
        return 0.0
    sd = float(v @ tangent)
    if np.linalg.norm(v - sd * tangent) > 1e-6 * max(1.0, float(np.linalg.norm(v))) or sd < 0:
        raise InputError(
            f"{field}: must point along the path's {'first' if 'start' in field else 'last'}"
            f" segment (direction {np.round(tangent, 6).tolist()}), got {v.tolist()}"
        )
    return max(sd, 0.0)


def time_parameterize(
    path: npt.ArrayLike,
    limits: JointLimits,
    *,
    arm: Arm | None = None,
    tcp_speed: float | None = None,
    start_velocity: npt.ArrayLike | None = None,
    end_velocity: npt.ArrayLike | None = None,
    blend_tolerance: float = 0.05,
    margin: float = 1e-3,
    max_attempts: int = 6,
    method: TimingMethod = TimingMethod.AUTO,
) -> TimingResult:
    """Time-parameterize joint waypoints under joint limits and a TCP speed cap.

    Args:
        path: (M, dof) joint waypoints [rad], M >= 1, within the position limits.
            Repeated waypoints are merged; a single (or all-equal) waypoint gives a
            one-knot trajectory of duration 0.
        limits: Joint limits (position, velocity, acceleration, jerk).
        arm: The arm (its TCP by ``arm.fk_batch``), needed for ``tcp_speed``.
        tcp_speed: Largest TCP linear speed [m/s], or ``None``.
        start_velocity: (dof,) joint velocity at the start [rad/s], along the first
            segment (default rest). The start acceleration is zero.
        end_velocity: (dof,) joint velocity at the end [rad/s], along the last segment
            (default rest). The end acceleration is zero, so two trajectories that
            share a boundary velocity concatenate with continuous acceleration.
        blend_tolerance: Largest distance of the path from the polyline at a corner
            (Euclidean, joint space) [rad]; 0 stops at every corner (both candidates
            then follow the polyline exactly).
        margin: Fraction of every velocity, acceleration and jerk limit held back for
            numerical safety by the blended candidate; the stop-and-go candidate is
            exact (closed form) and holds it back of the jerk limit only.
            Every result is checked against the full limits.
        max_attempts: Build-and-check passes (per candidate) before giving up.
        method: Which candidate(s) to build; ``AUTO`` returns the shorter, and
            ``stats.method`` says which one that was.

    Returns:
        A :class:`TimingResult`; on success ``trajectory`` starts at time 0 at
        ``path[0]`` and ends at ``path[-1]``. With ``AUTO`` it fails only when both
        candidates fail (the reason is the blended candidate's, else the other's).

    Raises:
        InputError: non-finite or out-of-limit waypoints, a joint count that does not
            match ``limits``, a boundary velocity not along the path, a bad
            ``tcp_speed``, ``blend_tolerance`` or ``method``; the message names the field.
    """
    t0 = time.perf_counter()
    W = _check_inputs(path, limits, arm, tcp_speed, blend_tolerance)
    dof = limits.dof
    v0 = None if start_velocity is None else as_vector(start_velocity, dof, "start_velocity")
    v1 = None if end_velocity is None else as_vector(end_velocity, dof, "end_velocity")
    if not (0 <= margin < 0.5):
        raise InputError(f"margin: expected a fraction in [0, 0.5), got {margin!r}")
    if max_attempts < 1:
        raise InputError(f"max_attempts: expected >= 1, got {max_attempts!r}")
    if not isinstance(method, TimingMethod):
        raise InputError(
            f"method: expected one of {[m.name for m in TimingMethod]} (TimingMethod),"
            f" got {method!r}"
        )
    try:
        bp0 = BlendedPath.from_waypoints(W, blend_tolerance if blend_tolerance > 0 else 1.0)
        Wd = bp0.waypoints
        if len(Wd) == 1:
            if (v0 is not None and np.any(v0 != 0)) or (v1 is not None and np.any(v1 != 0)):
                raise _FailureError(
                    TimingStatus.INFEASIBLE,
                    "path: zero length, but a boundary velocity is not zero",
                )
            z = np.zeros((1, dof))
            traj = Trajectory(limits.names, np.zeros(1), Wd[:1], z, z)
            stats = TimingStats(compute_time=time.perf_counter() - t0, knots=1, attempts=0)
            return TimingResult(TimingStatus.SUCCESS, None, traj, stats)
        first = (Wd[1] - Wd[0]) / np.linalg.norm(Wd[1] - Wd[0])
        last = (Wd[-1] - Wd[-2]) / np.linalg.norm(Wd[-1] - Wd[-2])
        sd0 = _path_speed(v0, first, "start_velocity")
        sd1 = _path_speed(v1, last, "end_velocity")
    except _FailureError as fail:
        stats = TimingStats(compute_time=time.perf_counter() - t0)
        logger.info("time parameterization failed: %s", fail.reason)
        return TimingResult(fail.status, fail.reason, None, stats)
    lines = split_at_corners(Wd)
    candidates: list[tuple[TimingMethod, float]] = []
    best: tuple[Trajectory, dict[str, float]] | None = None
    failure: _FailureError | None = None
    if method is not TimingMethod.BLENDED:
        try:
            best = _stop_and_go(lines, limits, arm, tcp_speed, sd0, sd1, margin, max_attempts)
            candidates.append((TimingMethod.STOP_AND_GO, best[0].duration))
        except _FailureError as fail:
            failure = fail
            logger.debug("stop-and-go candidate: %s", fail.reason)
    if method is not TimingMethod.STOP_AND_GO:
        bound = best[0].duration if best is not None else np.inf
        try:
            blended = _blended(bp0, lines, limits, arm, tcp_speed, sd0, sd1, margin,
                               max_attempts, blend_tolerance, bound)  # fmt: skip
            candidates.append((TimingMethod.BLENDED, blended[0].duration))
            if best is None or blended[0].duration < best[0].duration:
                best = blended
        except _NotShorterError:
            pass
        except _FailureError as fail:
            failure = fail if best is None else failure
            logger.debug("blended candidate: %s", fail.reason)
    if best is None:
        assert failure is not None
        stats = TimingStats(compute_time=time.perf_counter() - t0)
        logger.info("time parameterization failed: %s", failure.reason)
        return TimingResult(failure.status, failure.reason, None, stats)
    traj, info = best
    stats = TimingStats(
        compute_time=time.perf_counter() - t0,
        duration=traj.duration,
        jerk_window=info["Tj"],
        grid_intervals=int(info["grid"]),
        knots=int(traj.t.size),
        attempts=int(info["attempts"]),
        path_length=float(info["length"]),
        peak_ratio=tuple((k, info[k]) for k in ("velocity", "acceleration", "jerk", "tcp_speed")),
        method=TimingMethod.STOP_AND_GO if info["stop_and_go"] else TimingMethod.BLENDED,
        candidates=tuple(candidates),
    )
    return TimingResult(TimingStatus.SUCCESS, None, traj, stats)


def _stop_and_go(
    lines: list[NDArray[np.float64]],
    limits: JointLimits,
    arm: Arm | None,
    tcp_speed: float | None,
    sd0: float,
    sd1: float,
    margin: float,
    max_attempts: int,
) -> tuple[Trajectory, dict[str, float]]:
    """The stop-and-go candidate (ruckig on each line), checked like the blended one.

    ruckig's profile is exact, so velocity and acceleration use the full limits (less
    ``_EXACT_GUARD``); ``margin`` is held back of the jerk limit, where the quintic's
    rounding over short phases shows. A check that finds an excess lowers that limit.
    """
    v_scale = a_scale = 1.0 - _EXACT_GUARD
    j_scale = 1.0 - margin
    gains = None
    if tcp_speed is not None and arm is not None:
        gains = np.array([line_tcp_gain(arm, run[0], run[-1]) for run in lines])
    peaks: dict[str, float] = {}
    length = float(sum(np.linalg.norm(run[-1] - run[0]) for run in lines))
    for attempt in range(1, max_attempts + 1):
        caps = None
        if gains is not None and tcp_speed is not None:
            caps = tcp_speed * (1.0 - margin) * v_scale / np.maximum(gains, 1e-300)
        res = stop_and_go(lines, limits, start_speed=sd0, end_speed=sd1,
                          scale=(v_scale, a_scale, j_scale), speed_caps=caps)  # fmt: skip
        if res.trajectory is None:
            raise _FailureError(TimingStatus.INFEASIBLE, f"stop-and-go: {res.reason}")
        traj = res.trajectory
        peaks = _peaks(traj, limits, arm, tcp_speed)
        if max(peaks.values()) <= 1.0:
            info = {"Tj": 0.0, "grid": 0, "attempts": attempt, "length": length,
                    "stop_and_go": 1.0, **peaks}  # fmt: skip
            return traj, info
        logger.debug("stop-and-go attempt %d: peaks %s", attempt, peaks)
        for key, scale in (("velocity", "v"), ("tcp_speed", "v"), ("acceleration", "a"),
                           ("jerk", "j")):  # fmt: skip
            if peaks[key] > 1.0:
                factor = min(0.995 / peaks[key], 1.0 - margin)
                if scale == "v":
                    v_scale *= factor
                elif scale == "a":
                    a_scale *= factor
                else:
                    j_scale *= factor
    raise _FailureError(
        TimingStatus.LIMITS_NOT_MET,
        f"stop-and-go: limits still exceeded after {max_attempts} attempts (peak/limit: "
        + ", ".join(f"{k} {v:.4g}" for k, v in peaks.items())
        + ")",
    )


def _blended(
    bp0: BlendedPath,
    lines: list[NDArray[np.float64]],
    limits: JointLimits,
    arm: Arm | None,
    tcp_speed: float | None,
    sd0: float,
    sd1: float,
    margin: float,
    max_attempts: int,
    blend_tolerance: float,
    bound: float,
) -> tuple[Trajectory, dict[str, float]]:
    """The blended candidate (TOPP and jerk filter); ``_NotShorterError`` once it cannot
    be shorter than ``bound`` [s]."""
    runs = [bp0.waypoints] if blend_tolerance > 0 else lines
    parts: list[Trajectory] = []
    infos: list[dict[str, float]] = []
    spent = 0.0
    for i, run in enumerate(runs):
        bp = bp0 if blend_tolerance > 0 else BlendedPath.from_waypoints(run, 1.0)
        traj, info = _single(
            bp, limits, arm, tcp_speed, sd0 if i == 0 else 0.0,
            sd1 if i == len(runs) - 1 else 0.0, margin, max_attempts, bound - spent,
        )  # fmt: skip
        spent += traj.duration
        parts.append(traj)
        infos.append(info)
    traj = parts[0] if len(parts) == 1 else Trajectory.concatenate(parts, atol=1e-9)
    keys = ("velocity", "acceleration", "jerk", "tcp_speed")
    info = {k: max(inf[k] for inf in infos) for k in keys}
    info["Tj"] = max(inf["Tj"] for inf in infos)
    info["grid"] = sum(inf["grid"] for inf in infos)
    info["attempts"] = max(inf["attempts"] for inf in infos)
    info["length"] = sum(inf["length"] for inf in infos)
    info["stop_and_go"] = 0.0
    return traj, info


def _single(
    bp: BlendedPath,
    limits: JointLimits,
    arm: Arm | None,
    tcp_speed: float | None,
    sd0: float,
    sd1: float,
    margin: float,
    max_attempts: int,
    bound: float = np.inf,
) -> tuple[Trajectory, dict[str, float]]:
    """One blended path, boundary path speeds ``sd0``/``sd1``: trajectory and figures.

    Raises ``_NotShorterError`` as soon as a TOPP pass shows that the result would take
    ``bound`` [s] or longer: later passes and attempts only tighten the constraints
    (wider dilation, longer ``Tj``, lower limits), so the duration only grows.
    """
    s = bp.grid(_GRID, _BLEND_INTERVALS)
    N = s.size - 1
    mids = 0.5 * (s[:-1] + s[1:])
    fs = np.sort(np.concatenate((s, mids, 0.5 * (s[:-1] + mids), 0.5 * (mids + s[1:]))))
    D1 = np.abs(bp(fs, 1))
    D2 = np.abs(bp(fs, 2))
    D3 = np.abs(bp(fs, 3))
    cols = [D1, D2, D3]
    if tcp_speed is not None and arm is not None:
        q = bp(fs, 0)
        qs = bp(fs, 1)
        eps = 1e-6
        dp = arm.fk_batch(q + eps * qs)[:, :3, 3] - arm.fk_batch(q - eps * qs)[:, :3, 3]
        cols.append((np.linalg.norm(dp, axis=1) / (2 * eps))[:, None])
    F = np.hstack(cols)
    v_scale = a_scale = 1.0 - margin
    j_scale = 1.0 - margin
    Tj = float(np.max(limits.acceleration / limits.jerk))
    peaks: dict[str, float] = {}
    for attempt in range(1, max_attempts + 1):
        vel = limits.velocity * v_scale
        acc = limits.acceleration * a_scale
        jerk = limits.jerk * j_scale
        tcp = None if tcp_speed is None else tcp_speed * v_scale
        delta = np.zeros(N)
        x = u = np.zeros(0)
        for _ in range(3):  # dilation by the distance covered within Tj
            C = window_max(fs, F, s[:-1] - delta, s[1:] + delta)
            X = speed_caps(C, vel, acc, _JERK_SHARE * jerk, tcp, bp.dof)
            hold_start = int(np.searchsorted(s, sd0 * Tj, side="left")) if sd0 > 0 else 0
            hold_end = (
                int(np.searchsorted(s, bp.length - sd1 * Tj, side="right")) - 1 if sd1 > 0 else N
            )
            if hold_start > hold_end:
                raise _FailureError(
                    TimingStatus.INFEASIBLE,
                    f"path: {bp.length:.4g} rad is too short to hold the boundary speeds for the"
                    f" jerk window of {Tj:.3g} s",
                )
            code, x, u = topp(s, C[:, : bp.dof], C[:, bp.dof : 2 * bp.dof], X, acc, sd0**2, sd1**2,
                              hold_start, hold_end)  # fmt: skip
            if code == 1:
                raise _FailureError(
                    TimingStatus.INFEASIBLE,
                    f"start_velocity: path speed {sd0:.6g} cannot be kept within the limits "
                    "while following the path",
                )
            if code != 0:
                raise _FailureError(
                    TimingStatus.INFEASIBLE,
                    f"end_velocity: path speed {sd1:.6g} cannot be reached within the limits",
                )
            if np.isfinite(bound):
                lower = FilteredProfile.build(s, x, u, Tj)
                if lower.t_end - lower.t_start >= bound:
                    raise _NotShorterError
            # The window [t - Tj, t] covers at most Tj * (largest speed nearby) of path;
            # speeds only drop as the dilation grows, so this profile's speeds bound it.
            sd = np.sqrt(np.maximum(x, 0.0))
            reach = Tj * float(sd.max())
            v_int = np.maximum(sd[:-1], sd[1:])[:, None]
            need = Tj * window_max(mids, v_int, s[:-1] - reach, s[1:] + reach)[:, 0] * 1.02
            need = np.maximum(need, Tj * v_int[:, 0])
            if np.all(need <= delta):
                break
            delta = np.maximum(delta, need)
        profile = FilteredProfile.build(s, x, u, Tj)
        jerk_ahead = _jerk_at_breakpoints(bp, profile, limits.jerk)
        if jerk_ahead > 1.0:  # the check would fail: skip building the trajectory
            peaks = dict.fromkeys(("position", "velocity", "acceleration", "tcp_speed"), 0.0)
            peaks["jerk"] = jerk_ahead
        else:
            traj = _compose(bp, profile, limits.names)
            peaks = _peaks(traj, limits, arm, tcp_speed)
            if max(peaks.values()) <= 1.0:
                info = {"Tj": Tj, "grid": N, "attempts": attempt, "length": bp.length, **peaks}
                return traj, info
        logger.debug("attempt %d: peaks %s with Tj %.4g", attempt, peaks, Tj)
        if peaks["jerk"] > 1.0:
            Tj *= min(peaks["jerk"] * 1.02, _TJ_GROWTH)
            if attempt >= 3:
                j_scale *= 0.9
        for key in ("velocity", "tcp_speed"):
            if peaks[key] > 1.0:
                v_scale *= 0.995 / peaks[key]
        if peaks["acceleration"] > 1.0:
            a_scale *= 0.995 / peaks["acceleration"]
    raise _FailureError(
        TimingStatus.LIMITS_NOT_MET,
        f"limits still exceeded after {max_attempts} attempts (peak/limit: "
        + ", ".join(f"{k} {v:.4g}" for k, v in peaks.items())
        + ")",
    )


def _jerk_at_breakpoints(
    bp: BlendedPath, profile: FilteredProfile, jerk: NDArray[np.float64]
) -> float:
    """Largest joint jerk / limit of ``q(s_f(t))`` at the filter's breakpoints.

    The filtered jerk is piecewise constant between breakpoints, so these samples show a
    ``Tj`` that is too short (an acceleration switch within the window) before the
    trajectory is built. Joint jerk: ``q1 sddd + 3 q2 sd sdd + q3 sd^3`` (``qk`` the
    path's k-th derivative in ``s``).
    """
    t = np.append(profile.breakpoints(), profile.t_start)
    sf, sd, sdd, sddd = profile.filtered(t)
    j = (bp(sf, 1) * sddd[:, None] + 3 * bp(sf, 2) * (sd * sdd)[:, None]
         + bp(sf, 3) * (sd**3)[:, None])  # fmt: skip
    return float(np.max(np.abs(j) / jerk)) if j.size else 0.0


def _compose(bp: BlendedPath, profile: FilteredProfile, names: tuple[str, ...]) -> Trajectory:
    """Sample ``q(s_f(t))`` at knots placed at every jerk discontinuity."""
    ta, tb = profile.t_start, profile.t_end
    n_fill = max(2, int(np.ceil((tb - ta) / _KNOT_SPACING)) + 1)
    fill = np.linspace(ta, tb, n_fill)
    piece = np.clip(np.searchsorted(bp.s0, profile.filtered(fill)[0], side="right") - 1, 0, None)
    in_blend = bp.is_blend[piece] | (np.arange(n_fill) % _LINE_KNOT_EVERY == 0)
    cand = np.unique(np.concatenate((fill[in_blend], [ta, tb], profile.breakpoints())))
    sf = profile.filtered(cand)[0]
    sj = bp.breakpoints[1:-1]
    if sj.size:
        idx = np.clip(np.searchsorted(sf, sj), 1, cand.size - 1)
        tj = profile.times_at(sj, cand[idx - 1], cand[idx], iterations=32)
        cand = np.unique(np.concatenate((cand, tj)))
    gap_ok = np.concatenate(([True], np.diff(cand) >= _MIN_KNOT_GAP))
    gap_ok[-1] = True
    if cand.size > 2 and cand[-1] - cand[-2] < _MIN_KNOT_GAP:
        gap_ok[-2] = False
    cand = cand[gap_ok]
    sf, sd, sdd, _ = profile.filtered(cand)
    sf = np.clip(sf, 0.0, bp.length)
    sf[0], sf[-1] = 0.0, bp.length
    q = bp(sf, 0)
    q1 = bp(sf, 1)
    q2 = bp(sf, 2)
    qd = q1 * sd[:, None]
    qdd = q1 * sdd[:, None] + q2 * (sd**2)[:, None]
    q[0], q[-1] = bp.waypoints[0], bp.waypoints[-1]
    qdd[0], qdd[-1] = 0.0, 0.0
    return Trajectory(names, cand - ta, q, qd, qdd)


def _peaks(
    traj: Trajectory, limits: JointLimits, arm: Arm | None, tcp_speed: float | None
) -> dict[str, float]:
    """Largest value / limit over every interval of the trajectory (see ``peak_ratios``)."""
    r = peak_ratios(traj, limits)
    out = {
        "position": r[LimitKind.POSITION] * 1e6,  # any excursion (> 1e-6 of the range) fails
        "velocity": r[LimitKind.VELOCITY],
        "acceleration": r[LimitKind.ACCELERATION],
        "jerk": r[LimitKind.JERK],
        "tcp_speed": 0.0,
    }
    if tcp_speed is not None and arm is not None:
        # every interval at fractions of it, and every _TCP_SPACING (long intervals)
        f = _FRACTIONS[:-1]
        times = traj.t[0] + np.arange(0.0, traj.duration, _TCP_SPACING)
        q = np.concatenate((traj.sample_intervals(f, 0).reshape(-1, traj.dof),
                            traj.sample(times, 0)))  # fmt: skip
        qd = np.concatenate((traj.sample_intervals(f, 1).reshape(-1, traj.dof),
                             traj.sample(times, 1)))  # fmt: skip
        out["tcp_speed"] = float(np.max(tcp_speeds(arm, q, qd)) / tcp_speed) if q.size else 0.0
    return out
