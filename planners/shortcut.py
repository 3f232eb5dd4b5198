"""Shortcut smoothing of a joint-space path, batch-first and seeded.

A tree path zigzags. Three passes shorten it without ever leaving checked edges:

1. **Vertex reduction**: waypoints on straight stretches are dropped (no check needed);
   then, round by round, every waypoint whose two neighbours see each other is a
   candidate, all candidates' edges are checked in one call, and a set of non-adjacent
   ones is dropped.
2. **Random shortcuts** (Geraerts and Overmars): pairs of points drawn uniformly by arc
   length along the path; a batch of candidate pairs is checked in one call and the valid
   candidate that saves the most length replaces the stretch between its two points. Stops
   after ``patience`` batches without a gain, ``max_rounds`` batches, or the deadline.
3. A final reduction drops the waypoints the shortcuts made redundant.

Every new segment is checked at the planner's resolution before it enters the path, so a
collision-free input path stays collision-free at that resolution.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.edges import edges_valid
from planners.errors import InputError
from planners.space import ConfigurationSpace

__all__ = ["ShortcutStats", "shortcut"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_MIN_GAIN = 1e-6  # rad: a shortcut saving less than this is not worth a waypoint


@dataclass(frozen=True)
class ShortcutStats:
    """What a shortcut run did.

    Attributes:
        rounds: Batches of random shortcuts checked.
        applied: Random shortcuts applied.
        checked: Configurations passed to the validity test.
        valid_calls: Calls of the validity test.
    """

    rounds: int
    applied: int
    checked: int
    valid_calls: int


def _lengths(P: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.linalg.norm(np.diff(P, axis=0), axis=1)


def _drop_collinear(P: NDArray[np.float64], tol: float = 1e-9) -> NDArray[np.float64]:
    """Drop waypoints that lie on the straight segment between their neighbours.

    A tree path has a node every extension step along straight stretches; dropping them
    changes no configuration the path passes through, so needs no check.
    """
    keep = [0]
    for i in range(1, P.shape[0] - 1):
        a, b, c = P[keep[-1]], P[i], P[i + 1]
        ac = c - a
        t = float((b - a) @ ac / max(float(ac @ ac), 1e-300))
        if not (0.0 <= t <= 1.0 and np.linalg.norm(a + t * ac - b) <= tol):
            keep.append(i)
    keep.append(P.shape[0] - 1)
    return P[keep]


def _reduce(
    valid: Callable[[NDArray[np.float64]], NDArray[np.bool_]],
    P: NDArray[np.float64],
    resolution: float,
) -> NDArray[np.float64]:
    """Drop waypoints whose neighbours see each other, all candidates checked per call.

    Each round checks the edge ``P[i - 1] -> P[i + 1]`` for every inner waypoint ``i`` in
    one batch, then drops a set of waypoints no two of which are neighbours.
    """
    while P.shape[0] > 2:
        inner = range(1, P.shape[0] - 1)
        ok = edges_valid(valid, [(P[i - 1], P[i + 1]) for i in inner], resolution)
        drop: list[int] = []
        for i, good in zip(inner, ok, strict=True):
            if good and (not drop or drop[-1] < i - 1):
                drop.append(i)
        if not drop:
            break
        P = np.delete(P, drop, axis=0)
    return P


def _point_at(
    P: NDArray[np.float64], cum: NDArray[np.float64], s: float
) -> tuple[int, NDArray[np.float64]]:
    """Segment index and configuration at arc length ``s`` along the path."""
    k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, P.shape[0] - 2))
    seg = cum[k + 1] - cum[k]
    t = 0.0 if seg <= 0 else (s - cum[k]) / seg
    return k, P[k] + t * (P[k + 1] - P[k])


def shortcut(
    space: ConfigurationSpace,
    path: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    resolution: float,
    batch: int = 4,
    max_rounds: int = 30,
    patience: int = 3,
    deadline: float | None = None,
) -> tuple[NDArray[np.float64], ShortcutStats]:
    """Shorten a collision-free (K, dof) path with batched, seeded shortcuts.

    Args:
        space: The configuration space whose ``valid`` checks new segments.
        path: (K, dof) waypoints [rad], each segment valid at ``resolution``.
        rng: Generator for the random shortcuts.
        resolution: Largest joint-space step between checked configurations [rad].
        batch: Candidate shortcuts checked per validity call.
        max_rounds: Largest number of candidate batches.
        patience: Batches in a row without a gain after which the search stops.
        deadline: ``time.perf_counter()`` value after which no new batch starts.

    Returns:
        The shortened (K', dof) path (same start and end) and :class:`ShortcutStats`.

    Raises:
        InputError: the path is not a finite (K, dof) array or the settings are not positive.
    """
    P = np.array(path, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != space.dof or not np.all(np.isfinite(P)):
        raise InputError(f"path: expected a finite (K, {space.dof}) array, got shape {P.shape}")
    if not (resolution > 0 and batch >= 1 and max_rounds >= 0 and patience >= 1):
        raise InputError("resolution, batch, max_rounds, patience: expected positive values")
    calls = [0, 0]

    def valid(Q: NDArray[np.float64]) -> NDArray[np.bool_]:
        calls[0] += 1
        calls[1] += Q.shape[0]
        return np.asarray(space.valid(Q), dtype=bool)

    if P.shape[0] <= 2:
        return P, ShortcutStats(0, 0, 0, 0)
    end = P[-1].copy()
    P = _drop_collinear(P)
    P = _reduce(valid, P, resolution)
    rounds = applied = idle = 0
    while P.shape[0] > 2 and rounds < max_rounds and idle < patience:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        rounds += 1
        cum = np.r_[0.0, np.cumsum(_lengths(P))]
        s = np.sort(rng.uniform(0.0, cum[-1], size=(batch, 2)), axis=1)
        cands = []
        for s0, s1 in s:
            k0, a = _point_at(P, cum, s0)
            k1, b = _point_at(P, cum, s1)
            if k1 > k0:  # the two points are on different segments: a corner lies between
                gain = (s1 - s0) - float(np.linalg.norm(b - a))
                if gain > _MIN_GAIN:
                    cands.append((gain, k0, a, k1, b))
        ok = edges_valid(valid, [(c[2], c[4]) for c in cands], resolution)
        good = [c for c, g in zip(cands, ok, strict=True) if g]
        if not good:
            idle += 1
            continue
        idle = 0
        applied += 1
        _, k0, a, k1, b = max(good, key=lambda c: c[0])
        P = np.vstack((P[: k0 + 1], a, b, P[k1 + 1 :]))
        P = P[np.r_[True, _lengths(P) > 1e-12]]  # a point drawn on a waypoint repeats it
        P[-1] = end  # the goal itself, not a copy within 1e-12 of it
    if applied:
        P = _reduce(valid, P, resolution)
    return P, ShortcutStats(rounds, applied, calls[1], calls[0])
