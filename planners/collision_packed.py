"""The fast collision model's kernels called with the model packed into two flat buffers.

Passing a dozen arrays to a numba function costs microseconds per call in argument
unboxing; :func:`pack` flattens them once into one float and one int buffer, and the
entry points here unpack inside compiled code. Same results as the unpacked kernels of
:mod:`planners.collision_kernel`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.collision_fk import FASTMATH
from planners.collision_kernel import config_hit, motion_hit

__all__ = ["first_hit_motion_packed", "first_hits_packed", "pack"]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
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


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
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


def first_hits_packed(
    Q: NDArray[np.float64], packed: tuple[NDArray[np.float64], NDArray[np.int64]]
) -> NDArray[np.int64]:
    """:func:`first_hits` on one core from packed buffers (cheaper call for small batches)."""
    return _first_hits_packed(Q, packed[0], packed[1])


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
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
    return motion_hit(
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
