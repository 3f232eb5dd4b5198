"""The planning entry point: RRT-Connect, then shortcut smoothing, one result.

:func:`plan` is what a cell calls to move between two configurations: it searches with
:func:`~planners.rrt.rrt_connect` and shortens the path with
:func:`~planners.shortcut.shortcut` inside the same time limit. The result is always a
:class:`~planners.plan_result.PlanResult`.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import numpy.typing as npt

from planners.errors import InputError
from planners.plan_result import PlanResult, PlanStatus
from planners.rrt import DEFAULT_RESOLUTION, DEFAULT_STEP, rrt_connect
from planners.shortcut import shortcut as shorten
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
    shortcut_rounds: int = 50,
    shortcut: bool = True,
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
        shortcut_rounds: Largest number of batches of random shortcuts.
        shortcut: Whether to shorten the path.

    Returns:
        A :class:`PlanResult`; on failure ``status`` and ``reason`` say why.

    Raises:
        InputError: malformed start or goals (shape, not finite) or settings.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    t0 = time.perf_counter()
    result = rrt_connect(
        space, start, goals, rng=gen, timeout=timeout, max_iterations=max_iterations,
        resolution=resolution, step=step,
    )  # fmt: skip
    if not (result.status is PlanStatus.SOLVED and shortcut) or result.path.shape[0] <= 2:
        return result
    if shortcut_rounds < 0:
        raise InputError(f"shortcut_rounds: expected >= 0, got {shortcut_rounds}")
    t1 = time.perf_counter()
    path, st = shorten(
        space, result.path, rng=gen, resolution=resolution, max_rounds=shortcut_rounds,
        deadline=t0 + timeout,
    )  # fmt: skip
    stats = dataclasses.replace(
        result.stats,
        checked=result.stats.checked + st.checked,
        valid_calls=result.stats.valid_calls + st.valid_calls,
        smooth_time=time.perf_counter() - t1,
    )
    return PlanResult(PlanStatus.SOLVED, None, path, stats)
