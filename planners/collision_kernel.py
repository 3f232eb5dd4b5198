"""Compiled kernels of the fast collision model (numba): one configuration, one segment.

The model travels as one tuple ``model`` of arrays (built by
:func:`planners.collision_packed.unpack` from two flat buffers):

* joint limits ``lower``, ``upper`` (dof,) and the world pose of the base ``base`` (4, 4);
* frames in topological order: ``jparent`` (F,) (-1: the base), ``jtype`` (F,) (0 fixed,
  1 revolute, 2 prismatic), ``jcol`` (F,) column in q, ``jorigin`` (F, 4, 4) joint origin
  in the parent frame (fixed non-actuated joint values folded in), ``jaxis`` (F, 3);
* sphere groups (a link's or an attachment's spheres): ``glink`` (G,) their frame,
  ``gstart`` (G+1,) offsets into ``spheres`` (S, 4) ``x y z r`` in the frame, ``gbound``
  (G, 4) a sphere around each group;
* obstacles: ``otype`` (M,) (0 box, 1 sphere, 2 cylinder, 3 capsule), ``oinv`` (M, 3, 4)
  world-to-obstacle transform, ``oparam`` (M, 3) half extents / radius, half length;
* obstacle clusters (runs of nearby obstacles in scene order): ``cbound`` (C, 4) a world
  sphere around each cluster, ``cstart`` (C+1,) offsets into the obstacles;
* ``gmask`` (G, M) 1 where the group is checked against the obstacle; ``pairs`` (P, 2)
  groups checked against each other; ``pad`` the padding kept from obstacles [m].

The scratch arrays of one thread travel as ``ws`` (:func:`workspace`). A hit is encoded as
an int: -1 free, -2 outside the joint limits, -3 not finite, ``g * (M + G) + m`` for group
g against obstacle m, ``g * (M + G) + M + h`` for groups g and h.

One scan (:func:`_scan`) serves both questions: in *hit* mode it stops at the first pair
closer than its limit (the padding for obstacles, 0 between groups), in *distance* mode it
tightens the limit to the smallest distance found so far. Either way each group is tested
first by its bounding sphere, against runs of obstacles and then single ones, and its
spheres are placed only when that test passes.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from planners.collision_fk import FASTMATH, ensure_group, fk_links, place_sphere

__all__ = ["config_distance", "config_hit", "motion_hit", "valid_prefix", "workspace"]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def workspace(model):
    """Scratch arrays of one thread: frame poses, group bounds, world spheres, placed
    flags and one configuration."""
    lower, jparent, glink, spheres = model[0], model[3], model[8], model[10]
    return (
        np.empty((jparent.shape[0], 3, 4)),
        np.empty((glink.shape[0], 4)),
        np.empty((spheres.shape[0], 4)),
        np.zeros(glink.shape[0], dtype=np.bool_),
        np.empty(lower.shape[0]),
    )


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def _sd(kind, inv, par, m, x, y, z):
    """Signed distance [m] from a world point to obstacle m (negative inside)."""
    px = inv[m, 0, 0] * x + inv[m, 0, 1] * y + inv[m, 0, 2] * z + inv[m, 0, 3]
    py = inv[m, 1, 0] * x + inv[m, 1, 1] * y + inv[m, 1, 2] * z + inv[m, 1, 3]
    pz = inv[m, 2, 0] * x + inv[m, 2, 1] * y + inv[m, 2, 2] * z + inv[m, 2, 3]
    if kind == 0:
        qx = abs(px) - par[m, 0]
        qy = abs(py) - par[m, 1]
        qz = abs(pz) - par[m, 2]
        ox = max(qx, 0.0)
        oy = max(qy, 0.0)
        oz = max(qz, 0.0)
        return np.sqrt(ox * ox + oy * oy + oz * oz) + min(max(qx, max(qy, qz)), 0.0)
    if kind == 1:
        return np.sqrt(px * px + py * py + pz * pz) - par[m, 0]
    if kind == 2:
        dr = np.sqrt(px * px + py * py) - par[m, 0]
        dz = abs(pz) - par[m, 1]
        a = max(dr, 0.0)
        b = max(dz, 0.0)
        return np.sqrt(a * a + b * b) + min(max(dr, dz), 0.0)
    dz = max(abs(pz) - par[m, 1], 0.0)
    return np.sqrt(px * px + py * py + dz * dz) - par[m, 0]


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def _apart(X, i, Y, j, cut):
    """Whether spheres ``X[i]`` and ``Y[j]`` (rows ``x y z r``) are at least ``cut``
    apart, from squared distances (no square root; indices, not row views, which would
    count references)."""
    s = X[i, 3] + Y[j, 3] + cut
    if s <= 0.0:
        return True
    dx = X[i, 0] - Y[j, 0]
    dy = X[i, 1] - Y[j, 1]
    dz = X[i, 2] - Y[j, 2]
    return dx * dx + dy * dy + dz * dz >= s * s


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def _scan(q, model, ws, first):
    """Smallest signed distance of the sphere model at ``q`` and the code of its pair.

    With ``first``, stops at the first pair closer than its limit (``pad`` for
    obstacles, 0 between groups) and returns it; ``(inf, -1)`` when there is none.
    """
    (_, _, base, jparent, jtype, jcol, jorigin, jaxis, glink, gstart, spheres, gbound,
     otype, oinv, oparam, cbound, cstart, gmask, pairs, pad) = model  # fmt: skip
    T, B, W, done = ws[0], ws[1], ws[2], ws[3]
    fk_links(q, base, jparent, jtype, jcol, jorigin, jaxis, T)
    G = glink.shape[0]
    M = otype.shape[0]
    for g in range(G):
        place_sphere(T, glink[g], gbound, g, B, g)
        done[g] = False
    best = np.inf
    code = -1
    for g in range(G):
        for cl in range(cstart.shape[0] - 1):
            cut = pad if first else best
            if _apart(B, g, cbound, cl, cut):
                continue
            for m in range(cstart[cl], cstart[cl + 1]):
                if gmask[g, m] == 0:
                    continue
                cut = pad if first else best
                if _sd(otype[m], oinv, oparam, m, B[g, 0], B[g, 1], B[g, 2]) - B[g, 3] >= cut:
                    continue
                ensure_group(g, T, glink, gstart, spheres, W, done)
                for k in range(gstart[g], gstart[g + 1]):
                    d = _sd(otype[m], oinv, oparam, m, W[k, 0], W[k, 1], W[k, 2]) - W[k, 3]
                    if d < cut:
                        if first:
                            return d, g * (M + G) + m
                        best = cut = d
                        code = g * (M + G) + m
    for p in range(pairs.shape[0]):
        g = pairs[p, 0]
        h = pairs[p, 1]
        cut = 0.0 if first else best
        if _apart(B, g, B, h, cut):
            continue
        ensure_group(g, T, glink, gstart, spheres, W, done)
        ensure_group(h, T, glink, gstart, spheres, W, done)
        for a in range(gstart[g], gstart[g + 1]):
            if _apart(W, a, B, h, cut):
                continue  # sphere a misses h's bounding sphere
            for b in range(gstart[h], gstart[h + 1]):
                if _apart(W, a, W, b, cut):
                    continue
                dx = W[a, 0] - W[b, 0]
                dy = W[a, 1] - W[b, 1]
                dz = W[a, 2] - W[b, 2]
                d = np.sqrt(dx * dx + dy * dy + dz * dz) - W[a, 3] - W[b, 3]
                if first:
                    return d, g * (M + G) + M + h
                best = cut = d
                code = g * (M + G) + M + h
    return best, code


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def config_hit(q, model, ws):
    """Hit code of one configuration (dof,): -1 when valid (see the module doc)."""
    lower, upper = model[0], model[1]
    for j in range(q.shape[0]):
        if not (q[j] >= lower[j] and q[j] <= upper[j]):
            if not np.isfinite(q[j]):
                return -3
            return -2
    return _scan(q, model, ws, True)[1]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def config_distance(q, model, ws):
    """Smallest signed distance [m] of one configuration and its pair code (-1: none)."""
    return _scan(q, model, ws, False)


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def _at(qa, qb, i, n, q):
    """Sample ``i`` of ``n`` (0 = ``qa``, n = ``qb`` exactly) into ``q``."""
    if i == n:
        for d in range(q.shape[0]):
            q[d] = qb[d]
        return q
    t = i / n
    for d in range(q.shape[0]):
        q[d] = qa[d] + t * (qb[d] - qa[d])
    return q


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def motion_hit(qa, qb, n, model, ws):
    """Index (0..n-1) of a colliding one of n evenly spaced configurations from ``qa`` to
    ``qb`` (both included), or -1 when all are valid.

    The end ``qb`` first, then ``qa``, then the interior coarse to fine (bisection order:
    the odd multiples of each power of two, the largest first), stopping at the first hit.
    """
    q = ws[4]
    last = max(n - 1, 1)
    if config_hit(_at(qa, qb, last, last, q), model, ws) != -1:
        return n - 1
    if n < 2:
        return -1
    if config_hit(_at(qa, qb, 0, last, q), model, ws) != -1:
        return 0
    s = 1
    while 2 * s < last:
        s *= 2
    while s >= 1:
        for i in range(s, last, 2 * s):
            if config_hit(_at(qa, qb, i, last, q), model, ws) != -1:
                return i
        s //= 2
    return -1


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def valid_prefix(qa, qb, n, kmax, model, ws):
    """How many of the samples ``i / n`` of the way from ``qa`` to ``qb``, i = 1 .. kmax,
    are valid in a row (checked in order, stopping at the first invalid one)."""
    q = ws[4]
    for i in range(1, kmax + 1):
        if config_hit(_at(qa, qb, i, n, q), model, ws) != -1:
            return i - 1
    return kmax
