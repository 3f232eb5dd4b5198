"""The path-parameter profile ``s(t)``: reachability TOPP, then a jerk-limiting filter.

Two steps, both exact for the piecewise constraints they are given:

1. **Velocity and acceleration** (:func:`topp`): TOPP-RA's discretisation (``x = sd^2``
   linear in ``s`` on each grid interval, so the path acceleration ``u = sdd`` is
   constant on it) with a backward pass for the controllable sets and a greedy forward
   pass. The constraints of interval ``k`` are the conservative ones
   ``c1[k, i] |u| + c2[k, i] x <= a[i]`` and ``x <= X[k]`` at both ends of the interval,
   so they hold everywhere inside it, not only at grid points. Scalar closed forms;
   compiled with numba.
2. **Jerk** (:class:`FilteredProfile`): the profile is smoothed by a moving average of
   width ``Tj`` in time, ``s_f(t) = (1/Tj) int_{t-Tj}^{t} s``. Then
   ``sd_f``, ``sdd_f`` are window averages of ``sd``, ``sdd`` (never above their bounds)
   and ``sddd_f = (sdd(t) - sdd(t - Tj)) / Tj`` is bounded, so joint jerk is bounded. The
   path is followed exactly (only the timing changes) and a rest-to-rest motion gets
   ``Tj`` longer. Coefficients ``c1, c2, X`` must hold over ``s +- Tj * max sd`` for the
   averaged motion to respect them (the caller dilates them). A non-zero boundary speed
   is held constant for ``Tj`` so the filtered motion starts and ends with that speed
   and zero acceleration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = ["FilteredProfile", "speed_caps", "topp", "window_max"]


@nb.njit(cache=True)
def _topp_kernel(
    hs: NDArray[np.float64],
    c1: NDArray[np.float64],
    c2: NDArray[np.float64],
    X: NDArray[np.float64],
    a: NDArray[np.float64],
    x0: float,
    x_end: float,
    hold_start: int,
    hold_end: int,
) -> tuple[int, NDArray[np.float64], NDArray[np.float64]]:
    """Return (code, x (N+1,), u (N,)); code 0 ok, 1 start not controllable, 2 no set."""
    N = X.size
    dof = a.size
    lo = np.zeros(N + 1)
    hi = np.zeros(N + 1)
    lo[N] = x_end
    hi[N] = x_end
    x = np.zeros(N + 1)
    u = np.zeros(N)
    for k in range(N - 1, -1, -1):
        h = hs[k]
        nxt_hi = min(hi[k + 1], X[k])
        if lo[k + 1] > X[k] * (1 + 1e-12):
            return 2, x, u
        if k >= hold_end:
            lo[k] = lo[k + 1]
            hi[k] = nxt_hi
            continue
        hk = X[k]
        lk = 0.0
        for i in range(dof):
            if c1[k, i] > 0:
                hk = min(hk, (nxt_hi + 2 * h * a[i] / c1[k, i]) / (1 + 2 * h * c2[k, i] / c1[k, i]))
                lk = max(lk, (lo[k + 1] * (c1[k, i] + 2 * h * c2[k, i]) - 2 * h * a[i]) / c1[k, i])
        hk = min(hk, X[k])
        if lk > hk * (1 + 1e-9) + 1e-15:
            return 2, x, u
        lo[k] = lk
        hi[k] = max(hk, lk)
    if x0 > hi[0] * (1 + 1e-9) + 1e-15 or x0 < lo[0] * (1 - 1e-9) - 1e-15:
        return 1, x, u
    x[0] = x0
    for k in range(N):
        h = hs[k]
        xk = x[k]
        nxt_hi = min(hi[k + 1], X[k])
        if k < hold_start or k >= hold_end:
            uk = 0.0
            if xk > nxt_hi * (1 + 1e-9) + 1e-15:
                return 2, x, u
        else:
            uk = (nxt_hi - xk) / (2 * h)
            for i in range(dof):
                if c1[k, i] > 0:
                    uk = min(uk, (a[i] - c2[k, i] * xk) / (c1[k, i] + 2 * h * c2[k, i]))
        u[k] = uk
        x[k + 1] = max(xk + 2 * h * uk, 0.0)
    # The pass lands on x_end up to rounding; make it exact, so that a motion meant to
    # end at rest does not end at a speed of ~1e-9 (which reads as a moving end).
    x[N] = x_end
    return 0, x, u


def topp(
    s: NDArray[np.float64],
    c1: NDArray[np.float64],
    c2: NDArray[np.float64],
    X: NDArray[np.float64],
    a: NDArray[np.float64],
    x0: float,
    x_end: float,
    hold_start: int = 0,
    hold_end: int | None = None,
) -> tuple[int, NDArray[np.float64], NDArray[np.float64]]:
    """Time-optimal ``x = sd^2`` on a grid under per-interval constraints.

    Args:
        s: (N+1,) grid in ``s``, increasing.
        c1: (N, dof) bound of ``|dq/ds|`` per interval.
        c2: (N, dof) bound of ``|d2q/ds2|`` per interval.
        X: (N,) largest ``sd^2`` per interval (velocity, TCP speed, curvature caps).
        a: (dof,) acceleration limits.
        x0: ``sd^2`` at the start.
        x_end: ``sd^2`` at the end.
        hold_start: Intervals at the start with ``u = 0`` (constant speed).
        hold_end: First interval of the constant-speed stretch at the end (N: none).

    Returns:
        ``(code, x, u)``: code 0 success, 1 the start speed is not controllable, 2 no
        feasible profile; ``x`` (N+1,) and ``u`` (N,) the profile.
    """
    n = X.size
    return _topp_kernel(
        np.ascontiguousarray(np.diff(s)), np.ascontiguousarray(c1), np.ascontiguousarray(c2),
        np.ascontiguousarray(X),
        np.ascontiguousarray(a), float(x0), float(x_end), int(hold_start),
        n if hold_end is None else int(hold_end),
    )  # fmt: skip


@dataclass(frozen=True)
class FilteredProfile:
    """``s(t)`` of a TOPP profile and its moving average of width ``Tj``.

    Attributes:
        tk: (N+1,) times of the grid points [s].
        sk: (N+1,) grid points in ``s``.
        vk: (N+1,) path speed at the grid points.
        uk: (N,) path acceleration on each interval.
        Sk: (N+1,) integral of ``s`` from 0 to ``tk``.
        Tj: Filter width [s] (> 0).
    """

    tk: NDArray[np.float64]
    sk: NDArray[np.float64]
    vk: NDArray[np.float64]
    uk: NDArray[np.float64]
    Sk: NDArray[np.float64]
    Tj: float

    @classmethod
    def build(cls, s: NDArray, x: NDArray, u: NDArray, Tj: float) -> FilteredProfile:
        """From a TOPP result ``x`` (N+1,), ``u`` (N,) on grid ``s`` (N+1,)."""
        v = np.sqrt(np.maximum(x, 0.0))
        dt = 2 * np.diff(s) / (v[:-1] + v[1:])
        tk = np.concatenate(([0.0], np.cumsum(dt)))
        dS = s[:-1] * dt + v[:-1] * dt**2 / 2 + u * dt**3 / 6
        Sk = np.concatenate(([0.0], np.cumsum(dS)))
        return cls(tk, s, v, u, Sk, float(Tj))

    @property
    def T(self) -> float:  # noqa: N802 - the usual symbol for a duration
        """Duration of the unfiltered profile [s]."""
        return float(self.tk[-1])

    @property
    def t_start(self) -> float:
        """Time at which the filtered motion leaves the start [s]."""
        return 0.5 * self.Tj if self.vk[0] > 0 else 0.0

    @property
    def t_end(self) -> float:
        """Time at which the filtered motion reaches the end [s]."""
        return self.T + (0.5 * self.Tj if self.vk[-1] > 0 else self.Tj)

    def raw(self, t: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """``S, s, sd, sdd`` of the unfiltered profile, extended at constant speed."""
        tt = np.ascontiguousarray(np.asarray(t, dtype=np.float64).reshape(-1))
        out = _raw_kernel(tt, self.tk, self.sk, self.vk, self.uk, self.Sk)
        return out[0], out[1], out[2], out[3]

    def filtered(self, t: NDArray) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """``s_f, sd_f, sdd_f, sddd_f`` at times ``t`` (M,) (sddd_f right-continuous)."""
        tt = np.ascontiguousarray(np.asarray(t, dtype=np.float64).reshape(-1))
        out = _filtered_kernel(tt, self.tk, self.sk, self.vk, self.uk, self.Sk, self.Tj)
        return out[0], out[1], out[2], out[3]

    def times_at(
        self, targets: NDArray, lo: NDArray, hi: NDArray, iterations: int = 40
    ) -> NDArray[np.float64]:
        """Times where ``s_f`` reaches ``targets`` (M,), by bisection in ``[lo, hi]`` (M,).

        ``s_f`` is non-decreasing; each bracket must hold its target.
        """
        return _bisect_kernel(
            np.ascontiguousarray(targets, dtype=np.float64),
            np.ascontiguousarray(lo, dtype=np.float64),
            np.ascontiguousarray(hi, dtype=np.float64),
            self.tk, self.sk, self.vk, self.uk, self.Sk, self.Tj, int(iterations),
        )  # fmt: skip

    def breakpoints(self) -> NDArray[np.float64]:
        """Times where the filtered jerk may jump, within [t_start, t_end].

        ``sddd_f(t) = (sdd(t) - sdd(t - Tj)) / Tj`` jumps only where the raw path
        acceleration does: at the grid times whose two intervals have different ``u``
        (on a line at the acceleration limit, or cruising, many neighbours share it),
        at the start and the end, and those times plus ``Tj``.
        """
        u = self.uk
        jump = np.abs(np.diff(u)) > 1e-12 * max(float(np.max(np.abs(u))), 1e-300)
        t = np.concatenate((self.tk[:1], self.tk[1:-1][jump], self.tk[-1:]))
        b = np.concatenate((t, t + self.Tj))
        return b[(b > self.t_start) & (b < self.t_end)]


@nb.njit(cache=True)
def _raw_one(
    t: float,
    tk: NDArray[np.float64],
    sk: NDArray[np.float64],
    vk: NDArray[np.float64],
    uk: NDArray[np.float64],
    Sk: NDArray[np.float64],
) -> tuple[float, float, float, float]:
    """``S, s, sd, sdd`` of the unfiltered profile at ``t`` (constant speed outside)."""
    n = uk.size
    T = tk[n]
    if t < 0.0:
        return vk[0] * t * t / 2, vk[0] * t, vk[0], 0.0
    if t > T:
        d = t - T
        return Sk[n] + sk[n] * d + vk[n] * d * d / 2, sk[n] + vk[n] * d, vk[n], 0.0
    k = min(max(int(np.searchsorted(tk, t, side="right")) - 1, 0), n - 1)
    d = t - tk[k]
    u = uk[k]
    s = sk[k] + vk[k] * d + u * d * d / 2
    S = Sk[k] + sk[k] * d + vk[k] * d * d / 2 + u * d * d * d / 6
    return S, s, vk[k] + u * d, u


@nb.njit(cache=True)
def _raw_kernel(
    t: NDArray[np.float64],
    tk: NDArray[np.float64],
    sk: NDArray[np.float64],
    vk: NDArray[np.float64],
    uk: NDArray[np.float64],
    Sk: NDArray[np.float64],
) -> NDArray[np.float64]:
    out = np.empty((4, t.size))
    for m in range(t.size):
        S, s, v, a = _raw_one(t[m], tk, sk, vk, uk, Sk)
        out[0, m] = S
        out[1, m] = s
        out[2, m] = v
        out[3, m] = a
    return out


@nb.njit(cache=True)
def _filtered_kernel(
    t: NDArray[np.float64],
    tk: NDArray[np.float64],
    sk: NDArray[np.float64],
    vk: NDArray[np.float64],
    uk: NDArray[np.float64],
    Sk: NDArray[np.float64],
    Tj: float,
) -> NDArray[np.float64]:
    out = np.empty((4, t.size))
    for m in range(t.size):
        S1, s1, v1, a1 = _raw_one(t[m], tk, sk, vk, uk, Sk)
        S0, s0, v0, a0 = _raw_one(t[m] - Tj, tk, sk, vk, uk, Sk)
        out[0, m] = (S1 - S0) / Tj
        out[1, m] = (s1 - s0) / Tj
        out[2, m] = (v1 - v0) / Tj
        out[3, m] = (a1 - a0) / Tj
    return out


@nb.njit(cache=True)
def _bisect_kernel(
    targets: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    tk: NDArray[np.float64],
    sk: NDArray[np.float64],
    vk: NDArray[np.float64],
    uk: NDArray[np.float64],
    Sk: NDArray[np.float64],
    Tj: float,
    iterations: int,
) -> NDArray[np.float64]:
    out = np.empty(targets.size)
    for m in range(targets.size):
        a = lo[m]
        b = hi[m]
        for _ in range(iterations):
            mid = 0.5 * (a + b)
            S1 = _raw_one(mid, tk, sk, vk, uk, Sk)[0]
            S0 = _raw_one(mid - Tj, tk, sk, vk, uk, Sk)[0]
            if (S1 - S0) / Tj < targets[m]:
                a = mid
            else:
                b = mid
        out[m] = 0.5 * (a + b)
    return out


@nb.njit(cache=True)
def _speed_caps_kernel(
    C: NDArray[np.float64],
    vel: NDArray[np.float64],
    acc: NDArray[np.float64],
    jerk: NDArray[np.float64],
    tcp: float,
    dof: int,
) -> NDArray[np.float64]:
    n = C.shape[0]
    out = np.empty(n)
    for k in range(n):
        x = 1e12
        for i in range(dof):
            c1 = C[k, i]
            c2 = C[k, dof + i]
            c3 = C[k, 2 * dof + i]
            if c1 > 0:
                x = min(x, (vel[i] / c1) ** 2)
            if c2 > 0:
                x = min(x, acc[i] / c2)
            if c3 > 0:
                x = min(x, (jerk[i] / c3) ** (2.0 / 3.0))
        if tcp > 0 and C[k, 3 * dof] > 0:
            x = min(x, (tcp / C[k, 3 * dof]) ** 2)
        out[k] = x
    return out


def speed_caps(
    C: NDArray[np.float64],
    vel: NDArray[np.float64],
    acc: NDArray[np.float64],
    jerk: NDArray[np.float64],
    tcp: float | None,
    dof: int,
) -> NDArray[np.float64]:
    """Largest ``sd^2`` per interval from joint velocity, curvature, path jerk, TCP speed.

    Args:
        C: (N, 3 dof [+ 1]) per-interval bounds of ``|dq/ds|``, ``|d2q/ds2|``, ``|d3q/ds3|`` per
            joint [, TCP speed per unit path speed].
        vel: (dof,) velocity limits.
        acc: (dof,) acceleration limits.
        jerk: (dof,) the share of the jerk limits the path's third derivative may use.
        tcp: TCP speed cap [m/s] or ``None``.
        dof: Number of joints.

    Returns:
        (N,) ``min(vel^2 / c1^2, acc / c2, (jerk / c3)^(2/3), tcp^2 / c4^2, 1e12)``.
    """
    return _speed_caps_kernel(
        np.ascontiguousarray(C), np.ascontiguousarray(vel), np.ascontiguousarray(acc),
        np.ascontiguousarray(jerk), -1.0 if tcp is None else float(tcp), int(dof),
    )  # fmt: skip


@nb.njit(cache=True)
def _window_max(
    F: NDArray[np.float64], i_lo: NDArray[np.int64], i_hi: NDArray[np.int64]
) -> NDArray[np.float64]:
    n = i_lo.size
    out = np.zeros((n, F.shape[1]))
    for k in range(n):
        for i in range(i_lo[k], i_hi[k]):
            for j in range(F.shape[1]):
                if F[i, j] > out[k, j]:
                    out[k, j] = F[i, j]
    return out


def window_max(
    fs: NDArray[np.float64],
    F: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Column maxima of ``F`` over the samples with ``lo[k] <= fs <= hi[k]``.

    Args:
        fs: (K,) sample positions, increasing.
        F: (K, c) non-negative sample values.
        lo: (n,) window starts.
        hi: (n,) window ends.

    Returns:
        (n, c) maxima (0 for an empty window).
    """
    i_lo = np.searchsorted(fs, lo, side="left").astype(np.int64)
    i_hi = np.searchsorted(fs, hi, side="right").astype(np.int64)
    return _window_max(np.ascontiguousarray(F), i_lo, i_hi)
