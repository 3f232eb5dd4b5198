"""Compiled kinematics of the fast collision model (numba): link poses and sphere centres.

The link arrays (``jparent``, ``jtype``, ``jcol``, ``jorigin``, ``jaxis``) and sphere
groups (``glink``, ``gstart``, ``spheres``) are described in :mod:`planners.collision_kernel`.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = ["FASTMATH", "ensure_group", "fk_links", "link_poses", "place_sphere", "sphere_centres"]

FASTMATH = {"contract", "arcp", "nsz", "afn"}  # no "nnan"/"ninf": the kernel tests finiteness


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def fk_links(q, base, jparent, jtype, jcol, jorigin, jaxis, T):
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


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def place_sphere(T, link, S, i, out, k):
    """Sphere ``S[i]`` (``x y z r`` in frame ``link``) into ``out[k]`` in the world.

    Indices, not row views: a view counts references, which costs in the hot loops."""
    x, y, z = S[i, 0], S[i, 1], S[i, 2]
    for r in range(3):
        out[k, r] = T[link, r, 0] * x + T[link, r, 1] * y + T[link, r, 2] * z + T[link, r, 3]
    out[k, 3] = S[i, 3]


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def ensure_group(g, T, glink, gstart, spheres, W, done):
    if done[g]:
        return
    for k in range(gstart[g], gstart[g + 1]):
        place_sphere(T, glink[g], spheres, k, W, k)
    done[g] = True


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _centres(Q, base, jparent, jtype, jcol, jorigin, jaxis, glink, gstart, spheres):
    N = Q.shape[0]
    out = np.empty((N, spheres.shape[0], 4))
    T = np.empty((jparent.shape[0], 3, 4))
    for i in range(N):
        fk_links(Q[i], base, jparent, jtype, jcol, jorigin, jaxis, T)
        for g in range(glink.shape[0]):
            for k in range(gstart[g], gstart[g + 1]):
                place_sphere(T, glink[g], spheres, k, out[i], k)
    return out


def sphere_centres(Q: NDArray[np.float64], args: tuple) -> NDArray[np.float64]:
    """World spheres (N, S, 4) ``x y z r`` for configurations (N, dof)."""
    return _centres(Q, *args)


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _link_poses(Q, base, jparent, jtype, jcol, jorigin, jaxis):
    N = Q.shape[0]
    out = np.empty((N, jparent.shape[0], 3, 4))
    for i in range(N):
        fk_links(Q[i], base, jparent, jtype, jcol, jorigin, jaxis, out[i])
    return out


def link_poses(Q: NDArray[np.float64], args: tuple) -> NDArray[np.float64]:
    """World poses (N, L, 3, 4) of the model's links (its own FK)."""
    return _link_poses(Q, *args)
