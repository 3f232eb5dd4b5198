"""The outcome of a motion-planning query: a status, a reason, a path and statistics.

Every planner in :mod:`planners` returns a :class:`PlanResult`, never ``None``: an
unreachable goal or a timeout is an expected outcome with a status and a sentence that says
why, and so is a start or goal of the wrong length or with a value that is not finite
(INVALID_START, INVALID_GOAL); misuse (input that is not numbers, bad settings) raises
:class:`~planners.errors.InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from planners.arrays import frozen

__all__ = ["PlanResult", "PlanStats", "PlanStatus", "path_length"]


class PlanStatus(Enum):
    """Outcome of a planning query."""

    SOLVED = "solved"
    """A collision-free path from the start to one of the goals."""
    TIMEOUT = "timeout"
    """The time limit passed before a path was found."""
    ITERATION_LIMIT = "iteration_limit"
    """The iteration limit was reached before a path was found."""
    INVALID_START = "invalid_start"
    """The start is out of the limits, in collision, of the wrong length or not finite."""
    INVALID_GOAL = "invalid_goal"
    """Every goal is out of the limits, in collision, of the wrong length or not finite."""


@dataclass(frozen=True)
class PlanStats:
    """What a query cost.

    Attributes:
        iterations: Planner iterations (samples drawn).
        nodes: Configurations in the trees when the search ended.
        checked: Configurations passed to the validity test.
        valid_calls: Calls of the batched validity test.
        plan_time: Search time [s].
        smooth_time: Shortcutting time [s].
        raw_length: Length of the path before shortcutting [rad].
        goal_index: Index (in the goals given) of the goal reached, or -1.
        invalid_goals: Indices of the goals that were out of limits or in collision.
    """

    iterations: int = 0
    nodes: int = 0
    checked: int = 0
    valid_calls: int = 0
    plan_time: float = 0.0
    smooth_time: float = 0.0
    raw_length: float = 0.0
    goal_index: int = -1
    invalid_goals: tuple[int, ...] = ()

    @property
    def total_time(self) -> float:
        """Search plus shortcutting [s]."""
        return self.plan_time + self.smooth_time


@dataclass(frozen=True)
class PlanResult:
    """Result of a planning query.

    Attributes:
        status: :class:`PlanStatus`; SOLVED when ``path`` holds a solution.
        reason: ``None`` when solved; otherwise a sentence naming what failed.
        path: (K, dof) waypoints [rad] from the start to a goal, joined by straight
            joint-space segments that were checked at the planner's resolution; (0, dof)
            when not solved. Read-only.
        stats: :class:`PlanStats`.
    """

    status: PlanStatus
    reason: str | None
    path: NDArray[np.float64]
    stats: PlanStats = field(default_factory=PlanStats)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", frozen(np.atleast_2d(self.path)))

    @property
    def success(self) -> bool:
        """True when a path was found."""
        return self.status is PlanStatus.SOLVED

    @property
    def length(self) -> float:
        """Euclidean joint-space length of the path [rad] (0 when not solved)."""
        return path_length(self.path)


def path_length(path: NDArray[np.float64]) -> float:
    """Sum of the Euclidean lengths of a (K, dof) path's segments [rad]."""
    P = np.asarray(path, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(P, axis=0), axis=1).sum())
