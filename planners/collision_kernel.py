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

__all__ = [
    "first_hit_motion",
    "first_hit_motion_packed",
    "first_hit_motions",
    "first_hits",
    "first_hits_packed",
    "link_poses",
    "min_distances",
    "pack",
    "sphere_centres",
]

_FAST = {"contract", "arcp", "nsz", "afn"}  # no "nnan"/"ninf": the kernel tests finiteness


@nb.njit(inline="always", cache=True, fastmath=_FAST, nogil=True)
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


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _fk(q, base, jparent, jtype, jcol, jorigin, jaxis, T):
    """World poses of every frame into T (L, 3, 4); the root's parent is ``base``."""
    L = jparent.shape[0]
    A = np.empty((3, 4))
    M = np.empty((3, 3))
    for i in range(L):
        p = jparent[i]
        # A = parent pose @ origin
        if p < 0:
            for r in range(3):
                b0, b1, b2 = base[r, 0], base[r, 1], base[r, 2]
                for c in range(4):
                    A[r, c] = b0 * jorigin[i, 0, c] + b1 * jorigin[i, 1, c] + b2 * jorigin[i, 2, c]
                A[r, 3] += base[r, 3]
        else:
            for r in range(3):
                b0, b1, b2 = T[p, r, 0], T[p, r, 1], T[p, r, 2]
                for c in range(4):
                    A[r, c] = b0 * jorigin[i, 0, c] + b1 * jorigin[i, 1, c] + b2 * jorigin[i, 2, c]
                A[r, 3] += T[p, r, 3]
        t = jtype[i]
        if t == 0:
            for r in range(3):
                for c in range(4):
                    T[i, r, c] = A[r, c]
            continue
        v = q[jcol[i]]
        ax, ay, az = jaxis[i, 0], jaxis[i, 1], jaxis[i, 2]
        if t == 2:
            for r in range(3):
                for c in range(3):
                    T[i, r, c] = A[r, c]
                T[i, r, 3] = A[r, 3] + v * (A[r, 0] * ax + A[r, 1] * ay + A[r, 2] * az)
            continue
        cs = np.cos(v)
        sn = np.sin(v)
        if ax == 0.0 and ay == 0.0 and abs(az) == 1.0:
            # About +-z: only the first two columns turn.
            sn = sn * az
            for r in range(3):
                a0 = A[r, 0]
                a1 = A[r, 1]
                T[i, r, 0] = cs * a0 + sn * a1
                T[i, r, 1] = cs * a1 - sn * a0
                T[i, r, 2] = A[r, 2]
                T[i, r, 3] = A[r, 3]
            continue
        C = 1.0 - cs
        M[0, 0] = cs + ax * ax * C
        M[0, 1] = ax * ay * C - az * sn
        M[0, 2] = ax * az * C + ay * sn
        M[1, 0] = ay * ax * C + az * sn
        M[1, 1] = cs + ay * ay * C
        M[1, 2] = ay * az * C - ax * sn
        M[2, 0] = az * ax * C - ay * sn
        M[2, 1] = az * ay * C + ax * sn
        M[2, 2] = cs + az * az * C
        for r in range(3):
            for c in range(3):
                T[i, r, c] = A[r, 0] * M[0, c] + A[r, 1] * M[1, c] + A[r, 2] * M[2, c]
            T[i, r, 3] = A[r, 3]


@nb.njit(inline="always", cache=True, fastmath=_FAST, nogil=True)
def _place(T, link, s, out, k):
    x, y, z = s[0], s[1], s[2]
    for r in range(3):
        out[k, r] = T[link, r, 0] * x + T[link, r, 1] * y + T[link, r, 2] * z + T[link, r, 3]
    out[k, 3] = s[3]


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _ensure(g, T, glink, gstart, spheres, W, done):
    if done[g]:
        return
    for k in range(gstart[g], gstart[g + 1]):
        _place(T, glink[g], spheres[k], W, k)
    done[g] = True


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _first_hit(
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
    _fk(q, base, jparent, jtype, jcol, jorigin, jaxis, T)
    G = glink.shape[0]
    M = otype.shape[0]
    for g in range(G):
        _place(T, glink[g], gbound[g], B, g)
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
                _ensure(g, T, glink, gstart, spheres, W, done)
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
        _ensure(g, T, glink, gstart, spheres, W, done)
        _ensure(h, T, glink, gstart, spheres, W, done)
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


@nb.njit(parallel=True, cache=True, fastmath=_FAST, nogil=True)
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
            out[i] = _first_hit(
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


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
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
        out[i] = _first_hit(
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


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _motion(
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
        hit = _first_hit(
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
    return int(_motion(qa, qb, n, *args))


@nb.njit(parallel=True, cache=True, fastmath=_FAST, nogil=True)
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
        out[e] = _motion(
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


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
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
    _fk(q, base, jparent, jtype, jcol, jorigin, jaxis, T)
    G = glink.shape[0]
    M = otype.shape[0]
    for g in range(G):
        _place(T, glink[g], gbound[g], B, g)
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
                _ensure(g, T, glink, gstart, spheres, W, done)
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
        _ensure(g, T, glink, gstart, spheres, W, done)
        _ensure(h, T, glink, gstart, spheres, W, done)
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


@nb.njit(parallel=True, cache=True, fastmath=_FAST, nogil=True)
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


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _centres(Q, base, jparent, jtype, jcol, jorigin, jaxis, glink, gstart, spheres):
    N = Q.shape[0]
    out = np.empty((N, spheres.shape[0], 4))
    T = np.empty((jparent.shape[0], 3, 4))
    for i in range(N):
        _fk(Q[i], base, jparent, jtype, jcol, jorigin, jaxis, T)
        for g in range(glink.shape[0]):
            for k in range(gstart[g], gstart[g + 1]):
                _place(T, glink[g], spheres[k], out[i], k)
    return out


def sphere_centres(Q: NDArray[np.float64], args: tuple) -> NDArray[np.float64]:
    """World spheres (N, S, 4) ``x y z r`` for configurations (N, dof)."""
    return _centres(Q, *args)


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _link_poses(Q, base, jparent, jtype, jcol, jorigin, jaxis):
    N = Q.shape[0]
    out = np.empty((N, jparent.shape[0], 3, 4))
    for i in range(N):
        _fk(Q[i], base, jparent, jtype, jcol, jorigin, jaxis, out[i])
    return out


def link_poses(Q: NDArray[np.float64], args: tuple) -> NDArray[np.float64]:
    """World poses (N, L, 3, 4) of the model's links (its own FK)."""
    return _link_poses(Q, *args)


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _unpack(fbuf, ibuf):
    """The model arrays as views of two flat buffers (see :func:`pack`)."""
    dof, F, G, S, M, P, NC = ibuf[0], ibuf[1], ibuf[2], ibuf[3], ibuf[4], ibuf[5], ibuf[6]
    o = 0
    lower = fbuf[o : o + dof]
    o += dof
    upper = fbuf[o : o + dof]
    o += dof
    base = fbuf[o : o + 16].reshape(4, 4)
    o += 16
    jorigin = fbuf[o : o + F * 16].reshape(F, 4, 4)
    o += F * 16
    jaxis = fbuf[o : o + F * 3].reshape(F, 3)
    o += F * 3
    spheres = fbuf[o : o + S * 4].reshape(S, 4)
    o += S * 4
    gbound = fbuf[o : o + G * 4].reshape(G, 4)
    o += G * 4
    oinv = fbuf[o : o + M * 12].reshape(M, 3, 4)
    o += M * 12
    oparam = fbuf[o : o + M * 3].reshape(M, 3)
    o += M * 3
    cbound = fbuf[o : o + NC * 4].reshape(NC, 4)
    o += NC * 4
    pad = fbuf[o]
    i = 7
    jparent = ibuf[i : i + F]
    i += F
    jtype = ibuf[i : i + F]
    i += F
    jcol = ibuf[i : i + F]
    i += F
    glink = ibuf[i : i + G]
    i += G
    gstart = ibuf[i : i + G + 1]
    i += G + 1
    otype = ibuf[i : i + M]
    i += M
    cstart = ibuf[i : i + NC + 1]
    i += NC + 1
    gmask = ibuf[i : i + G * M].reshape(G, M)
    i += G * M
    pairs = ibuf[i : i + P * 2].reshape(P, 2)
    return (
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


def pack(args: tuple) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The model arrays (the order of :func:`first_hits`'s ``args``) as two flat buffers.

    Fewer arguments make a compiled call cheaper: the planner checks small batches often.
    """
    (
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
    ) = args
    head = [len(lower), len(jparent), len(glink), len(spheres), len(otype), len(pairs), len(cbound)]
    fbuf = np.concatenate(
        [
            np.ravel(a).astype(np.float64)
            for a in (
                lower,
                upper,
                base,
                jorigin,
                jaxis,
                spheres,
                gbound,
                oinv,
                oparam,
                cbound,
                [pad],
            )
        ]
    )
    ibuf = np.concatenate(
        [np.asarray(head, np.int64)]
        + [
            np.ravel(a).astype(np.int64)
            for a in (jparent, jtype, jcol, glink, gstart, otype, cstart, gmask, pairs)
        ]
    )
    return np.ascontiguousarray(fbuf), np.ascontiguousarray(ibuf)


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _first_hits_packed(Q, fbuf, ibuf):
    (
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
    ) = _unpack(fbuf, ibuf)
    N = Q.shape[0]
    out = np.empty(N, dtype=np.int64)
    T = np.empty((jparent.shape[0], 3, 4))
    B = np.empty((glink.shape[0], 4))
    W = np.empty((spheres.shape[0], 4))
    done = np.zeros(glink.shape[0], dtype=np.bool_)
    for i in range(N):
        out[i] = _first_hit(
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


def first_hits_packed(
    Q: NDArray[np.float64], packed: tuple[NDArray[np.float64], NDArray[np.int64]]
) -> NDArray[np.int64]:
    """:func:`first_hits` on one core from packed buffers (cheaper call for small batches)."""
    return _first_hits_packed(Q, packed[0], packed[1])


@nb.njit(cache=True, fastmath=_FAST, nogil=True)
def _motion_packed(qa, qb, n, fbuf, ibuf):
    (
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
    ) = _unpack(fbuf, ibuf)
    return _motion(
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
    )


def first_hit_motion_packed(
    qa: NDArray[np.float64],
    qb: NDArray[np.float64],
    n: int,
    packed: tuple[NDArray[np.float64], NDArray[np.int64]],
) -> int:
    """:func:`first_hit_motion` from packed buffers."""
    return int(_motion_packed(qa, qb, n, packed[0], packed[1]))
