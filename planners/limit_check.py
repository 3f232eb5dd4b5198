"""Check a sampled trajectory against joint limits and a TCP speed cap.

The trajectory is sampled with :meth:`Trajectory.sample` (the function a streamer
sends) at a fixed rate (>= 1 kHz) and at every knot; jerk, which may jump at a knot,
is taken on both sides of every knot. Each quantity is compared with its limit:

* position: ``lower - tol <= q <= upper + tol`` with ``tol = rtol * (upper - lower)``;
* velocity, acceleration, jerk: ``|value| <= limit * (1 + rtol)``;
* TCP speed (with an ``arm`` and ``tcp_speed``): ``|v_tcp| <= tcp_speed * (1 + rtol)``,
  where ``v_tcp = J(q) qd`` is the TCP's linear velocity in the world, computed as a
  central difference of forward kinematics along ``qd`` (error ~1e-10 relative).

The joint limits are first checked on the exact peaks of every interval's quintic
(:func:`planners.poly_peaks.interval_peaks`, well under a millisecond for thousands of
knots): when no peak breaks a limit, no sample can, and the samples are not taken (the
usual case: a timed trajectory). Otherwise the samples find the first violations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.errors import InputError
from planners.limits import JointLimits
from planners.poly_peaks import interval_peaks
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["LimitKind", "LimitReport", "Violation", "check_limits", "peak_ratios", "tcp_speeds"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class LimitKind(Enum):
    """Which limit a violation breaks."""

    POSITION = "position"
    VELOCITY = "velocity"
    ACCELERATION = "acceleration"
    JERK = "jerk"
    TCP_SPEED = "tcp_speed"


@dataclass(frozen=True)
class Violation:
    """The first sample at which one joint (or the TCP) breaks one limit.

    Attributes:
        time: Trajectory time of the sample [s].
        kind: The limit broken.
        joint: Joint name, or the TCP link's name for :attr:`LimitKind.TCP_SPEED`.
        value: The sampled value (position, velocity ... in joint units; TCP speed [m/s]).
        limit: The limit it breaks (the bound on the side it crossed for position).
    """

    time: float
    kind: LimitKind
    joint: str
    value: float
    limit: float


@dataclass(frozen=True)
class LimitReport:
    """Result of :func:`check_limits`.

    Attributes:
        violations: The first violation of each (kind, joint) pair, in time order.
        peak_ratio: Largest ``|value| / limit`` per kind over the whole trajectory, between
            samples too (position: largest excursion past a limit as a fraction of the
            joint's range, 0 when inside; TCP speed: over the samples).
        samples: Number of sample times the check covers (at ``rate_hz`` and the knots).
    """

    violations: tuple[Violation, ...]
    peak_ratio: dict[LimitKind, float] = field(default_factory=dict)
    samples: int = 0

    @property
    def ok(self) -> bool:
        """True when no limit is broken."""
        return not self.violations

    @property
    def first(self) -> Violation | None:
        """The earliest violation, or ``None``."""
        return self.violations[0] if self.violations else None


def tcp_speeds(arm: Arm, q: NDArray[np.float64], qd: NDArray[np.float64]) -> NDArray[np.float64]:
    """TCP linear speed [m/s] for (M, dof) positions and velocities: (M,).

    Central difference of ``arm.fk_batch`` along ``qd`` with a step of 1e-6 rad.
    """
    norm = np.linalg.norm(qd, axis=1)
    eps = np.where(norm > 0, 1e-6 / np.maximum(norm, 1e-300), 0.0)[:, None]
    p_plus = arm.fk_batch(q + eps * qd)[:, :3, 3]
    p_minus = arm.fk_batch(q - eps * qd)[:, :3, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.linalg.norm(p_plus - p_minus, axis=1) / (2 * eps[:, 0])
    return np.where(norm > 0, v, 0.0)


def check_limits(
    traj: Trajectory,
    limits: JointLimits,
    *,
    arm: Arm | None = None,
    tcp_speed: float | None = None,
    rate_hz: float = 1000.0,
    rtol: float = 1e-6,
) -> LimitReport:
    """Sample ``traj`` and report every limit it breaks.

    Args:
        traj: The trajectory.
        limits: Joint limits; joint names must match the trajectory's.
        arm: The arm, needed for the TCP speed check.
        tcp_speed: Largest TCP speed [m/s], or ``None`` for no check.
        rate_hz: Sample rate [Hz], >= 1000.
        rtol: Relative tolerance on every limit.

    Returns:
        A :class:`LimitReport`; ``report.first`` is the earliest violation.

    Raises:
        InputError: mismatched joint names, a rate below 1 kHz, ``tcp_speed`` without
            an arm, or a non-positive ``tcp_speed`` / negative ``rtol``.
    """
    limits.require_names(traj.joint_names)
    if not (np.isfinite(rate_hz) and rate_hz >= 1000.0):
        raise InputError(f"rate_hz: expected >= 1000, got {rate_hz!r}")
    if not (np.isfinite(rtol) and rtol >= 0):
        raise InputError(f"rtol: expected a non-negative number, got {rtol!r}")
    if tcp_speed is not None:
        if not (np.isfinite(tcp_speed) and tcp_speed > 0):
            raise InputError(f"tcp_speed: expected a positive speed [m/s], got {tcp_speed!r}")
        if arm is None:
            raise InputError("arm: needed to check tcp_speed")
        if tuple(arm.joint_names) != traj.joint_names:
            raise InputError(f"arm: joints {list(arm.joint_names)} differ from the trajectory's")
    n = int(np.floor(traj.duration * rate_hz)) + 1
    grid = traj.t[0] + np.arange(n) / rate_hz
    extent = interval_peaks(traj, limits)
    span = limits.upper - limits.lower
    tol = rtol * span
    ratio_of = {
        LimitKind.POSITION: extent[0] / span,
        LimitKind.VELOCITY: extent[1] / limits.velocity,
        LimitKind.ACCELERATION: extent[2] / limits.acceleration,
        LimitKind.JERK: extent[3] / limits.jerk,
    }
    peaks = {k: float(v.max()) for k, v in ratio_of.items()}
    clean = bool(np.all(extent[0] <= tol)) and all(
        bool(np.all(ratio_of[k] <= 1 + rtol))
        for k in (LimitKind.VELOCITY, LimitKind.ACCELERATION, LimitKind.JERK)
    )
    if clean and tcp_speed is None:
        # No sample can break a joint limit: only count the samples the peaks stand for.
        m = np.rint((traj.t - traj.t[0]) * rate_hz)
        on_grid = (m < n) & (traj.t[0] + m / rate_hz == traj.t)
        inside = int(np.count_nonzero(grid <= traj.t[-1]))
        return LimitReport((), peaks, inside + int(np.count_nonzero(~on_grid)))
    times = np.unique(np.concatenate((grid, traj.t)))
    times = times[times <= traj.t[-1]]
    names = traj.joint_names
    found: list[Violation] = []

    def first_per_joint(
        kind: LimitKind, t: NDArray, bad: NDArray, vals: NDArray, lim: NDArray
    ) -> None:
        for j in np.flatnonzero(bad.any(axis=0)):
            i = int(np.argmax(bad[:, j]))
            found.append(
                Violation(float(t[i]), kind, names[j], float(vals[i, j]), float(lim[i, j]))
            )

    q = traj.sample(times, 0)
    qd = traj.sample(times, 1)
    if not clean:
        over = q > limits.upper + tol
        under = q < limits.lower - tol
        lim_pos = np.where(over, limits.upper, limits.lower)
        first_per_joint(LimitKind.POSITION, times, over | under, q, lim_pos)
        for kind, values, lim in (
            (LimitKind.VELOCITY, qd, limits.velocity),
            (LimitKind.ACCELERATION, traj.sample(times, 2), limits.acceleration),
        ):
            bad = np.abs(values) > lim * (1 + rtol)
            first_per_joint(kind, times, bad, values, np.broadcast_to(lim, values.shape))
        # jerk: right-continuous samples plus the left limit at every knot
        jerk = traj.sample(times, 3)
        jt = times
        if traj.t.size > 1:
            left = traj.sample_intervals([1.0], 3)[:, 0]
            jerk = np.concatenate((jerk, left))
            jt = np.concatenate((times, traj.t[1:]))
            order = np.argsort(jt, kind="stable")
            jerk, jt = jerk[order], jt[order]
        bad = np.abs(jerk) > limits.jerk * (1 + rtol)
        first_per_joint(LimitKind.JERK, jt, bad, jerk, np.broadcast_to(limits.jerk, jerk.shape))
    if tcp_speed is not None and arm is not None:
        v = tcp_speeds(arm, q, qd)
        peaks[LimitKind.TCP_SPEED] = float(v.max() / tcp_speed)
        bad_tcp = v > tcp_speed * (1 + rtol)
        if bad_tcp.any():
            i = int(np.argmax(bad_tcp))
            found.append(
                Violation(
                    float(times[i]), LimitKind.TCP_SPEED, arm.tcp_link, float(v[i]), tcp_speed
                )
            )
    found.sort(key=lambda v: (v.time, list(LimitKind).index(v.kind)))
    if found:
        logger.debug("trajectory breaks %d limits; first: %s", len(found), found[0])
    return LimitReport(tuple(found), peaks, int(times.size))


@nb.njit(cache=True)
def _peak_kernel(
    t: NDArray[np.float64], q: NDArray[np.float64], qd: NDArray[np.float64],
    qdd: NDArray[np.float64], lower: NDArray[np.float64], upper: NDArray[np.float64],
    vel: NDArray[np.float64], acc: NDArray[np.float64], jerk: NDArray[np.float64],
) -> NDArray[np.float64]:  # fmt: skip
    out = np.zeros(4)  # position excess / range, velocity, acceleration, jerk ratios
    n, dof = q.shape
    for k in range(n - 1):
        h = t[k + 1] - t[k]
        for i in range(dof):
            d = q[k + 1, i] - q[k, i]
            V0 = qd[k, i] * h
            V1 = qd[k + 1, i] * h
            A0 = qdd[k, i] * h * h
            A1 = qdd[k + 1, i] * h * h
            c0 = q[k, i]
            c1 = V0
            c2 = 0.5 * A0
            c3 = 10.0 * d - 6.0 * V0 - 4.0 * V1 - 1.5 * A0 + 0.5 * A1
            c4 = -15.0 * d + 8.0 * V0 + 7.0 * V1 + 1.5 * A0 - A1
            c5 = 6.0 * d - 3.0 * V0 - 3.0 * V1 - 0.5 * A0 + 0.5 * A1
            span = upper[i] - lower[i]
            for m in range(17):
                x = m / 16.0
                p = c0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * c5))))
                e = max(p - upper[i], lower[i] - p) / span
                if e > out[0]:
                    out[0] = e
                v = abs(c1 + x * (2 * c2 + x * (3 * c3 + x * (4 * c4 + x * 5 * c5)))) / h / vel[i]
                if v > out[1]:
                    out[1] = v
            # acceleration: ends and the roots of the jerk quadratic (exact)
            # jerk: ends and the vertex of the quadratic (exact)
            xs = np.empty(5)
            xs[0] = 0.0
            xs[1] = 1.0
            cnt = 2
            qa, qb, qc = 60 * c5, 24 * c4, 6 * c3
            if qa != 0.0:
                xv = -qb / (2 * qa)
                if 0.0 < xv < 1.0:
                    xs[cnt] = xv
                    cnt += 1
                disc = qb * qb - 4 * qa * qc
                if disc >= 0:
                    r = np.sqrt(disc)
                    for xr in ((-qb - r) / (2 * qa), (-qb + r) / (2 * qa)):
                        if 0.0 < xr < 1.0:
                            xs[cnt] = xr
                            cnt += 1
            elif qb != 0.0:
                xr = -qc / qb
                if 0.0 < xr < 1.0:
                    xs[cnt] = xr
                    cnt += 1
            for m in range(cnt):
                x = xs[m]
                a = abs(2 * c2 + x * (6 * c3 + x * (12 * c4 + x * 20 * c5))) / (h * h) / acc[i]
                if a > out[2]:
                    out[2] = a
                j = abs(6 * c3 + x * (24 * c4 + x * 60 * c5)) / (h * h * h) / jerk[i]
                if j > out[3]:
                    out[3] = j
    return out


def peak_ratios(traj: Trajectory, limits: JointLimits) -> dict[LimitKind, float]:
    """Largest value / limit of every interval's quintic, per kind (fast, no sampling rate).

    Jerk and acceleration maxima are exact (ends and stationary points of each
    interval's polynomial); velocity and position are taken at 17 points per interval.
    Position is the largest excursion past a limit as a fraction of the joint's range
    (0 when inside).

    Raises:
        InputError: mismatched joint names.
    """
    limits.require_names(traj.joint_names)
    if traj.t.size < 2:
        over = np.maximum(traj.q[0] - limits.upper, limits.lower - traj.q[0]) / (
            limits.upper - limits.lower
        )
        return {LimitKind.POSITION: float(max(0.0, over.max())), LimitKind.VELOCITY: 0.0,
                LimitKind.ACCELERATION: 0.0, LimitKind.JERK: 0.0}  # fmt: skip
    r = _peak_kernel(traj.t, traj.q, traj.qd, traj.qdd, limits.lower, limits.upper,
                     limits.velocity, limits.acceleration, limits.jerk)  # fmt: skip
    return {LimitKind.POSITION: float(r[0]), LimitKind.VELOCITY: float(r[1]),
            LimitKind.ACCELERATION: float(r[2]), LimitKind.JERK: float(r[3])}  # fmt: skip
