"""Checking many straight joint-space edges at once, coarse configurations first.

Most candidate edges a planner or a smoother proposes are blocked, and a blocked edge is
usually blocked over a stretch much longer than the resolution. :func:`edges_valid`
therefore checks every edge's configurations at ``coarse`` times the resolution first (one
batched call for all edges), and then only the remaining configurations of the edges that
passed (a second call). A valid edge costs the same as a plain check plus one call; a
blocked one costs about ``1 / coarse`` of it. The result is the same as checking every
configuration at the resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from planners.space import edge_points

__all__ = ["edges_valid", "valid_prefix"]

ValidFn = Callable[[NDArray[np.float64]], NDArray[np.bool_]]


def edges_valid(
    valid: ValidFn,
    pairs: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    resolution: float,
    coarse: int = 4,
) -> NDArray[np.bool_]:
    """Whether each straight edge ``a -> b`` is valid at ``resolution`` (``b`` included).

    Args:
        valid: Batched validity, (N, dof) -> (N,) bool.
        pairs: The edges, each a pair of (dof,) configurations.
        resolution: Largest joint-space step between checked configurations [rad].
        coarse: Stride of the first, coarse pass (1: a single pass).

    Returns:
        (E,) bool, one per edge.
    """
    if not pairs:
        return np.zeros(0, dtype=bool)
    edges = [edge_points(a, b, resolution) for a, b in pairs]
    sizes = np.array([e.shape[0] for e in edges])
    owner = np.repeat(np.arange(len(edges)), sizes)
    pts = np.concatenate(edges)
    if coarse <= 1 or pts.shape[0] <= len(edges) * 2:
        ok = valid(pts)
        return np.logical_and.reduceat(ok, np.r_[0, np.cumsum(sizes)[:-1]])
    # position of each configuration within its edge; the coarse pass takes every
    # ``coarse``-th one, counted back from the edge's end (so the end is always in it)
    local = np.arange(pts.shape[0]) - np.repeat(np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    first = (np.repeat(sizes, sizes) - 1 - local) % coarse == 0
    good = np.ones(len(edges), dtype=bool)
    good[owner[first][~valid(pts[first])]] = False
    rest = ~first & good[owner]
    if rest.any():
        good[owner[rest][~valid(pts[rest])]] = False
    return good


def valid_prefix(valid: ValidFn, pts: NDArray[np.float64], coarse: int = 4) -> int:
    """Length of the longest valid prefix of the configurations ``pts`` (K, dof).

    Every ``coarse``-th configuration is checked first (one call); then the ones before the
    first coarse failure (a second call).
    """
    n = pts.shape[0]
    if coarse <= 1 or n < 2 * coarse:
        ok = valid(pts)
        return n if ok.all() else int(np.argmin(ok))
    idx = np.arange(coarse - 1, n, coarse)
    ok = valid(pts[idx])
    limit = n if ok.all() else int(idx[np.argmin(ok)])
    fine = np.setdiff1d(np.arange(limit), idx, assume_unique=True)
    if fine.size:
        ok = valid(pts[fine])
        if not ok.all():
            limit = int(fine[np.argmin(ok)])
    return limit
