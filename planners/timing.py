"""Near time-optimal, jerk-limited time parameterization of a joint path.

:func:`time_parameterize` turns joint waypoints (a planner's path, the IK samples of a
Cartesian line) into a :class:`~planners.trajectory.Trajectory` that respects per-joint
position, velocity, acceleration and jerk limits and, optionally, a TCP speed cap. It
builds up to three candidates and returns the shortest (:class:`TimingMethod`):

* **Curve** (:mod:`planners.timing_spline`), for dense, smoothly turning waypoints (IK
  samples of a Cartesian line, a finely sampled arc): a smooth degree-5 least-squares
  spline within ``curve_tolerance`` (default 1e-4 rad) of every waypoint, and with an
  arm within ``tcp_tolerance`` (default 0.1 mm) of every waypoint's TCP, then the same
  TOPP and jerk filter as the blended candidate. Built first; stop-and-go follows only
  when a lower bound of its duration is below the curve's, and the blended candidate
  (a corner blend at every dense sample, so jerk-bound) is then not built.

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
from planners.limits import JointLimits
from planners.timing_blended import blended, curve
from planners.timing_check import CandidateError, NotShorterError, TimingStatus, peak_figures
from planners.timing_lines import line_tcp_gain, stop_and_go
from planners.timing_path import BlendedPath, dedupe, split_at_corners
from planners.timing_spline import fit_curve, is_dense
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["TimingMethod", "TimingResult", "TimingStats", "TimingStatus", "time_parameterize"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_EXACT_GUARD = 1e-9  # share of the velocity and acceleration limits held back from ruckig
_JERK_GUARD = 1e-6  # share of the jerk limit held back from ruckig (quintic rounding ~1e-8)


class TimingMethod(Enum):
    """Which trajectory :func:`time_parameterize` builds.

    Attributes:
        AUTO: Both candidates below; the shorter wins (the blended one is abandoned as
            soon as it provably cannot be shorter).
        BLENDED: The blended path (corners rounded within ``blend_tolerance``), TOPP
            and jerk filter.
        STOP_AND_GO: ruckig along each straight line of the polyline, at rest at every
            corner (the path followed exactly).
        CURVE: A smooth degree-5 spline fitted through dense waypoints within
            ``curve_tolerance`` of each (:mod:`planners.timing_spline`), TOPP and jerk
            filter. ``AUTO`` builds it (first) when the waypoints are dense and smoothly
            turning (``is_dense``: >= 6 waypoints, turns <= 0.35 rad, neighbouring
            segment lengths within 4x) and ``blend_tolerance`` is not 0.
    """

    AUTO = "auto"
    BLENDED = "blended"
    STOP_AND_GO = "stop_and_go"
    CURVE = "curve"


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
    curve_tolerance: float = 1e-4,
    tcp_tolerance: float = 1e-4,
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
            exact (closed form) and holds back only 1e-9 (1e-6 of jerk) unless its
            check fails, and ``margin`` of the TCP speed cap. Every result is
            checked against the full limits.
        max_attempts: Build-and-check passes (per candidate) before giving up.
        method: Which candidate(s) to build; ``AUTO`` returns the shortest, and
            ``stats.method`` says which one that was.
        curve_tolerance: Largest joint distance [rad] (Euclidean) of the ``CURVE``
            candidate's curve from each waypoint (its curve also stays within
            ``blend_tolerance`` of the polyline between waypoints).
        tcp_tolerance: With an ``arm``, largest TCP distance [m] of the ``CURVE``
            candidate's curve from each waypoint's TCP, and the most its TCP may stray
            further from the straight TCP chord between two waypoints than the joint
            polyline does (for a Cartesian line: from the line).

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
    for field, value in (("curve_tolerance", curve_tolerance), ("tcp_tolerance", tcp_tolerance)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{field}: expected a positive distance, got {value!r}")
    if not isinstance(method, TimingMethod):
        raise InputError(
            f"method: expected one of {[m.name for m in TimingMethod]} (TimingMethod),"
            f" got {method!r}"
        )
    try:
        Wd = dedupe(W)
        if len(Wd) == 1:
            if (v0 is not None and np.any(v0 != 0)) or (v1 is not None and np.any(v1 != 0)):
                raise CandidateError(
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
    except CandidateError as fail:
        stats = TimingStats(compute_time=time.perf_counter() - t0)
        logger.info("time parameterization failed: %s", fail.reason)
        return TimingResult(fail.status, fail.reason, None, stats)
    lines = split_at_corners(Wd)
    candidates: list[tuple[TimingMethod, float]] = []
    best: tuple[Trajectory, dict[str, float]] | None = None
    best_method: TimingMethod | None = None
    failure: CandidateError | None = None
    use_curve = method is TimingMethod.CURVE or (
        method is TimingMethod.AUTO and blend_tolerance > 0 and is_dense(Wd)
    )
    if use_curve:
        try:
            if blend_tolerance <= 0:
                raise CandidateError(
                    TimingStatus.INFEASIBLE,
                    "curve: blend_tolerance 0 asks for the polyline, at rest at every corner",
                )
            sp = fit_curve(
                Wd, tolerance=curve_tolerance, blend_tolerance=blend_tolerance,
                lower=limits.lower, upper=limits.upper,
                start_tangent=first if sd0 > 0 else None,
                end_tangent=last if sd1 > 0 else None, arm=arm, tcp_tolerance=tcp_tolerance,
            )  # fmt: skip
            best = curve(sp, limits, arm, tcp_speed, sd0, sd1, margin, max_attempts)
            best_method = TimingMethod.CURVE
            candidates.append((TimingMethod.CURVE, best[0].duration))
        except CandidateError as fail:
            failure = fail
            logger.debug("curve candidate: %s", fail.reason)
    sg_wanted = method is TimingMethod.STOP_AND_GO or (
        method is TimingMethod.AUTO
        and (best is None or _stop_and_go_bound(lines, limits, sd0, sd1) < best[0].duration)
    )
    if sg_wanted:
        try:
            res = _stop_and_go(lines, limits, arm, tcp_speed, sd0, sd1, margin, max_attempts)
            candidates.append((TimingMethod.STOP_AND_GO, res[0].duration))
            if best is None or res[0].duration < best[0].duration:
                best, best_method = res, TimingMethod.STOP_AND_GO
        except CandidateError as fail:
            failure = fail if best is None else failure
            logger.debug("stop-and-go candidate: %s", fail.reason)
    # With dense waypoints the blended path has a corner blend at every sample, which
    # makes it jerk-bound: AUTO does not build it when the curve candidate succeeded.
    if method is TimingMethod.BLENDED or (
        method is TimingMethod.AUTO and best_method is not TimingMethod.CURVE
    ):
        bound = best[0].duration if best is not None else np.inf
        bp0 = BlendedPath.from_waypoints(Wd, blend_tolerance if blend_tolerance > 0 else 1.0)
        try:
            blend_res = blended(bp0, lines, limits, arm, tcp_speed, sd0, sd1, margin,
                               max_attempts, blend_tolerance, bound)  # fmt: skip
            candidates.append((TimingMethod.BLENDED, blend_res[0].duration))
            if best is None or blend_res[0].duration < best[0].duration:
                best, best_method = blend_res, TimingMethod.BLENDED
        except NotShorterError:
            pass
        except CandidateError as fail:
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
        method=best_method,
        candidates=tuple(candidates),
    )
    return TimingResult(TimingStatus.SUCCESS, None, traj, stats)


def _stop_and_go_bound(
    lines: list[NDArray[np.float64]], limits: JointLimits, sd0: float, sd1: float
) -> float:
    """A lower bound of the stop-and-go duration [s] (0 with a moving start or end).

    Each line from rest to rest takes at least the time of the velocity- and
    acceleration-limited (no jerk limit) bang-bang profile along it.
    """
    if sd0 > 0 or sd1 > 0:
        return 0.0
    D = np.array([run[-1] - run[0] for run in lines])
    length = np.linalg.norm(D, axis=1)
    au = np.abs(D) / length[:, None]
    with np.errstate(divide="ignore"):
        v = np.min(limits.velocity / au, axis=1)
        a = np.min(limits.acceleration / au, axis=1)
    t = np.where(length <= v * v / a, 2 * np.sqrt(length / a), length / v + v / a)
    return float(np.sum(t))


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

    ruckig's profile is exact (closed form), so it gets the full limits less a guard
    against rounding: ``_EXACT_GUARD`` of velocity and acceleration, ``_JERK_GUARD`` of
    jerk (the quintic over a short phase turns the rounding of its end positions into
    jerk errors of ~1e-8 relative). The TCP cap, whose gain along each line is sampled,
    keeps ``margin``. A check that finds an excess lowers that limit by ``margin`` or
    more and tries again.
    """
    v_scale = a_scale = 1.0 - _EXACT_GUARD
    j_scale = 1.0 - _JERK_GUARD
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
            raise CandidateError(TimingStatus.INFEASIBLE, f"stop-and-go: {res.reason}")
        traj = res.trajectory
        peaks = peak_figures(traj, limits, arm, tcp_speed)
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
    raise CandidateError(
        TimingStatus.LIMITS_NOT_MET,
        f"stop-and-go: limits still exceeded after {max_attempts} attempts (peak/limit: "
        + ", ".join(f"{k} {v:.4g}" for k, v in peaks.items())
        + ")",
    )
