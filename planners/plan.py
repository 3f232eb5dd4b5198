"""The planning entry point: RRT-Connect, then shortcut smoothing, one result.

:func:`plan` is what a cell calls to move between two configurations: it searches with
:func:`~planners.rrt.rrt_connect` and shortens the path with
:func:`~planners.shortcut.shortcut` inside the same time limit. The result is always a
:class:`~planners.plan_result.PlanResult`. When the space carries its packed collision
model (:func:`~planners.space.collision_space`), search and smoothing run compiled
(:mod:`planners.rrt_kernel`, :mod:`planners.shortcut_kernel`); the seed fixes the result
either way.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.edges import edges_valid
from planners.errors import InputError
from planners.plan_result import PlanResult, PlanStatus
from planners.rrt import DEFAULT_LAZY, DEFAULT_RESOLUTION, DEFAULT_STEP, rrt_connect
from planners.shortcut import ShortcutStats
from planners.shortcut import shortcut as shorten
from planners.shortcut_kernel import edges_free
from planners.shortcut_kernel import shortcut as compiled_shortcut
from planners.space import ConfigurationSpace

__all__ = ["plan"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def plan(
    space: ConfigurationSpace,
    start: npt.ArrayLike,
    goals: npt.ArrayLike,
    *,
    rng: np.random.Generator | int,
    timeout: float = 1.0,
    max_iterations: int = 100_000,
    resolution: float = DEFAULT_RESOLUTION,
    step: float = DEFAULT_STEP,
    shortcut_rounds: int = 10,
    shortcut: bool = True,
    lazy: int = DEFAULT_LAZY,
) -> PlanResult:
    """A collision-free joint-space path from ``start`` to the nearest reachable of ``goals``.

    Args:
        space: The configuration space (e.g. :func:`~planners.space.collision_space`).
        start: (dof,) start configuration [rad].
        goals: (dof,) or (M, dof) goal configurations [rad].
        rng: Generator (or seed) for sampling and shortcutting; a seed fixes the result
            unless the time limit cuts the search short.
        timeout: Time limit for search and smoothing together [s].
        max_iterations: Sample limit of the search.
        resolution: Largest joint-space step between checked configurations [rad].
        step: Largest joint-space length of one tree extension [rad].
        shortcut_rounds: Largest number of batches of random shortcuts (four per batch;
            compiled, 4 x this many single tries).
        shortcut: Whether to shorten the path.
        lazy: Search and shorten with edges checked at ``lazy * resolution``, then check
            the final path at ``resolution``; when that check fails (an obstacle thinner
            than the coarse step), shorten the search's path at ``resolution`` if it passes
            at ``resolution``, else plan again at ``resolution`` in the time left. 1
            checks at ``resolution`` throughout.

    Returns:
        A :class:`PlanResult`; on failure ``status`` and ``reason`` say why. A start or
        goal of the wrong length or with a value that is not finite (NaN, inf) is
        INVALID_START or INVALID_GOAL with a reason naming it, like one out of the limits.

    Raises:
        InputError: start or goals that are not numbers at all, or malformed settings.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if not timeout > 0:
        raise InputError(f"timeout: expected a positive number of seconds, got {timeout}")
    if not (resolution > 0) or lazy < 1 or shortcut_rounds < 0:
        raise InputError(
            f"resolution, lazy, shortcut_rounds: expected > 0, >= 1, >= 0; got {resolution}, "
            f"{lazy}, {shortcut_rounds}"
        )
    t0 = time.perf_counter()
    deadline = t0 + timeout
    fine_calls = [0, 0]
    packed = getattr(space, "packed", None)

    def fine_ok(P: NDArray[np.float64]) -> bool:
        if packed is not None:
            fine_calls[0] += 1
            return bool(edges_free(packed, P[:-1], P[1:], resolution).all())

        def counted(Q: NDArray[np.float64]) -> NDArray[np.bool_]:
            fine_calls[0] += 1
            fine_calls[1] += Q.shape[0]
            return np.asarray(space.valid(Q), dtype=bool)

        return bool(edges_valid(counted, list(itertools.pairwise(P)), resolution).all())

    levels = [resolution * lazy, resolution] if lazy > 1 else [resolution]
    for level, res_level in enumerate(levels):
        last = level == len(levels) - 1
        left = max(deadline - time.perf_counter(), 1e-6)
        result = rrt_connect(
            space, start, goals, rng=gen, timeout=left, max_iterations=max_iterations,
            resolution=res_level, step=max(step, res_level), lazy=1,
        )  # fmt: skip
        if result.status is not PlanStatus.SOLVED:
            return result
        t1 = time.perf_counter()
        raw = result.path
        path, st = _smooth(space, raw, gen, res_level, shortcut, shortcut_rounds, deadline)
        if not last and not fine_ok(path):
            # Shortcuts skim obstacles: one stepped over at the coarse resolution.
            if not fine_ok(raw):
                logger.debug("path planned at %.3g rad fails at %.3g rad; planning again",
                             res_level, resolution)  # fmt: skip
                continue
            logger.debug("shortcuts at %.3g rad fail at %.3g rad; shortening at it",
                         res_level, resolution)  # fmt: skip
            path, st = _smooth(space, raw, gen, resolution, shortcut, shortcut_rounds, deadline)
        stats = dataclasses.replace(
            result.stats,
            checked=result.stats.checked + (st.checked if st else 0) + fine_calls[1],
            valid_calls=result.stats.valid_calls + (st.valid_calls if st else 0) + fine_calls[0],
            plan_time=t1 - t0,
            smooth_time=time.perf_counter() - t1,
        )
        return PlanResult(PlanStatus.SOLVED, None, path, stats)
    raise AssertionError("unreachable")  # pragma: no cover


def _smooth(
    space: ConfigurationSpace,
    path: NDArray[np.float64],
    rng: np.random.Generator,
    resolution: float,
    enabled: bool,
    rounds: int,
    deadline: float,
) -> tuple[NDArray[np.float64], ShortcutStats | None]:
    """Shortcut ``path`` at ``resolution``: compiled on a space with its packed model."""
    if not enabled or path.shape[0] <= 2:
        return path, None
    packed = getattr(space, "packed", None)
    if packed is not None:
        out, (edges, _, _) = compiled_shortcut(
            packed, path, rng=rng, resolution=resolution, attempts=4 * rounds, deadline=deadline
        )
        return out, ShortcutStats(0, 0, 0, edges)
    return shorten(space, path, rng=rng, resolution=resolution, max_rounds=rounds,
                   deadline=deadline)  # fmt: skip
