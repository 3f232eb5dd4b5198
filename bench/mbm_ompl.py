"""The OMPL peer of the MotionBenchMaker benchmark: RRTConnect from the ``ompl`` wheel.

A ``SimpleSetup`` over a real vector space with the joint limits; its state validity
callback is our model's ``valid`` on one configuration and its motion validator checks the
same straight-edge configurations as our planner, in one batched ``valid`` call. After
``solve`` the path is simplified with ``simplifySolution`` in the time left; both count in
its time. ``ompl`` is imported on first use (the ``bench`` extra).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planners.space import JointSpace, edge_points

__all__ = ["OmplPeer"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class OmplPeer:
    """OMPL's RRTConnect over the joint box, with our batched checker behind its callbacks.

    Args:
        resolution: Edge-check resolution of its motion validator [rad] (the same as
            our planner's, so both see one checker and one resolution).
    """

    def __init__(self, resolution: float) -> None:
        from ompl import util as ou

        self.resolution = resolution

        ou.setLogLevel(ou.LOG_NONE)

    def solve(
        self, space: JointSpace, start: NDArray[np.float64], goals: NDArray[np.float64],
        timeout: float, seed: int,
    ) -> tuple[bool, NDArray[np.float64], float]:  # fmt: skip
        """Plan and simplify; (solved, path (K, dof), seconds)."""
        from ompl import base as ob
        from ompl import geometric as og
        from ompl import util as ou

        dof = space.dof
        ou.RNG.setSeed(seed)
        sspace = ob.RealVectorStateSpace(dof)
        bounds = ob.RealVectorBounds(dof)
        for j in range(dof):
            bounds.setLow(j, float(space.lower[j]))
            bounds.setHigh(j, float(space.upper[j]))
        sspace.setBounds(bounds)
        ss = og.SimpleSetup(sspace)
        si = ss.getSpaceInformation()
        ss.setStateValidityChecker(
            lambda s: bool(space.valid(np.array([[s[j] for j in range(dof)]]))[0])
        )
        validator = _motion_validator(si, space, dof, self.resolution)
        si.setMotionValidator(validator)
        s0 = sspace.allocState()
        for j in range(dof):
            s0[j] = float(start[j])
        goal = ob.GoalStates(si)
        kept = [s0]
        for g in goals:
            sg = sspace.allocState()
            for j in range(dof):
                sg[j] = float(g[j])
            goal.addState(sg)
            kept.append(sg)
        ss.setStartState(s0)
        ss.setGoal(goal)
        ss.setPlanner(og.RRTConnect(si))
        ss.setup()
        t0 = time.perf_counter()
        status = ss.solve(timeout)
        solved = bool(ss.haveExactSolutionPath())
        if solved:
            left = timeout - (time.perf_counter() - t0)
            if left > 0:
                ss.simplifySolution(left)
        elapsed = time.perf_counter() - t0
        path = np.empty((0, dof))
        if solved:
            p = ss.getSolutionPath()
            path = np.array(
                [[p.getState(i)[j] for j in range(dof)] for i in range(p.getStateCount())]
            )
        logger.debug("ompl: %s in %.3g ms", status.asString(), elapsed * 1e3)
        ss.clear()
        del kept, validator
        return solved, path, elapsed


def _motion_validator(si: Any, space: JointSpace, dof: int, resolution: float) -> Any:
    """An OMPL motion validator checking straight edges at ``resolution`` in one batched call."""
    from ompl import base as ob

    class BatchedMotionValidator(ob.MotionValidator):
        def checkMotion(self, s1: Any, s2: Any) -> bool:  # noqa: N802 (OMPL's name)
            a = np.array([s1[j] for j in range(dof)])
            b = np.array([s2[j] for j in range(dof)])
            return bool(space.valid(edge_points(a, b, resolution)).all())

    return BatchedMotionValidator(si)
