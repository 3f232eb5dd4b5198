"""RRT-Connect compiled with the collision model (numba): the search loop without Python.

:func:`planners.rrt.rrt_connect` runs this search when the space it plans in carries the
packed collision model (:attr:`planners.space.JointSpace.packed`), and the generic,
batch-first one otherwise. Both follow the same steps: extend one tree a step towards a
sample, pull the other tree towards the new node until reached or blocked, swap; every
edge is checked at a fixed Euclidean resolution; a node every ``per_step`` samples.
Here each configuration is checked in compiled code as the tree grows, in order, so a
blocked extension stops at its first invalid sample without a call back into Python.

Samples come in blocks from the injected generator (:func:`search`), so a seed fixes the
search; between blocks Python checks the deadline and grows the node arrays.

Local samples for a trapped tree: while one tree has fewer than 1/:data:`LOCAL_RATIO` of
the other's nodes, each of its extensions aims, with probability :data:`LOCAL_P`, at a point
drawn uniformly within :data:`LOCAL_RADIUS` of one of its own nodes (clipped to the bounds)
instead of at the uniform sample. A goal (or start) in a pocket, boxed in by obstacles and
joint limits, sees only a few directions out; uniform samples mostly lie across the walls,
so its tree stayed at a handful of nodes while the other grew to thousands and the trees
met only when the big tree happened to land in the pocket's line of sight (MotionBenchMaker
box[30] and table_pick[22] with Franka's Panda limits: 1 s and more on 1 seed in 3). Local
samples let the small tree fill its pocket and grow out through the opening; on balanced
trees nothing changes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.collision_fk import FASTMATH
from planners.collision_kernel import valid_prefix, workspace
from planners.collision_packed import Packed, unpack

__all__ = ["LOCAL_P", "LOCAL_RADIUS", "LOCAL_RATIO", "Search", "search"]

_BLOCK = 32  # samples per compiled call
_GO, _CONNECTED, _FULL = 0, 1, 2

LOCAL_RATIO = 2.0
"""A tree with fewer than 1/this of the other tree's nodes is trapped (0: never)."""
LOCAL_P = 0.5
"""Share of a trapped tree's extensions aimed at a local sample."""
LOCAL_RADIUS = 1.5
"""Half-width of the box, centred on a node of the trapped tree, of its local samples [rad]."""


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _nearest(nodes, n, q):
    """Index of the node among ``nodes[:n]`` nearest ``q`` (squared Euclidean)."""
    best = np.inf
    index = 0
    for i in range(n):
        s = 0.0
        for j in range(q.shape[0]):
            d = nodes[i, j] - q[j]
            s += d * d
        if s < best:
            best = s
            index = i
    return index


@nb.njit(inline="always", cache=True, fastmath=FASTMATH, nogil=True)
def _add(nodes, parent, n, last, a, target, t):
    """Node ``n``: ``t`` of the way from ``a`` to ``target``, child of ``last``."""
    for j in range(a.shape[0]):
        nodes[n, j] = a[j] + t * (target[j] - a[j])
    parent[n] = last
    return n, n + 1


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _advance(nodes, parent, n, i, target, res, per_step, max_steps, model, ws, stats):
    """Grow the tree ``nodes[:n]`` from node ``i`` straight towards ``target``.

    Samples ``k / m`` of the way (m = ceil(distance / res)), at most
    ``max_steps * per_step`` of them, are checked in order; the valid run before the first
    invalid one becomes a chain of nodes, one every ``per_step`` samples and one at its end.

    Returns:
        Whether ``target`` was reached (it is then the last node), the last node added (or
        ``i``), and the new node count.
    """
    a = nodes[i]
    length = 0.0
    for j in range(a.shape[0]):
        length += (target[j] - a[j]) ** 2
    m = max(1, math.ceil(math.sqrt(length) / res))
    kmax = min(m, max_steps * per_step)
    k = valid_prefix(a, target, m, kmax, model, ws)
    stats[0] += k + (1 if k < kmax else 0)
    last = i
    for s in range(per_step, k + 1, per_step):
        last, n = _add(nodes, parent, n, last, a, target, s / m)
    if k % per_step:
        last, n = _add(nodes, parent, n, last, a, target, k / m)
    if k == m:  # the target itself, not a copy within rounding of it
        for j in range(a.shape[0]):
            nodes[last, j] = target[j]
    return k == m, last, n


@nb.njit(cache=True, fastmath=FASTMATH, nogil=True)
def _grow(
    fbuf,
    ibuf,
    samples,
    aux,
    lower,
    upper,
    nodes0,
    parent0,
    nodes1,
    parent1,
    state,
    res,
    per_step,
    max_connect,
    ratio,
    local_p,
    radius,
):
    """Run RRT-Connect over ``samples`` (K, dof) until the trees connect.

    ``aux`` (K, dof + 2) uniform on [0, 1): whether the extension of a trapped tree (fewer
    than 1/``ratio`` of the other's nodes) aims at a local sample (``aux[:, 0] < local_p``),
    which of its nodes it is drawn around, and where within ``radius`` of it (clipped to
    ``lower``, ``upper``).

    ``state`` (int64): node counts of tree 0 (start) and 1 (goals), the tree that extends
    next, configurations checked, and on connection the meeting nodes in trees 0 and 1.

    Returns:
        (status, samples used): _CONNECTED, _FULL (grow the node arrays and call again
        with the rest of the samples) or _GO (all samples used).
    """
    model = unpack(fbuf, ibuf)
    ws = workspace(model)
    cap = nodes0.shape[0]
    stats = state[3:4]
    local = np.empty(samples.shape[1])
    for it in range(samples.shape[0]):
        if state[0] + max_connect + 1 > cap or state[1] + max_connect + 1 > cap:
            return _FULL, it
        a = state[2]
        if a == 0:
            na, pa, nb_, pb = nodes0, parent0, nodes1, parent1
        else:
            na, pa, nb_, pb = nodes1, parent1, nodes0, parent0
        n_a, n_b = state[a], state[1 - a]
        q_rand = samples[it]
        if n_a * ratio < n_b and aux[it, 0] < local_p:
            c = min(int(aux[it, 1] * n_a), n_a - 1)
            for j in range(local.shape[0]):
                x = na[c, j] + radius * (2.0 * aux[it, 2 + j] - 1.0)
                local[j] = min(max(x, lower[j]), upper[j])
            q_rand = local
        i = _nearest(na, n_a, q_rand)
        _, new, n_a = _advance(na, pa, n_a, i, q_rand, res, per_step, 1, model, ws, stats)
        state[a] = n_a
        if new != i:
            j = _nearest(nb_, n_b, na[new])
            reached, last, n_b = _advance(
                nb_, pb, n_b, j, na[new], res, per_step, max_connect, model, ws, stats
            )
            state[1 - a] = n_b
            if reached:
                state[4 + a] = new
                state[5 - a] = last
                return _CONNECTED, it + 1
        state[2] = 1 - a
    return _GO, samples.shape[0]


@dataclass(frozen=True)
class Search:
    """What one compiled search ended with.

    Attributes:
        connected: Whether the trees met (else the deadline or the sample limit passed).
        path: (K, dof) start to goal when connected, else (0, dof).
        root: Index (into the roots given) of the goal reached, or -1.
        iterations: Samples drawn.
        nodes: Configurations in both trees.
        checked: Configurations checked.
        calls: Compiled calls.
    """

    connected: bool
    path: NDArray[np.float64]
    root: int
    iterations: int
    nodes: int
    checked: int
    calls: int


def _branch(parent: NDArray[np.int64], i: int) -> tuple[list[int], int]:
    """Node indices from ``i`` back to its root (``i`` first), and the root."""
    chain = [i]
    while parent[chain[-1]] >= 0:
        chain.append(int(parent[chain[-1]]))
    return chain, chain[-1]


def search(
    packed: Packed,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    q0: NDArray[np.float64],
    roots: NDArray[np.float64],
    rng: np.random.Generator,
    deadline: float,
    max_iterations: int,
    resolution: float,
    step: float,
    ratio: float = LOCAL_RATIO,
    local_p: float = LOCAL_P,
    radius: float = LOCAL_RADIUS,
) -> Search:
    """RRT-Connect from ``q0`` (dof,) to any of ``roots`` (R, dof), both valid.

    Args:
        packed: The collision model (:attr:`planners.collision.CollisionModel.packed`).
        lower: (dof,) sampling bounds [rad].
        upper: (dof,) sampling bounds [rad].
        q0: Start.
        roots: Goals, each a root of the goal tree.
        rng: Generator of the samples, drawn in blocks of 32 (with, per block, the uniform
            numbers that place the local samples).
        deadline: ``time.perf_counter()`` value after which no block starts.
        max_iterations: Sample limit.
        resolution: Largest Euclidean step between checked configurations [rad].
        step: Largest length of one extension [rad].
        ratio: A tree with fewer than 1/``ratio`` of the other's nodes is trapped and
            aims some extensions at local samples (0: never).
        local_p: Share of a trapped tree's extensions aimed at a local sample.
        radius: Half-width of the box of the local samples around a node [rad].
    """
    dof = q0.shape[0]
    if not ratio > 0:
        local_p = 0.0
    per_step = max(1, int(np.floor(step / resolution)))
    max_connect = int(np.ceil(np.linalg.norm(upper - lower) / step)) + 1
    cap = max(1024, 4 * (max_connect + 1) + roots.shape[0])
    trees = [np.empty((cap, dof)), np.empty((cap, dof))]
    parents = [np.empty(cap, np.int64), np.empty(cap, np.int64)]
    trees[0][0] = q0
    parents[0][0] = -1
    trees[1][: roots.shape[0]] = roots
    parents[1][: roots.shape[0]] = -1
    state = np.array([1, roots.shape[0], 0, 0, -1, -1], np.int64)
    iterations = calls = 0
    samples, aux = np.empty((0, dof)), np.empty((0, dof + 2))
    while True:
        if not samples.shape[0]:
            if iterations >= max_iterations or time.perf_counter() >= deadline:
                break
            k = min(_BLOCK, max_iterations - iterations)
            samples = rng.uniform(lower, upper, size=(k, dof))
            aux = rng.random((k, dof + 2)) if local_p > 0 else np.zeros((k, dof + 2))
        status, used = _grow(*packed, samples, aux, lower, upper, trees[0], parents[0], trees[1],
                             parents[1], state, resolution, per_step, max_connect, ratio,
                             local_p, radius)  # fmt: skip
        calls += 1
        iterations += used
        samples, aux = samples[used:], aux[used:]
        if status == _FULL:
            for t in range(2):
                trees[t] = np.concatenate((trees[t], np.empty_like(trees[t])))
                parents[t] = np.concatenate((parents[t], np.empty_like(parents[t])))
        elif status == _CONNECTED:
            start_chain, _ = _branch(parents[0], int(state[4]))
            goal_chain, root = _branch(parents[1], int(state[5]))
            path = np.vstack((trees[0][start_chain[::-1]], trees[1][goal_chain[1:]]))
            return Search(True, path, root, iterations, int(state[0] + state[1]),
                          int(state[3]), calls)  # fmt: skip
    return Search(False, np.empty((0, dof)), -1, iterations, int(state[0] + state[1]),
                  int(state[3]), calls)  # fmt: skip
