"""The fast collision model packed into two flat buffers, and its batched entry points.

Passing a dozen arrays to a numba function costs microseconds per call in argument
unboxing; :func:`pack` flattens them once into one float and one int buffer, and
:func:`unpack` (compiled) views them as the model tuple of :mod:`planners.collision_kernel`.

Each batched entry point has a serial and a parallel (numba ``prange``) form; callers
choose parallel only for large batches (:data:`planners.collision.PARALLEL_FROM`).

Numba's default threading layer here is OpenMP, whose parallel regions cost 6-8 ms each
on this shared 2-core machine when the other core is busy (1,024 configurations: 6.1 ms
parallel against 1.9 ms serial, load average 2). Its ``workqueue`` layer costs next to
nothing (1.7 ms parallel; 4,096: 4.1 against 7.7 ms). So this module selects
``workqueue`` unless ``NUMBA_THREADING_LAYER`` says otherwise; the choice is made at the
first parallel call of the process, and nothing else in the project runs parallel numba.
"""

from __future__ import annotations

import os

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.collision_fk import FASTMATH
from planners.collision_kernel import config_distance, config_hit, motion_hit, workspace

__all__ = [
    "Packed",
    "first_hit_motion",
    "first_hit_motions",
    "first_hits",
    "min_distances",
    "pack",
    "unpack",
]

Packed = tuple[NDArray[np.float64], NDArray[np.int64]]
"""The model as a float buffer and an int buffer (:func:`pack`)."""

_CHUNK = 32  # configurations per parallel work item

if "NUMBA_THREADING_LAYER" not in os.environ:
    nb.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def unpack(fbuf, ibuf):
    """The model tuple (see :mod:`planners.collision_kernel`) as views of two buffers."""
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
    return (lower, upper, base, jparent, jtype, jcol, jorigin, jaxis, glink, gstart, spheres,
            gbound, otype, oinv, oparam, cbound, cstart, gmask, pairs, pad)  # fmt: skip


def pack(args: tuple) -> Packed:
    """The model arrays, in the order of the model tuple, as two flat buffers."""
    (lower, upper, base, jparent, jtype, jcol, jorigin, jaxis, glink, gstart, spheres, gbound,
     otype, oinv, oparam, cbound, cstart, gmask, pairs, pad) = args  # fmt: skip
    head = [len(lower), len(jparent), len(glink), len(spheres), len(otype), len(pairs), len(cbound)]
    floats = (lower, upper, base, jorigin, jaxis, spheres, gbound, oinv, oparam, cbound, [pad])
    ints = (jparent, jtype, jcol, glink, gstart, otype, cstart, gmask, pairs)
    fbuf = np.concatenate([np.ravel(a).astype(np.float64) for a in floats])
    ibuf = np.concatenate(
        [np.asarray(head, np.int64)] + [np.ravel(a).astype(np.int64) for a in ints]
    )
    return np.ascontiguousarray(fbuf), np.ascontiguousarray(ibuf)


# ----------------------------------------------------------------- configurations


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _hits(Q, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    ws = workspace(model)
    out = np.empty(Q.shape[0], dtype=np.int64)
    for i in range(Q.shape[0]):
        out[i] = config_hit(Q[i], model, ws)
    return out


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)
def _hits_parallel(Q, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    N = Q.shape[0]
    out = np.empty(N, dtype=np.int64)
    for c in nb.prange((N + _CHUNK - 1) // _CHUNK):
        ws = workspace(model)
        for i in range(c * _CHUNK, min(N, (c + 1) * _CHUNK)):
            out[i] = config_hit(Q[i], model, ws)
    return out


def first_hits(Q: NDArray[np.float64], packed: Packed, parallel: bool = False) -> NDArray[np.int64]:
    """Hit code of each configuration (N, dof): (N,) ints (-1: valid)."""
    if parallel:
        return _hits_parallel(Q, *packed)
    return _hits(Q, *packed)


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _distances(Q, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    ws = workspace(model)
    dist = np.empty(Q.shape[0])
    codes = np.empty(Q.shape[0], dtype=np.int64)
    for i in range(Q.shape[0]):
        dist[i], codes[i] = config_distance(Q[i], model, ws)
    return dist, codes


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)
def _distances_parallel(Q, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    N = Q.shape[0]
    dist = np.empty(N)
    codes = np.empty(N, dtype=np.int64)
    for c in nb.prange((N + _CHUNK - 1) // _CHUNK):
        ws = workspace(model)
        for i in range(c * _CHUNK, min(N, (c + 1) * _CHUNK)):
            dist[i], codes[i] = config_distance(Q[i], model, ws)
    return dist, codes


def min_distances(
    Q: NDArray[np.float64], packed: Packed, parallel: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Smallest signed distance (N,) [m] and its pair code (N,) per configuration."""
    if parallel:
        return _distances_parallel(Q, *packed)
    return _distances(Q, *packed)


# ----------------------------------------------------------------------- segments


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _motion(qa, qb, n, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    return motion_hit(qa, qb, n, model, workspace(model))


def first_hit_motion(
    qa: NDArray[np.float64], qb: NDArray[np.float64], n: int, packed: Packed
) -> int:
    """A colliding sample index of the n-point straight segment qa -> qb, or -1."""
    return int(_motion(qa, qb, n, *packed))


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _motions(QA, QB, NS, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    ws = workspace(model)
    out = np.empty(QA.shape[0], dtype=np.int64)
    for e in range(QA.shape[0]):
        out[e] = motion_hit(QA[e], QB[e], NS[e], model, ws)
    return out


@nb.njit(parallel=True, cache=True, fastmath=FASTMATH, nogil=True)
def _motions_parallel(QA, QB, NS, fbuf, ibuf):
    model = unpack(fbuf, ibuf)
    out = np.empty(QA.shape[0], dtype=np.int64)
    for e in nb.prange(QA.shape[0]):
        out[e] = motion_hit(QA[e], QB[e], NS[e], model, workspace(model))
    return out


def first_hit_motions(
    QA: NDArray[np.float64],
    QB: NDArray[np.float64],
    NS: NDArray[np.int64],
    packed: Packed,
    parallel: bool = False,
) -> NDArray[np.int64]:
    """:func:`first_hit_motion` for E segments (E, dof) of NS (E,) samples: (E,) ints."""
    if parallel:
        return _motions_parallel(QA, QB, NS, *packed)
    return _motions(QA, QB, NS, *packed)
