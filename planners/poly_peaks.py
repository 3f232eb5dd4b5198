"""Exact peaks of a trajectory's quintic intervals: position, velocity, acceleration, jerk.

Between two knots a :class:`~planners.trajectory.Trajectory` is a quintic in the
normalised time ``x`` in [0, 1]; velocity, acceleration and jerk are polynomials of
degree 4, 3 and 2. Each one's extremes over an interval lie at its ends or at roots of
its derivative, which are found from the highest derivative down: the roots of a
polynomial's derivative cut [0, 1] into pieces on which it is monotonic, so each piece
holds at most one root, found by Newton steps kept inside a shrinking bisection bracket.

Most intervals never need that: a polynomial on [0, 1] lies between the smallest and the
largest of its Bernstein coefficients (exact for a constant, and at both ends), so an
interval whose Bernstein bound is below the peak found so far is skipped.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.limits import JointLimits
from planners.trajectory import Trajectory

__all__ = ["interval_peaks"]


@nb.njit(cache=True)
def _horner(c: NDArray[np.float64], n: int, x: float) -> float:
    v = c[n]
    for k in range(n - 1, -1, -1):
        v = v * x + c[k]
    return v


@nb.njit(cache=True)
def _root(
    c: NDArray[np.float64], d: NDArray[np.float64], n: int, a: float, b: float, fa: float
) -> float:
    """The root of ``c`` (degree n, derivative ``d``) on [a, b], where it is monotonic."""
    x = 0.5 * (a + b)
    for _ in range(100):
        f = _horner(c, n, x)
        if f == 0.0:
            return x
        if (f > 0.0) == (fa > 0.0):
            a = x
        else:
            b = x
        if b - a <= 1e-15:
            break
        slope = _horner(d, n - 1, x)
        step = x - f / slope if slope != 0.0 else a - 1.0
        x = step if a < step < b else 0.5 * (a + b)
    return x


@nb.njit(cache=True)
def _extremes(
    c: NDArray[np.float64], n: int, lo: float, hi: float, D: NDArray[np.float64],
    cuts: NDArray[np.float64], new: NDArray[np.float64],
) -> tuple[float, float]:  # fmt: skip
    """``lo`` and ``hi`` widened to the range of a degree-n polynomial on [0, 1] (n <= 5).

    Its critical points are found from the highest derivative down. ``D`` (6, 6),
    ``cuts`` and ``new`` (8,) are work space.
    """
    # derivative coefficient rows: D[m] is the m-th derivative, degree n - m
    for k in range(n + 1):
        D[0, k] = c[k]
    for m in range(1, n + 1):
        for k in range(n - m + 1):
            D[m, k] = (k + 1) * D[m - 1, k + 1]
    # roots of the (n-1)-th derivative (degree 1), then upwards to the first derivative
    cuts[0] = 0.0
    cnt = 1
    for m in range(n - 1, 0, -1):
        deg = n - m
        row = D[m]
        new[0] = 0.0
        nn = 1
        cuts[cnt] = 1.0
        fa = _horner(row, deg, 0.0)
        for p in range(cnt):
            a, b = cuts[p], cuts[p + 1]
            fb = _horner(row, deg, b)
            if b > a and ((fa < 0.0 < fb) or (fb < 0.0 < fa)):
                new[nn] = _root(row, D[m + 1], deg, a, b, fa)
                nn += 1
            elif fb == 0.0 and b < 1.0:
                new[nn] = b
                nn += 1
            fa = fb
        for p in range(nn):
            cuts[p] = new[p]
        cnt = nn
    for p in range(cnt + 1):
        x = cuts[p] if p < cnt else 1.0
        v = _horner(c, n, x)
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@nb.njit(cache=True)
def _coefficients(
    t: NDArray[np.float64], q: NDArray[np.float64], qd: NDArray[np.float64],
    qdd: NDArray[np.float64], k: int, i: int, c: NDArray[np.float64],
) -> float:  # fmt: skip
    """Power-series coefficients in x of interval ``k``, joint ``i`` into ``c``; returns h."""
    h = t[k + 1] - t[k]
    d = q[k + 1, i] - q[k, i]
    V0 = qd[k, i] * h
    V1 = qd[k + 1, i] * h
    A0 = qdd[k, i] * h * h
    A1 = qdd[k + 1, i] * h * h
    c[0] = q[k, i]
    c[1] = V0
    c[2] = 0.5 * A0
    c[3] = 10.0 * d - 6.0 * V0 - 4.0 * V1 - 1.5 * A0 + 0.5 * A1
    c[4] = -15.0 * d + 8.0 * V0 + 7.0 * V1 + 1.5 * A0 - A1
    c[5] = 6.0 * d - 3.0 * V0 - 3.0 * V1 - 0.5 * A0 + 0.5 * A1
    return h


@nb.njit(cache=True)
def _bernstein(
    t: NDArray[np.float64], q: NDArray[np.float64], qd: NDArray[np.float64],
    qdd: NDArray[np.float64], k: int, i: int, B: NDArray[np.float64],
) -> float:  # fmt: skip
    """Bernstein coefficients of interval ``k``, joint ``i``: rows of B are position
    (6), and the x-derivatives of order 1..3 (5, 4, 3); returns the interval's length h.

    A quintic Hermite's Bernstein coefficients are its end values nudged by its end
    velocities and accelerations; a derivative's are scaled differences of them (written
    out here from the end values, which keeps their rounding that of the power series).
    """
    h = t[k + 1] - t[k]
    d = q[k + 1, i] - q[k, i]
    V0 = qd[k, i] * h
    V1 = qd[k + 1, i] * h
    A0 = qdd[k, i] * h * h
    A1 = qdd[k + 1, i] * h * h
    q0 = q[k, i]
    B[0, 0] = q0
    B[0, 1] = q0 + V0 / 5.0
    B[0, 2] = q0 + (2.0 * V0 / 5.0 + A0 / 20.0)
    B[0, 3] = q0 + (d - 2.0 * V1 / 5.0 + A1 / 20.0)
    B[0, 4] = q0 + (d - V1 / 5.0)
    B[0, 5] = q[k + 1, i]
    # the derivatives' coefficients in closed form (no differences of large numbers)
    B[1, 0] = V0
    B[1, 1] = V0 + A0 / 4.0
    B[1, 2] = 5.0 * d - 2.0 * V0 - 2.0 * V1 - A0 / 4.0 + A1 / 4.0
    B[1, 3] = V1 - A1 / 4.0
    B[1, 4] = V1
    B[2, 0] = A0
    B[2, 1] = 20.0 * d - 12.0 * V0 - 8.0 * V1 - 2.0 * A0 + A1
    B[2, 2] = -20.0 * d + 8.0 * V0 + 12.0 * V1 + A0 - 2.0 * A1
    B[2, 3] = A1
    B[3, 0] = 60.0 * d - 36.0 * V0 - 24.0 * V1 - 9.0 * A0 + 3.0 * A1
    B[3, 1] = -120.0 * d + 60.0 * V0 + 60.0 * V1 + 9.0 * A0 - 9.0 * A1
    B[3, 2] = 60.0 * d - 24.0 * V0 - 36.0 * V1 - 3.0 * A0 + 9.0 * A1
    return h


@nb.njit(cache=True)
def _peaks_kernel(
    t: NDArray[np.float64], q: NDArray[np.float64], qd: NDArray[np.float64],
    qdd: NDArray[np.float64], lower: NDArray[np.float64], upper: NDArray[np.float64],
) -> NDArray[np.float64]:  # fmt: skip
    n, dof = q.shape
    # per joint: lowest, highest position; largest |velocity|, |acceleration|, |jerk|;
    # the first two rows become the excursion past a limit at the end
    out = np.zeros((5, dof))
    B = np.zeros((4, 6))
    c = np.zeros(6)
    s = np.zeros(6)
    D = np.zeros((6, 6))
    cuts = np.empty(8)
    new = np.empty(8)
    for i in range(dof):  # first the ends, where the peaks of a timed motion usually are
        out[0, i] = q[:, i].min()
        out[1, i] = q[:, i].max()
        out[2, i] = np.abs(qd[:, i]).max()
        out[3, i] = np.abs(qdd[:, i]).max()
        for k in range(n - 1):  # jerk at both ends of each interval
            h = t[k + 1] - t[k]
            d = q[k + 1, i] - q[k, i]
            V0 = qd[k, i] * h
            V1 = qd[k + 1, i] * h
            A0 = qdd[k, i] * h * h
            A1 = qdd[k + 1, i] * h * h
            j0 = 60.0 * d - 36.0 * V0 - 24.0 * V1 - 9.0 * A0 + 3.0 * A1
            j1 = 60.0 * d - 24.0 * V0 - 36.0 * V1 - 3.0 * A0 + 9.0 * A1
            out[4, i] = max(out[4, i], max(abs(j0), abs(j1)) / (h * h * h))
    for k in range(n - 1):  # then inside the intervals whose Bernstein bound allows more
        for i in range(dof):
            h = _bernstein(t, q, qd, qdd, k, i, B)
            exact = False
            for order in range(4):
                deg = 5 - order
                b_lo = np.inf
                b_hi = -np.inf
                for r in range(deg + 1):
                    b_lo = min(b_lo, B[order, r])
                    b_hi = max(b_hi, B[order, r])
                if order == 0:
                    # only an excursion past a limit needs the exact range
                    need = b_lo < max(out[0, i], lower[i]) or b_hi > min(out[1, i], upper[i])
                else:
                    scale = h if order == 1 else (h * h if order == 2 else h * h * h)
                    cur = out[order + 1, i] * scale
                    need = max(-b_lo, b_hi) > cur
                if not need:
                    continue
                if not exact:  # power-series coefficients, for the roots
                    _coefficients(t, q, qd, qdd, k, i, c)
                    exact = True
                for m in range(deg + 1):
                    f = 1.0
                    for r in range(order):
                        f *= m + 1 + r
                    s[m] = f * c[m + order]
                if order == 0:
                    out[0, i], out[1, i] = _extremes(s, deg, out[0, i], out[1, i], D, cuts, new)
                else:
                    lo, hi = _extremes(s, deg, -cur, cur, D, cuts, new)
                    out[order + 1, i] = max(-lo, hi) / scale
    for i in range(dof):
        out[1, i] = max(0.0, out[1, i] - upper[i], lower[i] - out[0, i])
    return out[1:]


def interval_peaks(traj: Trajectory, limits: JointLimits) -> NDArray[np.float64]:
    """Exact peaks of every joint over the whole trajectory, between knots included.

    Args:
        traj: The trajectory.
        limits: Joint limits (names must match; positions are measured against them).

    Returns:
        (4, dof): largest excursion past a position limit [rad or m] (0 when inside),
        largest ``|velocity|``, ``|acceleration|`` and ``|jerk|`` (jerk on both sides of
        every knot), in joint units per second**order.

    Raises:
        InputError: mismatched joint names.
    """
    limits.require_names(traj.joint_names)
    if traj.t.size < 2:
        out = np.zeros((4, traj.dof))
        out[0] = np.maximum(0.0, np.maximum(traj.q[0] - limits.upper, limits.lower - traj.q[0]))
        out[1] = np.abs(traj.qd[0])
        out[2] = np.abs(traj.qdd[0])
        return out
    return _peaks_kernel(traj.t, traj.q, traj.qd, traj.qdd, limits.lower, limits.upper)
