"""Bidirectional RRT (RRT-Connect) over a :class:`~planners.space.ConfigurationSpace`, batch-first.

Kuffner and LaValle's RRT-Connect grows one tree from the start and one from the goals and
alternates: extend one tree a step towards a random sample, then pull the other tree
towards the new node until it is reached or blocked. This version is written for a
validity test that is cheap per configuration but costly per call:

* every edge is checked at a fixed joint resolution, with all the configurations of one
  step in a single ``valid`` call (a long connect is checked step by step, so a blocked
  one stops after the step that hits);
* the goal tree is rooted at every valid goal at once, so the search ends at whichever
  goal it reaches first; before any tree grows, the straight edges from the start to every
  goal are checked in one call;
* trees are preallocated node arrays with parent indices; the nearest node is a compiled
  linear scan (faster than a k-d tree at the few thousand nodes these searches reach);
* a tree with fewer than half the other's nodes is trapped (a start or goal in a pocket
  of obstacles and joint limits): half its extensions aim at a point near one of its own
  nodes instead of a uniform sample, so it fills the pocket and grows out of it
  (:mod:`planners.rrt_kernel`, :data:`~planners.rrt_kernel.LOCAL_RATIO`);
* samples come from the injected generator only, so a seed fixes the path (unless the
  time limit cuts the search short).

When the space carries its packed collision model (:attr:`planners.space.JointSpace.packed`,
as :func:`~planners.space.collision_space` builds it), the same search runs compiled
(:mod:`planners.rrt_kernel`): every configuration is checked in order as a tree grows,
with no call back into Python per check; the edge checks here run compiled too.

Every segment of a returned path is a straight joint-space edge that passed the validity
test at ``resolution``; nothing else is ever returned as a path.
"""

from __future__ import annotations

import logging
import time

import numba as nb
import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners import rrt_kernel
from planners.edges import edges_valid, valid_prefix
from planners.errors import InputError
from planners.plan_result import PlanResult, PlanStats, PlanStatus, path_length
from planners.shortcut_kernel import edges_free
from planners.space import ConfigurationSpace, edge_points

__all__ = [
    "DEFAULT_LAZY",
    "DEFAULT_RESOLUTION",
    "DEFAULT_STEP",
    "check_query",
    "read_query",
    "rrt_connect",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

DEFAULT_RESOLUTION = 0.02
"""Largest joint-space step between the configurations checked along an edge [rad]."""
DEFAULT_STEP = 0.5
"""Largest joint-space length of one tree extension [rad]."""
DEFAULT_LAZY = 2
"""Coarsening of the edge checks during the search (the final path is checked finely)."""
_SAMPLE_BLOCK = 64


@nb.njit(cache=True)
def _nearest(nodes: NDArray[np.float64], n: int, q: NDArray[np.float64]) -> int:
    """Index of the node among ``nodes[:n]`` nearest ``q`` (squared Euclidean)."""
    best = np.inf
    index = 0
    dof = q.shape[0]
    for i in range(n):
        s = 0.0
        for j in range(dof):
            d = nodes[i, j] - q[j]
            s += d * d
        if s < best:
            best = s
            index = i
    return index


class _Tree:
    """Configurations with parent indices; roots have parent -1."""

    def __init__(self, roots: NDArray[np.float64], capacity: int = 1024) -> None:
        k, dof = roots.shape
        capacity = max(capacity, 2 * k)
        self.nodes = np.empty((capacity, dof))
        self.parent = np.empty(capacity, dtype=np.int64)
        self.nodes[:k] = roots
        self.parent[:k] = -1
        self.n = k

    def add(self, q: NDArray[np.float64], parent: int) -> int:
        if self.n == self.nodes.shape[0]:
            self.nodes = np.concatenate((self.nodes, np.empty_like(self.nodes)))
            self.parent = np.concatenate((self.parent, np.empty_like(self.parent)))
        self.nodes[self.n] = q
        self.parent[self.n] = parent
        self.n += 1
        return self.n - 1

    def nearest(self, q: NDArray[np.float64]) -> int:
        return int(_nearest(self.nodes, self.n, q))

    def branch(self, i: int) -> tuple[NDArray[np.float64], int]:
        """Configurations from node ``i`` back to its root (node first), and the root index."""
        chain = [i]
        while self.parent[chain[-1]] >= 0:
            chain.append(int(self.parent[chain[-1]]))
        return self.nodes[chain], chain[-1]


class _Counter:
    """Counts validity calls and configurations checked; holds the space's packed model."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space
        self.packed = getattr(space, "packed", None)
        self.calls = 0
        self.checked = 0

    def __call__(self, Q: NDArray[np.float64]) -> NDArray[np.bool_]:
        self.calls += 1
        self.checked += Q.shape[0]
        return np.asarray(self.space.valid(Q), dtype=bool)


def _edges_ok(
    valid: _Counter, A: NDArray[np.float64], B: NDArray[np.float64], resolution: float
) -> NDArray[np.bool_]:
    """Whether each straight edge ``A[e] -> B[e]`` is valid at ``resolution``: compiled
    when the space carries its packed model, else in batched ``valid`` calls."""
    if valid.packed is not None:
        valid.calls += 1
        return edges_free(valid.packed, A, B, resolution)
    return edges_valid(valid, list(zip(A, B, strict=True)), resolution)


def check_query(
    space: ConfigurationSpace, start: npt.ArrayLike, goals: npt.ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The start as (dof,) and the goals as (M, dof), M >= 1, both finite.

    Raises:
        InputError: wrong shape or a value that is not finite.
    """
    q0, G, start_reason, goal_reasons = read_query(space, start, goals)
    if start_reason is not None:
        raise InputError(f"start: {start_reason}")
    if goal_reasons:
        i, why = next(iter(goal_reasons.items()))
        raise InputError(f"goals: {why}" if i < 0 else f"goal {i}: {why}")
    return q0, G


def read_query(
    space: ConfigurationSpace, start: npt.ArrayLike, goals: npt.ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], str | None, dict[int, str]]:
    """The start as (dof,) and the goals as (M, dof), with what is wrong with them as data.

    A start or a goal of the wrong length or with a value that is not finite is bad data,
    not a programming error: it comes back with a reason (rows of the goals that could not
    be read hold NaN) for the planner to return as INVALID_START or INVALID_GOAL.

    Returns:
        ``(q0, G, start_reason, goal_reasons)``: ``start_reason`` is ``None`` when the start
        is well formed; ``goal_reasons`` maps the index of each malformed goal to its reason
        (index -1: the goals as a whole, e.g. none given).

    Raises:
        InputError: the start or the goals are not numbers at all (a wrong type).
    """
    dof = space.dof
    try:
        q0 = np.array(start, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"start: expected numbers ({exc})") from None
    start_reason = None
    if q0.shape != (dof,):
        start_reason = f"expected shape ({dof},), got {q0.shape}"
        q0 = np.full(dof, np.nan)
    elif not np.all(np.isfinite(q0)):
        start_reason = _not_finite(q0)
    rows = _goal_rows(goals)
    G = np.full((max(len(rows), 1), dof), np.nan)
    goal_reasons: dict[int, str] = {}
    if not rows:
        goal_reasons[-1] = f"expected shape ({dof},) or (M, {dof}) with M >= 1, got none"
    for i, g in enumerate(rows):
        if g.shape != (dof,):
            goal_reasons[i] = f"expected shape ({dof},), got {g.shape}"
        else:
            G[i] = g
            if not np.all(np.isfinite(g)):
                goal_reasons[i] = _not_finite(g)
    return q0, G, start_reason, goal_reasons


def _goal_rows(goals: npt.ArrayLike) -> list[NDArray[np.float64]]:
    """The goals as one array per goal: a (dof,) array is one goal, (M, dof) M goals; a
    sequence of rows of different lengths is read row by row."""
    try:
        G = np.array(goals, dtype=np.float64)
    except (TypeError, ValueError):
        try:
            return [np.array(g, dtype=np.float64) for g in goals]  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise InputError(f"goals: expected numbers ({exc})") from None
    return [G] if G.ndim <= 1 else list(G)


def _not_finite(q: NDArray[np.float64]) -> str:
    j = int(np.argmin(np.isfinite(q)))
    return f"joint {j} is {q[j]} (every value must be finite)"


def _why_invalid(space: ConfigurationSpace, q: NDArray[np.float64]) -> str:
    """A sentence saying why ``q`` is invalid: the first joint out of bounds, or collision."""
    for j in range(space.dof):
        if not space.lower[j] <= q[j] <= space.upper[j]:
            return (
                f"joint {j} at {q[j]:.6g} is outside [{space.lower[j]:.6g}, {space.upper[j]:.6g}]"
            )
    return "in collision"


def _advance(
    valid: _Counter,
    tree: _Tree,
    i: int,
    target: NDArray[np.float64],
    resolution: float,
    per_step: int,
    max_steps: int,
) -> tuple[bool, int]:
    """Grow ``tree`` from node ``i`` straight towards ``target``, at most ``max_steps`` steps.

    The configurations of the whole advance are checked coarse first (two validity calls);
    the valid stretch before the first invalid configuration becomes a chain of nodes, one
    every ``per_step`` configurations and one at its end.

    Returns:
        Whether ``target`` was reached (it is then the last node), and the last node added
        (or ``i`` when none was).
    """
    pts = edge_points(tree.nodes[i], target, resolution)
    n = min(pts.shape[0], max_steps * per_step)
    k = valid_prefix(valid, pts[:n])
    last = i
    for s in range(per_step - 1, k, per_step):
        last = tree.add(pts[s], last)
    if k % per_step:
        last = tree.add(pts[k - 1], last)
    return k == pts.shape[0], last


def rrt_connect(
    space: ConfigurationSpace,
    start: npt.ArrayLike,
    goals: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    timeout: float = 1.0,
    max_iterations: int = 100_000,
    resolution: float = DEFAULT_RESOLUTION,
    step: float = DEFAULT_STEP,
    lazy: int = DEFAULT_LAZY,
) -> PlanResult:
    """Search for a collision-free path from ``start`` to any of ``goals`` (no smoothing).

    Args:
        space: The configuration space (bounds, sampling, batched validity).
        start: (dof,) start configuration [rad].
        goals: (dof,) or (M, dof) goal configurations [rad]; the path ends at one of them.
        rng: Generator for the samples; the same seed gives the same path.
        timeout: Time limit [s].
        max_iterations: Sample limit.
        resolution: Largest joint-space step between checked configurations [rad].
        step: Largest joint-space length of one extension [rad].
        lazy: The search checks edges at ``lazy * resolution`` and the path it finds is
            then checked at ``resolution``; if that fails (a thin obstacle the coarse
            search stepped over), the search runs again at ``resolution`` in the time
            left. 1 checks every edge at ``resolution`` from the start.

    Returns:
        A :class:`PlanResult`: SOLVED with the raw tree path, or INVALID_START,
        INVALID_GOAL, TIMEOUT or ITERATION_LIMIT with a reason. A start or goal of the
        wrong length or with a value that is not finite is INVALID_START or INVALID_GOAL
        (a malformed goal among valid ones is skipped and listed in ``invalid_goals``).

    Raises:
        InputError: start or goals that are not numbers at all, or non-positive limits.
    """
    t0 = time.perf_counter()
    q0, G, start_reason, goal_reasons = read_query(space, start, goals)
    if not (resolution > 0 and step >= resolution):
        raise InputError(
            f"resolution, step: expected 0 < resolution <= step, got {resolution}, {step}"
        )
    if lazy < 1:
        raise InputError(f"lazy: expected an integer >= 1, got {lazy}")
    if not (timeout > 0 and max_iterations >= 0):
        raise InputError(
            f"timeout, max_iterations: expected > 0 and >= 0, got {timeout}, {max_iterations}"
        )
    deadline = t0 + float(timeout)
    valid = _Counter(space)
    dof = space.dof

    def result(
        status: PlanStatus, reason: str | None, path: NDArray[np.float64], **kw: object
    ) -> PlanResult:
        stats = PlanStats(
            checked=valid.checked, valid_calls=valid.calls, plan_time=time.perf_counter() - t0,
            raw_length=path_length(path), **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        return PlanResult(status, reason, path if path.size else np.empty((0, dof)), stats)

    if start_reason is not None:
        return result(PlanStatus.INVALID_START, f"start: {start_reason}", np.empty((0, dof)))
    if -1 in goal_reasons:
        return result(PlanStatus.INVALID_GOAL, f"goals: {goal_reasons[-1]}", np.empty((0, dof)))
    # Malformed goals are invalid without a check (the validity test sees finite values only).
    ends = np.zeros(1 + G.shape[0], dtype=bool)
    checked = np.array([0] + [1 + i for i in range(G.shape[0]) if i not in goal_reasons])
    ends[checked] = valid(np.vstack((q0[None], G))[checked])
    if not ends[0]:
        return result(
            PlanStatus.INVALID_START, f"start {_why_invalid(space, q0)}", np.empty((0, dof))
        )
    bad = tuple(int(i) for i in np.flatnonzero(~ends[1:]))
    if len(bad) == G.shape[0]:
        reasons = "; ".join(
            f"goal {i}: {goal_reasons[i]}" if i in goal_reasons
            else f"goal {i} {_why_invalid(space, G[i])}"
            for i in bad[:5]
        )  # fmt: skip
        return result(
            PlanStatus.INVALID_GOAL,
            f"no valid goal: {reasons}",
            np.empty((0, dof)),
            invalid_goals=bad,
        )
    good = np.flatnonzero(ends[1:])
    roots = G[good]

    # The straight edges start -> every goal, in one call.
    direct = _edges_ok(valid, np.broadcast_to(q0, roots.shape), roots, resolution)
    if direct.any():
        lengths = np.where(direct, np.linalg.norm(roots - q0, axis=1), np.inf)
        k = int(np.argmin(lengths))
        path = np.vstack((q0, roots[k]))
        n = 1 + roots.shape[0]
        return result(
            PlanStatus.SOLVED, None, path, nodes=n, goal_index=int(good[k]), invalid_goals=bad
        )

    iterations = nodes = 0
    lazy_levels = [resolution * lazy, resolution] if lazy > 1 else [resolution]
    for level, search_resolution in enumerate(lazy_levels):
        found = _search(valid, space, q0, roots, rng, deadline, max_iterations - iterations,
                        search_resolution, step)  # fmt: skip
        iterations += found.iterations
        nodes += found.nodes
        if found.path is None:
            limit = found.status is PlanStatus.ITERATION_LIMIT
            reason = (
                f"no path after {iterations} iterations"
                if limit
                else f"no path within {timeout:.3g} s ({iterations} iterations)"
            )
            return result(found.status, reason, np.empty((0, dof)), iterations=iterations,
                          nodes=nodes, invalid_goals=bad)  # fmt: skip
        path, goal = found.path, int(good[found.root])
        if level == len(lazy_levels) - 1 or _edges_ok(valid, path[:-1], path[1:], resolution).all():
            return result(PlanStatus.SOLVED, None, path, iterations=iterations, nodes=nodes,
                          goal_index=goal, invalid_goals=bad)  # fmt: skip
        logger.debug("lazy path failed the check at %.3g rad; searching at it", resolution)
    raise AssertionError("unreachable")  # pragma: no cover


class _Found:
    """What one search ended with."""

    def __init__(self, status: PlanStatus, path: NDArray[np.float64] | None, root: int,
                 iterations: int, nodes: int) -> None:  # fmt: skip
        self.status, self.path, self.root = status, path, root
        self.iterations, self.nodes = iterations, nodes


def _search(
    valid: _Counter,
    space: ConfigurationSpace,
    q0: NDArray[np.float64],
    roots: NDArray[np.float64],
    rng: np.random.Generator,
    deadline: float,
    max_iterations: int,
    resolution: float,
    step: float,
) -> _Found:
    """RRT-Connect between a start tree and a goal tree rooted at every goal; compiled
    (:mod:`planners.rrt_kernel`) when the space carries its packed model."""
    if valid.packed is not None:
        lower, upper = np.asarray(space.lower), np.asarray(space.upper)
        out = rrt_kernel.search(valid.packed, lower, upper, q0, roots, rng, deadline,
                                max_iterations, resolution, step, rrt_kernel.LOCAL_RATIO,
                                rrt_kernel.LOCAL_P, rrt_kernel.LOCAL_RADIUS)  # fmt: skip
        valid.checked += out.checked
        valid.calls += out.calls
        if out.connected:
            return _Found(PlanStatus.SOLVED, out.path, out.root, out.iterations, out.nodes)
        limit = out.iterations >= max_iterations
        status = PlanStatus.ITERATION_LIMIT if limit else PlanStatus.TIMEOUT
        return _Found(status, None, -1, out.iterations, out.nodes)
    dof = space.dof
    per_step = max(1, int(np.floor(step / resolution)))
    max_connect = int(np.ceil(np.linalg.norm(space.upper - space.lower) / step)) + 1
    trees = (_Tree(q0[None]), _Tree(roots))
    a, b = 0, 1  # a grows towards the sample, b connects to a's new node
    lower, upper = np.asarray(space.lower), np.asarray(space.upper)
    samples, aux = np.empty((0, dof)), np.empty((0, 2 + dof))
    iteration = 0
    while True:
        if iteration >= max_iterations:
            status = PlanStatus.ITERATION_LIMIT
            break
        if time.perf_counter() >= deadline:
            status = PlanStatus.TIMEOUT
            break
        if iteration % _SAMPLE_BLOCK == 0:
            samples = space.sample(rng, _SAMPLE_BLOCK)
            aux = rng.random((_SAMPLE_BLOCK, 2 + dof))
        q_rand = samples[iteration % _SAMPLE_BLOCK]
        u = aux[iteration % _SAMPLE_BLOCK]
        iteration += 1
        ta, tb = trees[a], trees[b]
        if ta.n * rrt_kernel.LOCAL_RATIO < tb.n and u[0] < rrt_kernel.LOCAL_P:
            # A trapped tree (rrt_kernel: local samples): aim near one of its own nodes.
            c = min(int(u[1] * ta.n), ta.n - 1)
            local = ta.nodes[c] + rrt_kernel.LOCAL_RADIUS * (2.0 * u[2:] - 1.0)
            q_rand = np.clip(local, lower, upper)
        i = ta.nearest(q_rand)
        _, new = _advance(valid, ta, i, q_rand, resolution, per_step, 1)
        if new != i:
            q_new = ta.nodes[new]
            j = tb.nearest(q_new)
            connected, last = _advance(valid, tb, j, q_new, resolution, per_step, max_connect)
            if connected:
                branch_a, root_a = ta.branch(new)
                branch_b, root_b = tb.branch(last)
                path = np.vstack((branch_a[::-1], branch_b[1:]))  # tree a's root first
                if a == 1:
                    path, root_b = path[::-1], root_a
                return _Found(PlanStatus.SOLVED, path, root_b, iteration, ta.n + tb.n)
        a, b = b, a
    return _Found(status, None, -1, iteration, trees[0].n + trees[1].n)
