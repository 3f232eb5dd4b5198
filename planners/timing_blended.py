"""The blended candidate: corners rounded within a tolerance, TOPP, then a jerk filter.

See :mod:`planners.timing` for the method; this module builds and checks the
trajectory of one :class:`~planners.timing_path.BlendedPath` (or, with a zero blend
tolerance, of each straight run in turn).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from planners.limits import JointLimits
from planners.timing_check import CandidateError, NotShorterError, TimingStatus, peak_figures
from planners.timing_path import BlendedPath, TimingPath
from planners.timing_profile import FilteredProfile, speed_caps, topp, window_max
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["blended"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_GRID = 100  # uniform grid intervals over the path, before the blend refinement
_BLEND_INTERVALS = 8  # grid intervals per blend
_KNOT_SPACING = 0.01  # largest time between trajectory knots in a blend [s]
_LINE_KNOT_EVERY = 10  # on lines (where the quintic is exact) a knot every 10 spacings
_MIN_KNOT_GAP = 1e-4  # knots closer than this [s] are merged
_JERK_SHARE = 0.85  # share of the jerk limit reserved for the path's own third derivative
_TJ_GROWTH = 4.0  # largest growth of the jerk window per attempt


def blended(
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
    """The blended candidate: trajectory and figures.

    Args:
        bp0: The blended path through the waypoints.
        lines: The straight runs of the polyline (used with a zero blend tolerance, when
            each run is timed from rest to rest).
        limits: Joint limits.
        arm: The arm, for the TCP speed cap.
        tcp_speed: TCP speed cap [m/s] or ``None``.
        sd0: Path speed at the start [rad/s].
        sd1: Path speed at the end [rad/s].
        margin: Fraction of the limits held back.
        max_attempts: Build-and-check passes per run.
        blend_tolerance: The path's tolerance [rad] (0: stop at every corner).
        bound: Stop with ``NotShorterError`` once the duration cannot be below this [s].

    Raises:
        CandidateError: no trajectory within the limits (status and reason).
        NotShorterError: see ``bound``.
    """
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
    bp: TimingPath,
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

    Raises ``NotShorterError`` as soon as a TOPP pass shows that the result would take
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
                raise CandidateError(
                    TimingStatus.INFEASIBLE,
                    f"path: {bp.length:.4g} rad is too short to hold the boundary speeds for the"
                    f" jerk window of {Tj:.3g} s",
                )
            code, x, u = topp(s, C[:, : bp.dof], C[:, bp.dof : 2 * bp.dof], X, acc, sd0**2, sd1**2,
                              hold_start, hold_end)  # fmt: skip
            if code == 1:
                raise CandidateError(
                    TimingStatus.INFEASIBLE,
                    f"start_velocity: path speed {sd0:.6g} cannot be kept within the limits "
                    "while following the path",
                )
            if code != 0:
                raise CandidateError(
                    TimingStatus.INFEASIBLE,
                    f"end_velocity: path speed {sd1:.6g} cannot be reached within the limits",
                )
            if np.isfinite(bound):
                lower = FilteredProfile.build(s, x, u, Tj)
                if lower.t_end - lower.t_start >= bound:
                    raise NotShorterError
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
            peaks = peak_figures(traj, limits, arm, tcp_speed)
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
    raise CandidateError(
        TimingStatus.LIMITS_NOT_MET,
        f"limits still exceeded after {max_attempts} attempts (peak/limit: "
        + ", ".join(f"{k} {v:.4g}" for k, v in peaks.items())
        + ")",
    )


def _jerk_at_breakpoints(
    bp: TimingPath, profile: FilteredProfile, jerk: NDArray[np.float64]
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


def _compose(bp: TimingPath, profile: FilteredProfile, names: tuple[str, ...]) -> Trajectory:
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


def curve(
    sp: TimingPath,
    limits: JointLimits,
    arm: Arm | None,
    tcp_speed: float | None,
    sd0: float,
    sd1: float,
    margin: float,
    max_attempts: int,
    bound: float = np.inf,
) -> tuple[Trajectory, dict[str, float]]:
    """The curve candidate: TOPP and jerk filter on a smooth fitted curve (one part).

    Same machinery as the blended candidate (:func:`_single`) on a
    :class:`~planners.timing_spline.SplinePath`.

    Raises:
        CandidateError: no trajectory within the limits (status and reason).
        NotShorterError: the duration cannot be below ``bound`` [s].
    """
    traj, info = _single(sp, limits, arm, tcp_speed, sd0, sd1, margin, max_attempts, bound)
    info["stop_and_go"] = 0.0
    return traj, info
