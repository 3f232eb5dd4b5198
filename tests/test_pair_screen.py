"""Pair screen: its rate bound holds, and its few queries find what a query per sample finds."""

from __future__ import annotations

import numpy as np
import pytest

from planners import Arm, load_arm
from planners.trajectory import Trajectory
from sim.pair_screen import PairScreen
from sim.screen import WorldScreen
from sim.world import World, WorldSpec


def _checked_pairs(world: World) -> list[tuple[str, str]]:
    """Every pair of links PyBullet checks for self-collision."""
    links = sorted(world.arm("robot").link_indices)
    excluded = world.adjacent["robot"]
    return [
        (a, b)
        for i, a in enumerate(links)
        for b in links[i + 1 :]
        if (a, b) not in excluded and (b, a) not in excluded
    ]


def _distances(screen: PairScreen) -> np.ndarray:
    return np.array([screen.distance(p) for p in range(len(screen.pairs))])


def test_distance_changes_no_faster_than_the_rates(arm: Arm, rng: np.random.Generator) -> None:
    lo = np.maximum(arm.limits.lower, -np.pi)
    hi = np.minimum(arm.limits.upper, np.pi)
    with World(WorldSpec(arms={"robot": arm})) as world:
        body = world.arm("robot")
        screen = PairScreen(body, _checked_pairs(world), reach=2.0)
        assert len(screen.pairs) > 20
        for _ in range(150):
            q = rng.uniform(lo, hi)
            q2 = q + rng.normal(size=arm.dof) * rng.choice([0.01, 0.1, 0.5])
            body.set_q(q)
            d = _distances(screen)
            body.set_q(q2)
            d2 = _distances(screen)
            bound = screen.rates @ np.abs(q2 - q)
            both = (d < screen.reach) & (d2 < screen.reach)
            assert np.all(np.abs(d2 - d)[both] <= bound[both] + 1e-7)


def test_coaxial_links_do_not_depend_on_the_joint_between() -> None:
    arm = load_arm("ur5e", "parallel_gripper")
    with World(WorldSpec(arms={"robot": arm})) as world:
        screen = WorldScreen(world, "robot").pairs
        rates = dict(zip(screen.pairs, screen.rates, strict=True))
    # The base is a cylinder about the shoulder pan axis: turning it changes nothing.
    assert rates[("base_link", "upper_arm_link")][0] == pytest.approx(0.0, abs=1e-9)
    assert rates[("base_link", "upper_arm_link")][1] > 0.0
    # Only the joints between a pair count.
    assert np.all(rates[("wrist_1_link", "wrist_3_link")][:4] == 0.0)


@pytest.mark.parametrize("duration", [1.0, 3.0])
def test_check_flags_exactly_the_samples_in_contact(duration: float) -> None:
    arm = load_arm("ur5e", "screwdriver")
    q0 = arm.configuration("ready")
    folded = q0.copy()
    folded[2] = -3.0  # the elbow folds the forearm and wrist back onto the upper arm
    folded[3] += 1.0
    Q0 = np.stack([q0, folded])
    zeros = np.zeros_like(Q0)
    trajectory = Trajectory(arm.joint_names, [0.0, duration], Q0, zeros, zeros)
    Q = trajectory.sample(np.linspace(0.0, duration, 600))
    tolerance = 1e-5
    with World(WorldSpec(arms={"robot": arm})) as world:
        body = world.arm("robot")
        screen = PairScreen(body, _checked_pairs(world))
        flagged, queries = screen.check(Q, tolerance)
        closest = []
        for q in Q:
            body.set_q(q)
            closest.append(_distances(screen).min())
    closest_a = np.array(closest)
    assert np.any(closest_a < -0.01), "the planted fold must collide"
    expected = np.flatnonzero(closest_a < screen.slack - tolerance)
    np.testing.assert_array_equal(flagged, expected)
    assert queries < len(Q) * len(screen.pairs) / 4


def test_cached_cells_answer_a_repeated_check_without_queries() -> None:
    arm = load_arm("ur5e", "parallel_gripper")
    q0 = arm.configuration("ready")
    Q0 = np.stack([q0, q0 + np.array([1.0, -0.3, 0.4, 0.5, 0.3, 2.0])])
    zeros = np.zeros_like(Q0)
    Q = Trajectory(arm.joint_names, [0.0, 2.0], Q0, zeros, zeros).sample(np.linspace(0, 2, 800))
    with World(WorldSpec(arms={"robot": arm})) as world:
        screen = WorldScreen(world, "robot")
        exact = [screen.pairs.pairs.index(p) for p in screen.pairs.pairs
                 if tuple(sorted(p)) in screen.unscreened]  # fmt: skip
        first, cold = screen.pairs.check(Q, 1e-5, exact)
        again, warm = screen.pairs.check(Q, 1e-5, exact)
    assert cold > 0 and warm == 0
    np.testing.assert_array_equal(first, again)
