"""Stop-and-go timing on the polyline: ruckig's jerk-limited profile along each straight line.

The waypoints are joined by straight joint-space lines and the motion comes to rest at
every corner (collinear waypoints in a row are one line). On a line from ``a`` to
``b`` (length ``L``, unit direction ``u``) the joints move as ``q = a + u s(t)``, so the
per-joint limits become limits on the scalar ``s``:
``sd <= min_i v_i / |u_i|``, ``|sdd| <= min_i a_i / |u_i|``, ``|sddd| <= min_i j_i / |u_i|``
(and, with a TCP speed cap, ``sd <= tcp / max |J(q) u|`` over the line). ruckig's
one-DoF time-optimal profile under these limits is the fastest jerk-limited motion
along that line; it is exact (closed form) and takes a few microseconds.

Each ruckig profile is a sequence of constant-jerk phases, so ``s(t)`` is a cubic on
each phase and the trajectory's knots are placed at the phase boundaries with ruckig's
own boundary states: the quintic Hermite between two knots is then exactly ruckig's
cubic. Every knot's ``q``, ``qd`` and ``qdd`` are ``a + u s``, ``u sd`` and ``u sdd``,
and the quintic is linear in its knot data, so the whole trajectory lies on the line
(up to rounding, ~1e-15 rad).

Phases shorter than ``_MIN_PHASE`` are merged into their neighbour (a quintic over a
tiny interval amplifies the rounding of its end positions into its jerk), which makes
that interval approximate; :func:`planners.timing.time_parameterize` checks every
trajectory against the limits in any case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from ruckig import InputParameter, Result, Ruckig
from ruckig import Trajectory as RuckigTrajectory

from planners.limits import JointLimits
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["LineTiming", "line_tcp_gain", "stop_and_go"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_MIN_PHASE = 2e-4  # phases shorter than this [s] are merged into the next knot interval
_TCP_SAMPLES = 33  # samples per line for the largest TCP speed per unit path speed
_TCP_STEP = 1e-6  # central-difference step along the line [rad]


@dataclass(frozen=True)
class LineTiming:
    """Result of :func:`stop_and_go`.

    Attributes:
        trajectory: The trajectory, or ``None`` when some line has no profile.
        reason: ``None``, or why there is no trajectory.
    """

    trajectory: Trajectory | None
    reason: str | None


def line_tcp_gain(arm: Arm, a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Largest TCP speed per unit path speed ``|J(q) u|`` on the line from ``a`` to ``b``.

    Sampled at ``_TCP_SAMPLES`` evenly spaced points of the line (central differences of
    ``arm.fk_batch``); [m/rad].
    """
    d = b - a
    u = d / np.linalg.norm(d)
    q = a + np.linspace(0.0, 1.0, _TCP_SAMPLES)[:, None] * d
    p1 = arm.fk_batch(np.concatenate((q + _TCP_STEP * u, q - _TCP_STEP * u)))[:, :3, 3]
    n = q.shape[0]
    return float(np.max(np.linalg.norm(p1[:n] - p1[n:], axis=1)) / (2 * _TCP_STEP))


def stop_and_go(
    lines: list[NDArray[np.float64]],
    limits: JointLimits,
    *,
    start_speed: float = 0.0,
    end_speed: float = 0.0,
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0),
    speed_caps: NDArray[np.float64] | None = None,
) -> LineTiming:
    """Time the lines one after another, at rest between them.

    Args:
        lines: Runs of collinear waypoints, each (>= 2, dof), sharing their end points
            (:func:`planners.timing_path.split_at_corners`); each run is one line from
            its first to its last waypoint.
        limits: Joint limits.
        start_speed: Path speed at the start of the first line [rad/s], along it.
        end_speed: Path speed at the end of the last line [rad/s], along it.
        scale: Fractions of the (velocity, acceleration, jerk) limits to use.
        speed_caps: (len(lines),) extra path-speed caps per line [rad/s] (TCP speed),
            or ``None``.

    Returns:
        A :class:`LineTiming`: the trajectory, starting at time 0 at the first
        waypoint, or the reason there is none (a boundary speed that cannot be reached
        or kept without leaving the line).
    """
    otg = Ruckig(1)
    inp = InputParameter(1)
    t_parts: list[NDArray[np.float64]] = []
    q_parts: list[NDArray[np.float64]] = []
    qd_parts: list[NDArray[np.float64]] = []
    qdd_parts: list[NDArray[np.float64]] = []
    t_off = 0.0
    for k, run in enumerate(lines):
        a, b = run[0], run[-1]
        d = b - a
        length = float(np.linalg.norm(d))
        u = d / length
        au = np.abs(u)
        moving = au > 1e-12  # a unit vector: some component is >= 1/sqrt(dof); tiny ones overflow
        v_s = float(np.min(limits.velocity[moving] / au[moving])) * scale[0]
        a_s = float(np.min(limits.acceleration[moving] / au[moving])) * scale[1]
        j_s = float(np.min(limits.jerk[moving] / au[moving])) * scale[2]
        if speed_caps is not None:
            v_s = min(v_s, float(speed_caps[k]))
        sd0 = start_speed if k == 0 else 0.0
        sd1 = end_speed if k == len(lines) - 1 else 0.0
        if max(sd0, sd1) > v_s:
            return LineTiming(
                None,
                f"line {k}: boundary path speed {max(sd0, sd1):.6g} is above the line's"
                f" speed limit {v_s:.6g}",
            )
        inp.current_position = [0.0]
        inp.current_velocity = [sd0]
        inp.current_acceleration = [0.0]
        inp.target_position = [length]
        inp.target_velocity = [sd1]
        inp.target_acceleration = [0.0]
        inp.max_velocity = [v_s]
        inp.max_acceleration = [a_s]
        inp.max_jerk = [j_s]
        traj = RuckigTrajectory(1)
        res = otg.calculate(inp, traj)
        if res not in (Result.Working, Result.Finished):
            return LineTiming(None, f"line {k}: ruckig found no profile ({res})")
        ext = traj.position_extrema[0]
        if ext.min < -1e-9 * length or ext.max > length * (1 + 1e-9):
            return LineTiming(
                None,
                f"line {k}: the boundary speeds cannot be met without leaving the line"
                f" (it would reach s = {ext.min:.4g} .. {ext.max:.4g} of {length:.4g})",
            )
        prof = traj.profiles[0][0]
        if prof.brake.duration > 0 or prof.accel.duration > 0:
            return LineTiming(None, f"line {k}: the start state is outside the limits")
        tb, sb, vb, ab = _knots(prof.t, prof.p, prof.v, prof.a)
        sb[-1], vb[-1], ab[-1] = length, sd1, 0.0
        q = a + sb[:, None] * u
        q[-1] = b
        first = 0 if k == 0 else 1  # the first knot of a later line is the last of the one before
        t_parts.append(tb[first:] + t_off)
        q_parts.append(q[first:])
        qd_parts.append(vb[first:, None] * u)
        qdd_parts.append(ab[first:, None] * u)
        t_off += float(tb[-1])
    t, q = np.concatenate(t_parts), np.concatenate(q_parts)
    traj = Trajectory(limits.names, t, q, np.concatenate(qd_parts), np.concatenate(qdd_parts))
    return LineTiming(traj, None)


def _knots(
    durations: list[float], p: list[float], v: list[float], a: list[float]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Phase-boundary times and states of one ruckig profile, tiny phases merged."""
    t = np.concatenate(([0.0], np.cumsum(durations)))
    keep = [0]
    for i, ti in enumerate(t[1:], start=1):
        if ti - t[keep[-1]] >= _MIN_PHASE:
            keep.append(i)
    if keep[-1] != len(t) - 1:  # the end is always a knot
        if len(keep) > 1:
            keep[-1] = len(t) - 1
        else:
            keep.append(len(t) - 1)
    idx = np.asarray(keep)
    return t[idx], np.asarray(p)[idx], np.asarray(v)[idx], np.asarray(a)[idx]
