"""The geometric joint path a time parameterization follows: a polyline with blended corners.

The planner's waypoints are joined by straight joint-space lines. Each corner is
replaced by a degree-5 Bezier curve whose control points lie on the two lines,
``C - d u_in, C - d/2 u_in, C, C, C + d/2 u_out, C + d u_out`` (``C`` the corner,
``u`` the unit directions). Properties:

* the path is C2 in its parameter ``s``: at both ends of a blend it has the line's
  tangent (``dq/ds = u``, unit length) and zero second derivative, so joint
  acceleration is continuous; the third derivative is bounded, so jerk is bounded;
* a blend lies in the convex hull of its control points, so a path whose waypoints are
  within box-shaped joint limits stays within them;
* the blend size ``d`` is the largest with the blend within ``tolerance`` of the
  polyline (Euclidean joint-space distance [rad], measured on 65 samples of the blend,
  exact to scale because the deviation is proportional to ``d``) and at most half of
  either neighbouring segment, so blends never overlap; with many short segments (the
  IK samples of a Cartesian line) the blends meet and the path is a smooth curve.

``s`` is arc length on the lines and a smooth parameter in the blends (where
``|dq/ds| <= 1``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import comb
from typing import Protocol

import numba as nb
import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import frozen
from planners.errors import InputError

__all__ = ["BlendedPath", "TimingPath", "dedupe", "split_at_corners"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_DUPLICATE = 1e-12  # waypoints closer than this [rad] are one waypoint
_COLLINEAR = 1e-9  # |u_out - u_in| below this: no corner

# Bernstein (degree 5) to power basis: coef_k = sum_i _B2P[k, i] P_i.
_B2P = np.array(
    [[comb(5, k) * comb(k, i) * (-1) ** (k - i) if i <= k else 0 for i in range(6)]
     for k in range(6)],
    dtype=np.float64,
)  # fmt: skip
_T = np.linspace(0.0, 1.0, 65)


class TimingPath(Protocol):
    """What the TOPP-and-filter timing needs of a geometric path ``q(s)``.

    :class:`BlendedPath` and :class:`~planners.timing_spline.SplinePath` provide it.
    ``s0``/``is_blend`` tell where the path is curved (denser trajectory knots there);
    ``breakpoints`` are where its third derivative may jump (trajectory knots there).
    """

    @property
    def waypoints(self) -> NDArray[np.float64]: ...

    @property
    def s0(self) -> NDArray[np.float64]: ...

    @property
    def is_blend(self) -> NDArray[np.bool_]: ...

    @property
    def dof(self) -> int: ...

    @property
    def length(self) -> float: ...

    @property
    def breakpoints(self) -> NDArray[np.float64]: ...

    def grid(self, intervals: int = 100, per_blend: int = 8) -> NDArray[np.float64]: ...

    def __call__(self, s: npt.ArrayLike, order: int = 0) -> NDArray[np.float64]: ...


def dedupe(waypoints: NDArray[np.float64]) -> NDArray[np.float64]:
    """The waypoints without repeats (closer than 1e-12 rad to the last one kept)."""
    keep = np.ones(len(waypoints), bool)
    last = waypoints[0]
    for i in range(1, len(waypoints)):
        if np.linalg.norm(waypoints[i] - last) <= _DUPLICATE:
            keep[i] = False
        else:
            last = waypoints[i]
    return waypoints[keep]


def split_at_corners(waypoints: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Split a polyline at every non-collinear corner (for stop-at-every-waypoint timing).

    Args:
        waypoints: (M, dof) waypoints, duplicates already removed.

    Returns:
        Runs of collinear waypoints, each (>= 2, dof), sharing their end points.
    """
    runs: list[NDArray[np.float64]] = []
    start = 0
    for j in range(1, len(waypoints) - 1):
        u_in = waypoints[j] - waypoints[j - 1]
        u_out = waypoints[j + 1] - waypoints[j]
        u_in = u_in / np.linalg.norm(u_in)
        u_out = u_out / np.linalg.norm(u_out)
        if np.linalg.norm(u_out - u_in) > _COLLINEAR:
            runs.append(waypoints[start : j + 1])
            start = j
    runs.append(waypoints[start:])
    return runs


def _bezier_deviations(U_in: NDArray, U_out: NDArray) -> NDArray[np.float64]:
    """Largest distance of unit (d = 1) blends from the two rays of their corner at 0.

    Args:
        U_in: (n, dof) unit directions into the corners.
        U_out: (n, dof) unit directions out of them.

    Returns:
        (n,) distances over the 65 samples of each blend.
    """
    B = _BT_IN[None, :, None] * U_in[:, None, :] + _BT_OUT[None, :, None] * U_out[:, None, :]
    # distance to segment [-u_in, 0] and to [0, u_out]
    a = np.clip(-np.einsum("nkd,nd->nk", B, U_in), 0.0, 1.0)[:, :, None]
    d_in = np.linalg.norm(B + a * U_in[:, None, :], axis=2)
    b = np.clip(np.einsum("nkd,nd->nk", B, U_out), 0.0, 1.0)[:, :, None]
    d_out = np.linalg.norm(B - b * U_out[:, None, :], axis=2)
    return np.max(np.minimum(d_in, d_out), axis=1)


def _bernstein(t: NDArray) -> NDArray:
    t = t[:, None]
    i = np.arange(6)[None, :]
    binom = np.array([comb(5, k) for k in range(6)], dtype=np.float64)[None, :]
    return binom * t**i * (1 - t) ** (5 - i)


_BT = _bernstein(_T)  # (65, 6) Bernstein basis at the samples
# The unit blend's control points are -u_in, -u_in/2, 0, 0, u_out/2, u_out.
_BT_IN = -_BT[:, 0] - 0.5 * _BT[:, 1]
_BT_OUT = 0.5 * _BT[:, 4] + _BT[:, 5]


@nb.njit(cache=True)
def _evaluate(
    s0: NDArray[np.float64],
    lengths: NDArray[np.float64],
    coef: NDArray[np.float64],
    ss: NDArray[np.float64],
    order: int,
) -> NDArray[np.float64]:
    """Path (order 0) or its derivative wrt ``s`` at ``ss`` (K,) clamped to the path."""
    P = s0.size
    dof = coef.shape[2]
    total = s0[P - 1] + lengths[P - 1]
    out = np.empty((ss.size, dof))
    for m in range(ss.size):
        s = min(max(ss[m], 0.0), total)
        k = min(max(int(np.searchsorted(s0, s, side="right")) - 1, 0), P - 1)
        ln = lengths[k]
        x = (s - s0[k]) / ln
        for i in range(dof):
            c0, c1, c2 = coef[k, 0, i], coef[k, 1, i], coef[k, 2, i]
            c3, c4, c5 = coef[k, 3, i], coef[k, 4, i], coef[k, 5, i]
            if order == 0:
                v = c0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * c5))))
            elif order == 1:
                v = (c1 + x * (2 * c2 + x * (3 * c3 + x * (4 * c4 + x * 5 * c5)))) / ln
            elif order == 2:
                v = (2 * c2 + x * (6 * c3 + x * (12 * c4 + x * 20 * c5))) / (ln * ln)
            else:
                v = (6 * c3 + x * (24 * c4 + x * 60 * c5)) / (ln * ln * ln)
            out[m, i] = v
    return out


@dataclass(frozen=True)
class BlendedPath:
    """A C2 joint path through waypoints with blended corners, evaluated by ``s``.

    Build one with :meth:`from_waypoints`.

    Attributes:
        waypoints: (M, dof) the waypoints after removing repeats [rad].
        s0: (P,) start of each piece in ``s``.
        lengths: (P,) length of each piece in ``s`` (> 0).
        coef: (P, 6, dof) power-basis coefficients of each piece in its local
            parameter ``x = (s - s0) / length`` in [0, 1].
        is_blend: (P,) whether the piece is a corner blend.
        tolerance: Largest distance of the path from the polyline [rad].
    """

    waypoints: NDArray[np.float64]
    s0: NDArray[np.float64]
    lengths: NDArray[np.float64]
    coef: NDArray[np.float64]
    is_blend: NDArray[np.bool_]
    tolerance: float

    @classmethod
    def from_waypoints(cls, waypoints: npt.ArrayLike, tolerance: float) -> BlendedPath:
        """Blend the polyline through ``waypoints`` within ``tolerance``.

        Args:
            waypoints: (M, dof) joint waypoints, finite.
            tolerance: Largest allowed distance from the polyline [rad], > 0.

        Raises:
            InputError: bad shape, non-finite values, or a tolerance that is not positive.
        """
        W = np.asarray(waypoints, dtype=np.float64)
        if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
            raise InputError(f"path: expected an (M, dof) array of waypoints, got shape {W.shape}")
        if not np.all(np.isfinite(W)):
            raise InputError("path: every waypoint value must be finite")
        if not (np.isfinite(tolerance) and tolerance > 0):
            raise InputError(f"blend_tolerance: expected a positive number, got {tolerance!r}")
        W = dedupe(W)
        dof = W.shape[1]
        if len(W) == 1:
            empty = frozen(np.zeros(0))
            return cls(frozen(W), empty, empty, frozen(np.zeros((0, 6, dof))),
                       frozen(np.zeros(0), bool), float(tolerance))  # fmt: skip
        D = np.diff(W, axis=0)
        L = np.linalg.norm(D, axis=1)
        U = D / L[:, None]
        n = len(L)
        d = np.zeros(n + 1)  # blend size at each vertex (0 at the ends)
        corner = np.flatnonzero(np.linalg.norm(U[1:] - U[:-1], axis=1) > _COLLINEAR) + 1
        if corner.size:
            dev = _bezier_deviations(U[corner - 1], U[corner])
            with np.errstate(divide="ignore"):
                by_tol = np.where(dev > 0, tolerance / dev, np.inf)
            d[corner] = np.minimum(np.minimum(0.5 * L[corner - 1], 0.5 * L[corner]), by_tol)
        s0: list[float] = []
        lengths: list[float] = []
        coefs: list[NDArray] = []
        blend: list[bool] = []
        s = 0.0
        for k in range(n):
            if k > 0 and d[k] > 0:  # blend at vertex k
                C = W[k]
                P = np.stack([C - d[k] * U[k - 1], C - 0.5 * d[k] * U[k - 1], C, C,
                              C + 0.5 * d[k] * U[k], C + d[k] * U[k]])  # fmt: skip
                length = 2.5 * d[k]
                s0.append(s)
                lengths.append(length)
                coefs.append(_B2P @ P)
                blend.append(True)
                s += length
            a = W[k] + d[k] * U[k]
            b = W[k + 1] - d[k + 1] * U[k]
            length = L[k] - d[k] - d[k + 1]
            if length > 1e-12 * max(1.0, L[k]):
                c = np.zeros((6, dof))
                c[0] = a
                c[1] = b - a
                s0.append(s)
                lengths.append(length)
                coefs.append(c)
                blend.append(False)
                s += length
        return cls(frozen(W), frozen(s0), frozen(lengths), frozen(np.stack(coefs)),
                   frozen(blend, bool), float(tolerance))  # fmt: skip

    @property
    def dof(self) -> int:
        """Number of joints."""
        return int(self.waypoints.shape[1])

    @property
    def length(self) -> float:
        """Total length in ``s``."""
        return float(self.s0[-1] + self.lengths[-1]) if self.s0.size else 0.0

    def grid(self, intervals: int = 100, per_blend: int = 8) -> NDArray[np.float64]:
        """A grid in ``s`` for a time parameterization: uniform, refined in the blends.

        Args:
            intervals: Uniform intervals over the whole path.
            per_blend: Intervals in each blend (every piece boundary is a grid point).

        Returns:
            (N + 1,) increasing positions from 0 to :attr:`length`.
        """
        L = self.length
        frac = np.arange(per_blend + 1) / per_blend
        blends = self.s0[self.is_blend, None] + self.lengths[self.is_blend, None] * frac
        s = np.unique(np.concatenate((np.linspace(0.0, L, intervals + 1), self.s0, [L],
                                      blends.reshape(-1))))  # fmt: skip
        keep = np.concatenate(([True], np.diff(s) > 1e-9 * max(L, 1.0)))
        s = s[keep]
        s[-1] = L
        return s

    @property
    def breakpoints(self) -> NDArray[np.float64]:
        """(P + 1,) piece boundaries in ``s`` (where the third derivative may jump)."""
        return np.append(self.s0, self.length)

    def __call__(self, s: npt.ArrayLike, order: int = 0) -> NDArray[np.float64]:
        """Evaluate the path or its derivative with respect to ``s``.

        Args:
            s: (K,) path positions, clamped to [0, length].
            order: 0 position, 1..3 derivatives.

        Returns:
            (K, dof) values.
        """
        ss = np.atleast_1d(np.asarray(s, dtype=np.float64)).reshape(-1)
        if self.s0.size == 0:
            if order == 0:
                return np.repeat(self.waypoints[:1], ss.size, axis=0)
            return np.zeros((ss.size, self.dof))
        if order in (0, 1, 2, 3):
            return _evaluate(self.s0, self.lengths, self.coef, np.ascontiguousarray(ss), order)
        raise InputError(f"order: expected 0, 1, 2 or 3, got {order!r}")
