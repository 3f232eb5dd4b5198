"""Validation: the kinematic sweep and the physics replay of one trajectory, one verdict.

Nothing reaches an arm without passing this: :func:`validate` sweeps the trajectory
with exact geometry and checks its limits, then replays it through physics, and
returns a :class:`~sim.verdict.Verdict` whose ``first`` violation is what a user sees.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from planners.trajectory import Trajectory
from sim.replay import ReplaySettings, ToolEvent, replay
from sim.screen import WorldScreen
from sim.sweep import SweepSettings, sweep
from sim.verdict import Verdict
from sim.world import World

__all__ = ["validate"]


def validate(
    world: World,
    arm_name: str,
    trajectory: Trajectory,
    *,
    events: Sequence[ToolEvent] = (),
    allowed_contacts: Iterable[tuple[str, str]] = (),
    part_targets: Mapping[str, NDArray[np.float64]] | None = None,
    sweep_settings: SweepSettings | None = None,
    replay_settings: ReplaySettings | None = None,
    screen: WorldScreen | None = None,
    physics: bool = True,
    fastened: Collection[str] = (),
    placed: Mapping[str, NDArray[np.float64]] | None = None,
) -> Verdict:
    """Sweep, then (when ``physics``) replay; the world is left as it was.

    Args:
        world: The world the trajectory runs in.
        arm_name: The arm that moves.
        trajectory: The motion, joint names in the arm's order.
        events: Grasps and releases.
        allowed_contacts: Pairs of body names that may touch.
        part_targets: Where placed parts must end (checked by the replay).
        sweep_settings: Sweep resolution and thresholds.
        replay_settings: Replay gains and tolerances.
        screen: The world's sphere-model screen: same verdict, far fewer exact queries.
        physics: Run the replay too (the sweep alone is the fast check).
        fastened: Parts the world holds where they are released (a driven screw).
        placed: Bodies the caller moved in the world before (``World.set_body_pose``),
            by name: tells the sweep's screen where they are.

    Returns:
        The combined verdict; its statistics hold both runs'.
    """
    allowed = tuple(allowed_contacts)
    verdict = sweep(
        world,
        arm_name,
        trajectory,
        events=events,
        allowed_contacts=allowed,
        settings=sweep_settings,
        screen=screen,
        placed=placed,
    )
    if physics:
        verdict = verdict.merged(
            replay(
                world,
                arm_name,
                trajectory,
                events=events,
                part_targets=part_targets,
                allowed_contacts=allowed,
                settings=replay_settings,
                fastened=fastened,
            )
        )
    return verdict
