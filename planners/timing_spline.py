"""The curve candidate's path: a smooth least-squares spline through dense waypoints.

Dense, smoothly curved waypoints (the IK samples of a Cartesian line, a finely sampled
arc) are samples of a smooth joint curve. Joining them by straight lines and blending
every corner (:class:`~planners.timing_path.BlendedPath`) turns that curve into one
with a huge third derivative (a degree-5 blend at every 1 mm sample), so the jerk
limit caps the speed. :class:`SplinePath` instead fits one smooth curve:

* a clamped **degree-5 B-spline** (C4: joint acceleration and jerk continuous along
  it) in the chord-length parameter ``s`` of the waypoints (close to arc length,
  ``|dq/ds| ~ 1``), fitted by **least squares** with as few pieces as meet the
  tolerances below (1, 2, 4, ... pieces; fewer pieces also average out the IK
  solver's noise, which an interpolating spline would turn into jerk);
* it starts exactly at the first waypoint and ends exactly at the last one; with a
  boundary speed its end tangent is the first (last) segment's direction and its
  curvature there is zero, as for the blended path, so trajectories concatenate;
* **checked deviation**: the curve at each waypoint's parameter is within
  ``tolerance`` [rad] (Euclidean, joint space) of that waypoint; between waypoints it
  is within ``blend_tolerance`` of the polyline (the contract of every candidate);
  with an arm, the TCP at each waypoint's parameter is within ``tcp_tolerance`` [m] of
  the waypoint's TCP, and between two waypoints the TCP is no further from the
  straight TCP chord of the two than ``tcp_tolerance`` plus the distance the joint
  polyline itself has there (for a Cartesian line, that chord *is* the line); the
  curve stays within the position limits. A fit that cannot meet them is refused
  (the caller then has the other candidates).

The fit is a small dense least-squares problem (waypoints x pieces + 5) and takes a
fraction of a millisecond for a hundred waypoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from scipy.interpolate import BSpline

from planners.arrays import frozen
from planners.errors import InputError
from planners.timing_check import CandidateError, TimingStatus

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["SplinePath", "fit_curve", "is_dense"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

DEGREE = 5
MIN_WAYPOINTS = 6  # fewer waypoints are not "dense": the other candidates handle them
DENSE_TURN = 0.35  # largest turning angle between consecutive segments of a dense path [rad]
DENSE_RATIO = 4.0  # largest length ratio of neighbouring segments of a dense path
_CHECK_SPLIT = (0.25, 0.5, 0.75)  # checked fractions of each waypoint interval
_GRID_PER_PIECE = 4  # TOPP grid intervals per spline piece (at least _GRID_MIN)
_GRID_MIN = 100
_GRID_MAX = 2000


def is_dense(W: NDArray[np.float64]) -> bool:
    """Whether de-duplicated waypoints look like samples of one smooth curve.

    At least ``MIN_WAYPOINTS``, every turning angle at most ``DENSE_TURN`` and
    neighbouring segments within ``DENSE_RATIO`` of each other in length.
    """
    if len(W) < MIN_WAYPOINTS:
        return False
    D = np.diff(W, axis=0)
    L = np.linalg.norm(D, axis=1)
    if np.any(L <= 0):
        return False
    U = D / L[:, None]
    cos = np.clip(np.einsum("ij,ij->i", U[1:], U[:-1]), -1.0, 1.0)
    ratio = np.maximum(L[1:] / L[:-1], L[:-1] / L[1:])
    return bool(np.all(np.arccos(cos) <= DENSE_TURN) and np.all(ratio <= DENSE_RATIO))


@dataclass(frozen=True)
class SplinePath:
    """A smooth joint curve ``q(s)`` (degree-5 B-spline), evaluated like a BlendedPath.

    Build one with :func:`fit_curve`.

    Attributes:
        waypoints: (M, dof) the waypoints it was fitted to [rad].
        params: (M,) the waypoints' parameters (chord length) [rad].
        knots: The B-spline's knot vector (clamped, degree 5).
        coef: (n, dof) the B-spline's coefficients.
        deviation: Largest joint distance of the curve from a waypoint [rad].
        tcp_deviation: Largest TCP distance from a waypoint's TCP [m] (0 without an arm).
        s0: (1,) ``[0]``: the curve is one smooth piece for the timing (its jerk is
            continuous, so no trajectory knot is needed at the spline's knots).
        lengths: (1,) the curve's parameter length.
        is_blend: (1,) ``[True]``: curved everywhere (knots every 10 ms).
    """

    waypoints: NDArray[np.float64]
    params: NDArray[np.float64]
    knots: NDArray[np.float64]
    coef: NDArray[np.float64]
    deviation: float
    tcp_deviation: float
    s0: NDArray[np.float64]
    lengths: NDArray[np.float64]
    is_blend: NDArray[np.bool_]

    @property
    def dof(self) -> int:
        """Number of joints."""
        return int(self.waypoints.shape[1])

    @property
    def length(self) -> float:
        """Total length in ``s``."""
        return float(self.params[-1])

    @property
    def pieces(self) -> int:
        """Polynomial pieces of the spline."""
        return int(self.knots.size - 2 * (DEGREE + 1) + 1)

    @property
    def breakpoints(self) -> NDArray[np.float64]:
        """``[0, length]``: the jerk is continuous along the whole curve."""
        return np.array([0.0, self.length])

    def grid(self, intervals: int = _GRID_MIN, per_blend: int = 0) -> NDArray[np.float64]:
        """A uniform grid in ``s``: ``intervals`` or ``_GRID_PER_PIECE`` per spline piece."""
        del per_blend
        n = int(min(max(intervals, _GRID_PER_PIECE * self.pieces), _GRID_MAX))
        return np.linspace(0.0, self.length, n + 1)

    def __call__(self, s: npt.ArrayLike, order: int = 0) -> NDArray[np.float64]:
        """The curve (order 0) or its derivative wrt ``s`` (1..3) at ``s`` (K,), clamped.

        Returns:
            (K, dof) values.
        """
        if order not in (0, 1, 2, 3):
            raise InputError(f"order: expected 0, 1, 2 or 3, got {order!r}")
        ss = np.clip(np.atleast_1d(np.asarray(s, dtype=np.float64)).reshape(-1), 0.0, self.length)
        out: NDArray[np.float64] = BSpline(self.knots, self.coef, DEGREE, extrapolate=False)(
            ss, order
        )
        return out


def _segment_distance(
    P: NDArray[np.float64], A: NDArray[np.float64], B: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Distance of each row of ``P`` from the segment between the rows of ``A`` and ``B``."""
    d = B - A
    lam = np.clip(np.einsum("ij,ij->i", P - A, d) / np.maximum(np.einsum("ij,ij->i", d, d),
                                                                1e-300), 0.0, 1.0)  # fmt: skip
    out: NDArray[np.float64] = np.linalg.norm(P - A - lam[:, None] * d, axis=1)
    return out


def _lsq(
    s: NDArray[np.float64],
    W: NDArray[np.float64],
    pieces: int,
    start_tangent: NDArray[np.float64] | None,
    end_tangent: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Least-squares clamped degree-5 spline with ``pieces`` pieces: (knots, coef) or None.

    Interior knots at waypoint parameters, evenly spread over the waypoints. The end
    coefficients are fixed: the ends are the end waypoints; with an end tangent ``u``,
    ``q'(end) = u`` and ``q''(end) = 0``.
    """
    M, dof = W.shape
    k = DEGREE
    idx = np.unique(np.round(np.linspace(0, M - 1, pieces + 1)).astype(int))
    if idx.size != pieces + 1:
        return None
    t = np.concatenate((np.zeros(k + 1), s[idx[1:-1]], np.full(k + 1, s[-1])))
    n = t.size - k - 1
    fixed: dict[int, NDArray[np.float64]] = {0: W[0], n - 1: W[-1]}
    if start_tangent is not None:
        if n < 6:
            return None
        h1, h2 = t[k + 1] - t[1], t[k + 2] - t[2]  # q'(0) = k (c1 - c0) / h1
        c1 = W[0] + start_tangent * h1 / k
        fixed[1] = c1
        fixed[2] = c1 + (c1 - W[0]) * h2 / h1  # q''(0) = 0
    if end_tangent is not None:
        if n < 6 or (start_tangent is not None and n < 7):
            return None
        h1, h2 = t[n + k - 1] - t[n - 1], t[n + k - 2] - t[n - 2]
        c1 = W[-1] - end_tangent * h1 / k
        fixed[n - 2] = c1
        fixed[n - 3] = c1 - (W[-1] - c1) * h2 / h1
    free = [i for i in range(n) if i not in fixed]
    if len(free) > M - 2:
        return None
    B = BSpline.design_matrix(s, t, k).toarray()
    C = np.zeros((n, dof))
    for i, c in fixed.items():
        C[i] = c
    rhs = W - B @ C
    if free:
        sol, *_ = np.linalg.lstsq(B[1:-1][:, free], rhs[1:-1], rcond=None)
        C[free] = sol
    return t, C


def fit_curve(
    W: NDArray[np.float64],
    *,
    tolerance: float,
    blend_tolerance: float,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    start_tangent: NDArray[np.float64] | None = None,
    end_tangent: NDArray[np.float64] | None = None,
    arm: Arm | None = None,
    tcp_tolerance: float = 1e-4,
) -> SplinePath:
    """The smoothest checked curve (fewest spline pieces) through dense waypoints.

    Args:
        W: (M, dof) waypoints, de-duplicated, M >= 2.
        tolerance: Largest joint distance of the curve from each waypoint [rad].
        blend_tolerance: Largest joint distance from the polyline between waypoints [rad].
        lower: (dof,) lower position limits.
        upper: (dof,) upper position limits.
        start_tangent: Unit tangent at the start (a moving start), or ``None``.
        end_tangent: Unit tangent at the end (a moving end), or ``None``.
        arm: The arm, for the TCP checks, or ``None``.
        tcp_tolerance: Largest TCP distance from each waypoint's TCP [m].

    Raises:
        CandidateError: no fit meets the tolerances (the reason names the closest).
    """
    M = len(W)
    if M < 2:
        raise CandidateError(TimingStatus.INFEASIBLE, "curve: needs two waypoints")
    s = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(W, axis=0), axis=1))))
    f = np.asarray(_CHECK_SPLIT)
    s_mid = (s[:-1, None] + np.diff(s)[:, None] * f[None, :]).reshape(-1)
    seg = np.repeat(np.arange(M - 1), f.size)
    chord = W[seg] + (f[None, :] * np.ones((M - 1, 1))).reshape(-1)[:, None] * (W[seg + 1] - W[seg])
    P_w = P_chord = None
    if arm is not None:
        P_w = arm.fk_batch(W)[:, :3, 3]
        P_chord = _segment_distance(arm.fk_batch(chord)[:, :3, 3], P_w[seg], P_w[seg + 1])
    worst = "no fit"
    pieces = 1
    while pieces <= (M - 1) // 2 or pieces == 1:
        fit = _lsq(s, W, pieces, start_tangent, end_tangent)
        pieces *= 2
        if fit is None:
            continue
        t, C = fit
        spl = BSpline(t, C, DEGREE, extrapolate=False)
        Q = spl(s)
        dev = float(np.max(np.linalg.norm(Q - W, axis=1)))
        if dev > tolerance:
            worst = f"{dev:.3g} rad from a waypoint (tolerance {tolerance:.3g})"
            continue
        Qm = spl(s_mid)
        poly = float(np.max(_segment_distance(Qm, W[seg], W[seg + 1])))
        if poly > blend_tolerance:
            worst = f"{poly:.3g} rad from the polyline (blend_tolerance {blend_tolerance:.3g})"
            continue
        both = np.concatenate((Q, Qm))
        if np.any(both < lower) or np.any(both > upper):
            worst = "outside the position limits"
            continue
        tcp_dev = 0.0
        if arm is not None and P_w is not None and P_chord is not None:
            P = arm.fk_batch(np.concatenate((Q, Qm)))[:, :3, 3]
            tcp_dev = float(np.max(np.linalg.norm(P[:M] - P_w, axis=1)))
            excess = _segment_distance(P[M:], P_w[seg], P_w[seg + 1]) - P_chord
            tcp_dev = max(tcp_dev, float(np.max(excess)))
            if tcp_dev > tcp_tolerance:
                worst = f"TCP {tcp_dev * 1e3:.3g} mm off (tolerance {tcp_tolerance * 1e3:.3g})"
                continue
        return SplinePath(
            waypoints=frozen(W),
            params=frozen(s),
            knots=frozen(t),
            coef=frozen(C),
            deviation=dev,
            tcp_deviation=tcp_dev,
            s0=frozen(np.zeros(1)),
            lengths=frozen(np.array([s[-1]])),
            is_blend=frozen(np.ones(1), bool),
        )
    raise CandidateError(
        TimingStatus.INFEASIBLE, f"curve: no smooth fit within the tolerances ({worst})"
    )
