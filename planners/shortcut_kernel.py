"""Shortcut smoothing compiled with the collision model (numba).

:func:`planners.plan.plan` smooths with this when the space carries the packed collision
model, and with the batch-first :func:`planners.shortcut.shortcut` otherwise. The passes
are the same idea in a form that suits compiled code, where a check costs no call:

1. waypoints on straight stretches are dropped (no check needed);
2. **vertex reduction**: walking along the path, a waypoint is dropped when the last kept
   waypoint sees the next one; repeated while it drops any;
3. **random shortcuts** (Geraerts and Overmars): two points drawn uniformly by arc length;
   when they lie on different segments and the straight edge between them is valid, it
   replaces the stretch between them. Stops after ``attempts`` draws, ``patience`` failed
   draws in a row, or the deadline;
4. vertex reduction again.

Every new edge is checked at the resolution (samples no more than ``resolution`` apart,
Euclidean) coarse to fine, so a collision-free input path stays collision-free at it.
The draws come from the injected generator (:func:`shortcut`): a seed fixes the result
unless the deadline cuts the passes short.
"""

from __future__ import annotations

import math
import time

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.collision_fk import FASTMATH
from planners.collision_kernel import motion_hit, workspace
from planners.collision_packed import Packed, unpack

__all__ = ["edges_free", "shortcut"]

_MIN_GAIN = 1e-6  # rad: a shortcut saving less than this is not worth a waypoint


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _dist(a, b):
    s = 0.0
    for j in range(a.shape[0]):
        s += (b[j] - a[j]) ** 2
    return math.sqrt(s)


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _edge_free(a, b, res, model, ws, stats):
    """Whether the straight edge ``a -> b`` is valid at ``res``, ends included."""
    n = math.ceil(_dist(a, b) / res) + 1
    hit = motion_hit(a, b, n, model, ws)
    stats[0] += 1
    return hit == -1


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _drop_collinear(P, tol):
    keep = np.empty(P.shape[0], dtype=np.int64)
    keep[0] = 0
    n = 1
    for i in range(1, P.shape[0] - 1):
        a = P[keep[n - 1]]
        ac2 = 0.0
        t = 0.0
        for j in range(P.shape[1]):
            ac2 += (P[i + 1, j] - a[j]) ** 2
            t += (P[i, j] - a[j]) * (P[i + 1, j] - a[j])
        t /= max(ac2, 1e-300)
        off = 0.0
        for j in range(P.shape[1]):
            off += (a[j] + t * (P[i + 1, j] - a[j]) - P[i, j]) ** 2
        if not (0.0 <= t <= 1.0 and math.sqrt(off) <= tol):
            keep[n] = i
            n += 1
    keep[n] = P.shape[0] - 1
    return P[keep[: n + 1]].copy()


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _reduce(P, res, model, ws, stats):
    """Drop each waypoint whose successor the last kept waypoint sees; repeat while any is."""
    while P.shape[0] > 2:
        keep = np.empty(P.shape[0], dtype=np.int64)
        keep[0] = 0
        n = 1
        for i in range(1, P.shape[0] - 1):
            if not _edge_free(P[keep[n - 1]], P[i + 1], res, model, ws, stats):
                keep[n] = i
                n += 1
        keep[n] = P.shape[0] - 1
        n += 1
        if n == P.shape[0]:
            break
        P = P[keep[:n]].copy()
    return P


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _point_at(P, cum, s, out):
    """Segment index of arc length ``s`` along the path; its configuration into ``out``."""
    K = P.shape[0]
    k = np.searchsorted(cum, s, side="right") - 1
    k = min(max(k, 0), K - 2)
    seg = cum[k + 1] - cum[k]
    t = 0.0 if seg <= 0 else (s - cum[k]) / seg
    for j in range(P.shape[1]):
        out[j] = P[k, j] + t * (P[k + 1, j] - P[k, j])
    return k


@nb.njit(cache=True)
def _now():
    with nb.objmode(t="float64"):
        t = time.perf_counter()
    return t


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _smooth(fbuf, ibuf, P, res, draws, patience, deadline, stats):
    """The passes of the module doc; ``stats``: edges checked, draws made, applied."""
    model = unpack(fbuf, ibuf)
    ws = workspace(model)
    end = P[-1].copy()
    P = _drop_collinear(P, 1e-9)
    P = _reduce(P, res, model, ws, stats)
    dof = P.shape[1]
    a = np.empty(dof)
    b = np.empty(dof)
    idle = 0
    for r in range(draws.shape[0]):
        if P.shape[0] <= 2 or idle >= patience or _now() >= deadline:
            break
        stats[1] += 1
        K = P.shape[0]
        cum = np.zeros(K)
        for i in range(1, K):
            cum[i] = cum[i - 1] + _dist(P[i - 1], P[i])
        s0 = min(draws[r, 0], draws[r, 1]) * cum[-1]
        s1 = max(draws[r, 0], draws[r, 1]) * cum[-1]
        k0 = _point_at(P, cum, s0, a)
        k1 = _point_at(P, cum, s1, b)
        if k1 <= k0 or (s1 - s0) - _dist(a, b) <= _MIN_GAIN:
            idle += 1
            continue
        if not _edge_free(a, b, res, model, ws, stats):
            idle += 1
            continue
        idle = 0
        stats[2] += 1
        # P[: k0 + 1], a, b, P[k1 + 1 :], without points that repeat their predecessor
        Q = np.empty((k0 + 1 + 2 + K - k1 - 1, dof))
        n = 0
        for i in range(k0 + 1):
            Q[n] = P[i]
            n += 1
        for row in (a, b):
            if _dist(Q[n - 1], row) > 1e-12:
                Q[n] = row
                n += 1
        for i in range(k1 + 1, K):
            if _dist(Q[n - 1], P[i]) > 1e-12:
                Q[n] = P[i]
                n += 1
        P = Q[:n].copy()
        P[-1] = end  # the goal itself, not a copy within 1e-12 of it
    if stats[2]:
        P = _reduce(P, res, model, ws, stats)
    return P


def shortcut(
    packed: Packed,
    path: NDArray[np.float64],
    *,
    rng: np.random.Generator,
    resolution: float,
    attempts: int = 120,
    patience: int = 12,
    deadline: float | None = None,
) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """Shorten a collision-free (K, dof) path; returns it and (edges checked, draws, applied).

    Args:
        packed: The collision model (:attr:`planners.collision.CollisionModel.packed`).
        path: (K, dof) waypoints [rad], each segment valid at ``resolution``.
        rng: Generator of the draws (``attempts`` pairs, drawn up front).
        resolution: Largest Euclidean step between checked configurations [rad].
        attempts: Largest number of random shortcuts tried.
        patience: Failed tries in a row after which the random shortcuts stop.
        deadline: ``time.perf_counter()`` value after which no new shortcut is tried.
    """
    P = np.ascontiguousarray(path, dtype=np.float64)
    draws = rng.random((attempts, 2))
    if P.shape[0] <= 2:
        return P, (0, 0, 0)
    stats = np.zeros(3, np.int64)
    limit = math.inf if deadline is None else float(deadline)
    out = _smooth(*packed, P, float(resolution), draws, int(patience), limit, stats)
    return out, (int(stats[0]), int(stats[1]), int(stats[2]))


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _edges(fbuf, ibuf, A, B, res, out):
    model = unpack(fbuf, ibuf)
    ws = workspace(model)
    stats = np.zeros(1, np.int64)
    for e in range(A.shape[0]):
        out[e] = _edge_free(A[e], B[e], res, model, ws, stats)
    return out


def edges_free(
    packed: Packed, A: NDArray[np.float64], B: NDArray[np.float64], resolution: float
) -> NDArray[np.bool_]:
    """Whether each straight edge ``A[e] -> B[e]`` (E, dof) is valid at ``resolution``."""
    A = np.ascontiguousarray(A, dtype=np.float64)
    B = np.ascontiguousarray(B, dtype=np.float64)
    return _edges(*packed, A, B, float(resolution), np.empty(A.shape[0], dtype=np.bool_))
