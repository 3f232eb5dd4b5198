"""Compiled kernels of the fast collision model (numba): FK of sphere centres and
sphere-against-primitive distances, per configuration, over a batch.

The model is packed into plain arrays by :class:`planners.collision.CollisionModel`:

* links in topological order: ``jparent`` (L,) (-1: the base), ``jtype`` (L,) (0 fixed,
  1 revolute, 2 prismatic), ``jcol`` (L,) column in q, ``jorigin`` (L, 4, 4) joint
  origin in the parent frame (fixed non-actuated joint values folded in), ``jaxis`` (L, 3);
* sphere groups (a link's or an attachment's spheres): ``glink`` (G,), ``gstart`` (G+1,)
  offsets into ``spheres`` (S, 4) ``x y z r`` in the link frame, ``gbound`` (G, 4) a
  sphere around each group;
* obstacles: ``otype`` (M,) (0 box, 1 sphere, 2 cylinder, 3 capsule), ``oinv`` (M, 3, 4)
  world-to-obstacle transform, ``oparam`` (M, 3) half extents / radius, half length;
* obstacle clusters (runs of nearby obstacles in scene order): ``cbound`` (C, 4) a world
  sphere around each cluster, ``cstart`` (C+1,) offsets into the obstacles;
* ``gmask`` (G, M) 1 where the group is checked against the obstacle; ``pairs`` (P, 2)
  groups checked against each other.

A hit is encoded as an int: -1 free, -2 outside the joint limits, -3 not finite, ``g * (M + G) + m``
for group g against obstacle m, ``g * (M + G) + M + h`` for groups g and h.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.collision_fk import FASTMATH, ensure_group, fk_links, place_sphere

__all__ = [
    "config_hit",
    "first_hit_motion",
    "first_hit_motions",
    "first_hits",
    "min_distances",
    "motion_hit",
]


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def _sd(kind: int, inv: NDArray, par: NDArray, x: float, y: float, z: float) -> float:
    """Signed distance [m] from a world point to obstacle (negative inside)."""
    px = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2] * z + inv[0, 3]
    py = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2] * z + inv[1, 3]
    pz = inv[2, 0] * x + inv[2, 1] * y + inv[2, 2] * z + inv[2, 3]
    if kind == 0:
        qx = abs(px) - par[0]
        qy = abs(py) - par[1]
        qz = abs(pz) - par[2]
        ox = max(qx, 0.0)
        oy = max(qy, 0.0)
        oz = max(qz, 0.0)
        return np.sqrt(ox * ox + oy * oy + oz * oz) + min(max(qx, max(qy, qz)), 0.0)
    if kind == 1:
        return np.sqrt(px * px + py * py + pz * pz) - par[0]
    if kind == 2:
        dr = np.sqrt(px * px + py * py) - par[0]
        dz = abs(pz) - par[1]
        a = max(dr, 0.0)
        b = max(dz, 0.0)
        return np.sqrt(a * a + b * b) + min(max(dr, dz), 0.0)
    dz = max(abs(pz) - par[1], 0.0)
    return np.sqrt(px * px + py * py + dz * dz) - par[0]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def config_hit(
    q,
    lower,
    upper,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
    pad,
    T,
    B,
    W,
    done,
):
    dof = q.shape[0]
    for j in range(dof):
        if not (q[j] >= lower[j] and q[j] <= upper[j]):
            if not np.isfinite(q[j]):
                return -3
            return -2
    fk_links(q, base, jparent, jtype, jcol, jorigin, jaxis, T)
    G = glink.shape[0]
    M = otype.shape[0]
    for g in range(G):
        place_sphere(T, glink[g], gbound[g], B, g)
        done[g] = False
    for g in range(G):
        for cl in range(cstart.shape[0] - 1):
            dx = B[g, 0] - cbound[cl, 0]
            dy = B[g, 1] - cbound[cl, 1]
            dz = B[g, 2] - cbound[cl, 2]
            rr = B[g, 3] + cbound[cl, 3] + pad
            if dx * dx + dy * dy + dz * dz >= rr * rr:
                continue
            for m in range(cstart[cl], cstart[cl + 1]):
                if gmask[g, m] == 0:
                    continue
                if _sd(otype[m], oinv[m], oparam[m], B[g, 0], B[g, 1], B[g, 2]) - B[g, 3] >= pad:
                    continue
                ensure_group(g, T, glink, gstart, spheres, W, done)
                for k in range(gstart[g], gstart[g + 1]):
                    if _sd(otype[m], oinv[m], oparam[m], W[k, 0], W[k, 1], W[k, 2]) - W[k, 3] < pad:
                        return g * (M + G) + m
    for p in range(pairs.shape[0]):
        g = pairs[p, 0]
        h = pairs[p, 1]
        dx = B[g, 0] - B[h, 0]
        dy = B[g, 1] - B[h, 1]
        dz = B[g, 2] - B[h, 2]
        rr = B[g, 3] + B[h, 3]
        if dx * dx + dy * dy + dz * dz >= rr * rr:
            continue
        ensure_group(g, T, glink, gstart, spheres, W, done)
        ensure_group(h, T, glink, gstart, spheres, W, done)
        for a in range(gstart[g], gstart[g + 1]):
            # Skip the spheres of g that miss h's bounding sphere.
            dx = W[a, 0] - B[h, 0]
            dy = W[a, 1] - B[h, 1]
            dz = W[a, 2] - B[h, 2]
            rr = W[a, 3] + B[h, 3]
            if dx * dx + dy * dy + dz * dz >= rr * rr:
                continue
            for b in range(gstart[h], gstart[h + 1]):
                dx = W[a, 0] - W[b, 0]
                dy = W[a, 1] - W[b, 1]
                dz = W[a, 2] - W[b, 2]
                rr = W[a, 3] + W[b, 3]
                if dx * dx + dy * dy + dz * dz < rr * rr:
                    return g * (M + G) + M + h
    return -1


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)
def _first_hits_parallel(
    Q,
    lower,
    upper,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
    pad,
    chunk,
):
    N = Q.shape[0]
    out = np.empty(N, dtype=np.int64)
    nchunks = (N + chunk - 1) // chunk
    for c in nb.prange(nchunks):
        T = np.empty((jparent.shape[0], 3, 4))
        B = np.empty((glink.shape[0], 4))
        W = np.empty((spheres.shape[0], 4))
        done = np.zeros(glink.shape[0], dtype=np.bool_)
        for i in range(c * chunk, min(N, (c + 1) * chunk)):
            out[i] = config_hit(
                Q[i],
                lower,
                upper,
                base,
                jparent,
                jtype,
                jcol,
                jorigin,
                jaxis,
                glink,
                gstart,
                spheres,
                gbound,
                otype,
                oinv,
                oparam,
                cbound,
                cstart,
                gmask,
                pairs,
                pad,
                T,
                B,
                W,
                done,
            )
    return out


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _first_hits_serial(
    Q,
    lower,
    upper,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
    pad,
):
    N = Q.shape[0]
    out = np.empty(N, dtype=np.int64)
    T = np.empty((jparent.shape[0], 3, 4))
    B = np.empty((glink.shape[0], 4))
    W = np.empty((spheres.shape[0], 4))
    done = np.zeros(glink.shape[0], dtype=np.bool_)
    for i in range(N):
        out[i] = config_hit(
            Q[i],
            lower,
            upper,
            base,
            jparent,
            jtype,
            jcol,
            jorigin,
            jaxis,
            glink,
            gstart,
            spheres,
            gbound,
            otype,
            oinv,
            oparam,
            cbound,
            cstart,
            gmask,
            pairs,
            pad,
            T,
            B,
            W,
            done,
        )
    return out


def first_hits(Q: NDArray[np.float64], args: tuple, parallel: bool) -> NDArray[np.int64]:
    """First hit code of each configuration (N, dof): (N,) ints (see the module doc)."""
    if parallel:
        return _first_hits_parallel(Q, *args, 32)  # type: ignore[call-arg]
    return _first_hits_serial(Q, *args)


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def motion_hit(
    qa,
    qb,
    n,
    lower,
    upper,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
    pad,
):
    """Index (0..n-1) of the first colliding of n evenly spaced configurations from qa to
    qb, checked coarse to fine (van der Corput order); -1 when all are free."""
    T = np.empty((jparent.shape[0], 3, 4))
    B = np.empty((glink.shape[0], 4))
    W = np.empty((spheres.shape[0], 4))
    done = np.zeros(glink.shape[0], dtype=np.bool_)
    q = np.empty(qa.shape[0])
    # Endpoints first, then the interior in bisection order (coarse to fine).
    order = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=np.bool_)
    order[0] = n - 1
    seen[n - 1] = True
    k = 1
    if not seen[0]:
        order[k] = 0
        seen[0] = True
        k += 1
    step = 1
    while step < n:
        step *= 2
    while step >= 1:
        for i in range(step, n - 1, step):
            if not seen[i]:
                seen[i] = True
                order[k] = i
                k += 1
        step //= 2
    for j in range(k):
        i = order[j]
        t = i / (n - 1) if n > 1 else 1.0
        for d in range(qa.shape[0]):
            q[d] = qa[d] + t * (qb[d] - qa[d])
        hit = config_hit(
            q,
            lower,
            upper,
            base,
            jparent,
            jtype,
            jcol,
            jorigin,
            jaxis,
            glink,
            gstart,
            spheres,
            gbound,
            otype,
            oinv,
            oparam,
            cbound,
            cstart,
            gmask,
            pairs,
            pad,
            T,
            B,
            W,
            done,
        )
        if hit != -1:
            return i
    return -1


def first_hit_motion(qa: NDArray[np.float64], qb: NDArray[np.float64], n: int, args: tuple) -> int:
    """A colliding sample index of the n-point straight segment qa -> qb, or -1."""
    return int(motion_hit(qa, qb, n, *args))


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)
def _motions(
    QA,
    QB,
    NS,
    lower,
    upper,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
    pad,
):
    E = QA.shape[0]
    out = np.empty(E, dtype=np.int64)
    for e in nb.prange(E):
        out[e] = motion_hit(
            QA[e],
            QB[e],
            NS[e],
            lower,
            upper,
            base,
            jparent,
            jtype,
            jcol,
            jorigin,
            jaxis,
            glink,
            gstart,
            spheres,
            gbound,
            otype,
            oinv,
            oparam,
            cbound,
            cstart,
            gmask,
            pairs,
            pad,
        )
    return out


def first_hit_motions(
    QA: NDArray[np.float64], QB: NDArray[np.float64], NS: NDArray[np.int64], args: tuple
) -> NDArray[np.int64]:
    """:func:`first_hit_motion` for E segments at once: (E,) ints."""
    return _motions(QA, QB, NS, *args)


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _min_dist(
    q,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
    T,
    B,
    W,
    done,
):
    """Smallest signed distance of the sphere model and its pair code."""
    fk_links(q, base, jparent, jtype, jcol, jorigin, jaxis, T)
    G = glink.shape[0]
    M = otype.shape[0]
    for g in range(G):
        place_sphere(T, glink[g], gbound[g], B, g)
        done[g] = False
    best = np.inf
    code = -1
    for g in range(G):
        for cl in range(cstart.shape[0] - 1):
            dx = B[g, 0] - cbound[cl, 0]
            dy = B[g, 1] - cbound[cl, 1]
            dz = B[g, 2] - cbound[cl, 2]
            if np.sqrt(dx * dx + dy * dy + dz * dz) - B[g, 3] - cbound[cl, 3] >= best:
                continue
            for m in range(cstart[cl], cstart[cl + 1]):
                if gmask[g, m] == 0:
                    continue
                if _sd(otype[m], oinv[m], oparam[m], B[g, 0], B[g, 1], B[g, 2]) - B[g, 3] >= best:
                    continue
                ensure_group(g, T, glink, gstart, spheres, W, done)
                for k in range(gstart[g], gstart[g + 1]):
                    d = _sd(otype[m], oinv[m], oparam[m], W[k, 0], W[k, 1], W[k, 2]) - W[k, 3]
                    if d < best:
                        best = d
                        code = g * (M + G) + m
    for p in range(pairs.shape[0]):
        g = pairs[p, 0]
        h = pairs[p, 1]
        dx = B[g, 0] - B[h, 0]
        dy = B[g, 1] - B[h, 1]
        dz = B[g, 2] - B[h, 2]
        if np.sqrt(dx * dx + dy * dy + dz * dz) - B[g, 3] - B[h, 3] >= best:
            continue
        ensure_group(g, T, glink, gstart, spheres, W, done)
        ensure_group(h, T, glink, gstart, spheres, W, done)
        for a in range(gstart[g], gstart[g + 1]):
            for b in range(gstart[h], gstart[h + 1]):
                dx = W[a, 0] - W[b, 0]
                dy = W[a, 1] - W[b, 1]
                dz = W[a, 2] - W[b, 2]
                d = np.sqrt(dx * dx + dy * dy + dz * dz) - W[a, 3] - W[b, 3]
                if d < best:
                    best = d
                    code = g * (M + G) + M + h
    return best, code


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)
def _min_dists(
    Q,
    base,
    jparent,
    jtype,
    jcol,
    jorigin,
    jaxis,
    glink,
    gstart,
    spheres,
    gbound,
    otype,
    oinv,
    oparam,
    cbound,
    cstart,
    gmask,
    pairs,
):
    N = Q.shape[0]
    dist = np.empty(N)
    codes = np.empty(N, dtype=np.int64)
    for i in nb.prange(N):
        T = np.empty((jparent.shape[0], 3, 4))
        B = np.empty((glink.shape[0], 4))
        W = np.empty((spheres.shape[0], 4))
        done = np.zeros(glink.shape[0], dtype=np.bool_)
        dist[i], codes[i] = _min_dist(
            Q[i],
            base,
            jparent,
            jtype,
            jcol,
            jorigin,
            jaxis,
            glink,
            gstart,
            spheres,
            gbound,
            otype,
            oinv,
            oparam,
            cbound,
            cstart,
            gmask,
            pairs,
            T,
            B,
            W,
            done,
        )
    return dist, codes


def min_distances(
    Q: NDArray[np.float64], args: tuple
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Smallest signed distance (N,) [m] and its pair code (N,) per configuration.

    ``args`` are the model arrays without the limits and the padding.
    """
    return _min_dists(Q, *args)
