"""Planning the Panda among obstacles; every path re-checked with PyBullet's exact geometry.

The planner plans with the fast sphere model (planners.collision.CollisionModel) at its
edge resolution; each path it returns is swept densely (no joint moving more than 5 mrad
between checks) by sim.exact.ExactChecker against the true link meshes and obstacle
primitives, and must not collide. Planted scenes: a large wall with a narrow window the
wrist and hand must thread through, only 3 cm wider on each side than the arm's collision
cover needs at the goal (solved, after thousands of samples); the same wall with a wide
window (34 x 34 cm) for the tests that are not about the passage; and a wall through the
base that splits the workspace (impossible: fails with a reason in time).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from planners import Arm, load_arm, solve_ik
from planners.cartesian import cartesian_along_tool
from planners.collision import CollisionModel
from planners.plan import plan
from planners.plan_result import PlanStatus
from planners.rrt import DEFAULT_RESOLUTION
from planners.scene import Box, Scene
from planners.shortcut_kernel import edges_free
from planners.shortcut_kernel import shortcut as compiled_shortcut
from planners.space import collision_space
from sim.client import BulletClient
from sim.exact import ExactChecker

DENSE = 0.005  # rad: largest joint step of the exact re-check
PAD = 0.005  # m: padding of the fast model


@pytest.fixture(scope="module")
def panda() -> Arm:
    return load_arm("panda", "franka_hand", finger_opening=0.0325)


def _box(name: str, T_frame: np.ndarray, lo: list[float], hi: list[float]) -> Box:
    """A box spanning [lo, hi] (3,) in the frame ``T_frame``."""
    lo_, hi_ = np.asarray(lo, float), np.asarray(hi, float)
    pose = np.array(T_frame, dtype=float)
    pose[:3, 3] = T_frame[:3, :3] @ ((lo_ + hi_) / 2) + T_frame[:3, 3]
    return Box(name, pose, (hi_ - lo_) / 2)


WALL_T = 0.01  # m: half-thickness of the walls


def _wall_with_window(x: float, y_lo: float, y_hi: float, z_lo: float, z_hi: float) -> Scene:
    """A wall 2 m wide and 1.8 m high at ``x``, a window [y_lo, y_hi] x [z_lo, z_hi] in it."""
    I4, t = np.eye(4), WALL_T
    y0, y1, z0, z1 = -1.0, 1.0, -0.4, 1.4
    return Scene(
        (
            _box("wall_bottom", I4, [x - t, y0, z0], [x + t, y1, z_lo]),
            _box("wall_top", I4, [x - t, y0, z_hi], [x + t, y1, z1]),
            _box("wall_left", I4, [x - t, y0, z_lo], [x + t, y_lo, z_hi]),
            _box("wall_right", I4, [x - t, y_hi, z_lo], [x + t, y1, z_hi]),
        ),
        padding=PAD,
    )


def _window_wall(x: float, y: float, z: float, half: float) -> Scene:
    """A wall at ``x`` with a square window of half-size ``half`` centred at (y, z)."""
    return _wall_with_window(x, y - half, y + half, z - half, z + half)


def _cross_section(panda: Arm, q: np.ndarray, x: float) -> tuple[float, float, float, float]:
    """(y_lo, y_hi, z_lo, z_hi): the smallest window through which the collision spheres of
    ``q`` pass a wall at ``x`` clear of it (its thickness and the padding included) [m]."""
    S = CollisionModel(panda, Scene(())).spheres(q)[0]
    depth = np.maximum(np.abs(S[:, 0] - x) - WALL_T - PAD, 0.0)  # sphere centre to the slab
    cut = depth < S[:, 3]
    S, depth = S[cut], depth[cut]
    r = np.sqrt(S[:, 3] ** 2 - depth**2)[:, None] + PAD  # largest radius within the slab
    lo, hi = S[:, 1:3] - r, S[:, 1:3] + r
    return lo[:, 0].min(), hi[:, 0].max(), lo[:, 1].min(), hi[:, 1].max()


def _narrow_window(panda: Arm, goal: np.ndarray, margin: float, x: float = 0.45) -> Scene:
    """A wall at ``x`` whose window is ``margin`` wider on each side than the cross-section
    of the goal's collision cover in the wall."""
    y_lo, y_hi, z_lo, z_hi = _cross_section(panda, goal, x)
    return _wall_with_window(x, y_lo - margin, y_hi + margin, z_lo - margin, z_hi + margin)


def _goal_through_window(panda: Arm) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # tool z along +x
    T[:3, 3] = [0.75, 0.0, 0.62]
    res = solve_ik(panda, T, [0, 0.2, 0, -1.6, 0, 3.3, 0.785], restarts=0)
    assert res.success, res.reason
    return np.array(res.q)


def _exact_clear(client: BulletClient, panda: Arm, scene: Scene, path: np.ndarray) -> None:
    hit = ExactChecker(client, panda, scene).first_collision(path, DENSE)
    assert hit is None, f"exact geometry finds a collision: {hit}"


NARROW = 0.03  # m: the narrow window's clearance on each side of the goal's cross-section


def test_narrow_window_in_a_wall_is_passed(panda: Arm, client: BulletClient) -> None:
    """The window is 3 cm wider on each side than the goal's collision cover needs where it
    passes the wall (28 x 23 cm for 22 x 17 cm): the 34 x 34 cm window takes a planner a few
    samples, this one over ten thousand (about 0.5 s each for these seeds)."""
    start, goal = np.array(panda.configuration("ready")), _goal_through_window(panda)
    scene = _narrow_window(panda, goal, NARROW)
    model = CollisionModel(panda, scene)
    space = collision_space(model, panda)
    assert space.valid(np.array([start, goal])).all()
    assert not model.check_motion(start, goal, 0.02)  # the straight joint move hits the wall
    # The cross-section is tight: 5 mm into it on any side and the goal no longer fits.
    for side in range(4):
        cut = np.full(4, NARROW)
        cut[side] = -0.005
        y_lo, y_hi, z_lo, z_hi = _cross_section(panda, goal, 0.45)
        tight = _wall_with_window(0.45, y_lo - cut[0], y_hi + cut[1], z_lo - cut[2], z_hi + cut[3])
        assert not CollisionModel(panda, tight).valid(goal[None])[0]
    for seed in range(2):
        t0 = time.perf_counter()
        res = plan(space, start, goal, rng=seed, timeout=5.0)
        assert time.perf_counter() - t0 < 5.0 + 0.2
        assert res.status is PlanStatus.SOLVED, res.reason
        assert res.stats.iterations > 1000  # a random planner needs many samples here
        assert res.path.shape[0] >= 3
        np.testing.assert_array_equal(res.path[0], start)
        np.testing.assert_array_equal(res.path[-1], goal)
        _exact_clear(client, panda, scene, res.path)


def test_same_seed_same_path_on_the_arm(panda: Arm, client: BulletClient) -> None:
    start, goal = np.array(panda.configuration("ready")), _goal_through_window(panda)
    scene = _narrow_window(panda, goal, NARROW)
    space = collision_space(CollisionModel(panda, scene), panda)
    a = plan(space, start, goal, rng=4, timeout=10.0)
    b = plan(space, start, goal, rng=4, timeout=10.0)
    assert a.success and b.success
    assert a.stats.iterations == b.stats.iterations > 1000
    np.testing.assert_array_equal(a.path, b.path)
    _exact_clear(client, panda, scene, a.path)  # b.path is the same array


def test_compiled_and_generic_loops_both_give_checked_paths(panda: Arm) -> None:
    scene = _window_wall(0.45, -0.04, 0.66, 0.17)
    model = CollisionModel(panda, scene)
    compiled = collision_space(model, panda)
    generic = dataclasses.replace(compiled, packed=None)
    assert compiled.packed is not None
    start, goal = np.array(panda.configuration("ready")), _goal_through_window(panda)
    for space in (compiled, generic):
        res = plan(space, start, goal, rng=3, timeout=5.0)
        assert res.success, res.reason
        np.testing.assert_array_equal(res.path[[0, -1]], [start, goal])
        # every edge valid at the resolution, by the generic batched check as well
        for a, b in zip(res.path[:-1], res.path[1:], strict=True):
            assert generic.valid(generic.edge(a, b, DEFAULT_RESOLUTION)).all()
        assert edges_free(model.packed, res.path[:-1], res.path[1:], DEFAULT_RESOLUTION).all()


def test_compiled_shortcut_keeps_the_ends_and_only_valid_edges(panda: Arm) -> None:
    scene = _window_wall(0.45, -0.04, 0.66, 0.17)
    model = CollisionModel(panda, scene)
    space = collision_space(model, panda)
    start, goal = np.array(panda.configuration("ready")), _goal_through_window(panda)
    raw = plan(space, start, goal, rng=5, timeout=5.0, shortcut=False, lazy=1)
    assert raw.success and raw.path.shape[0] > 2
    short, (edges, draws, applied) = compiled_shortcut(
        model.packed, raw.path, rng=np.random.default_rng(0), resolution=DEFAULT_RESOLUTION
    )
    np.testing.assert_array_equal(short[[0, -1]], raw.path[[0, -1]])
    assert edges > 0 and draws >= applied >= 0
    assert np.linalg.norm(np.diff(short, axis=0), axis=1).sum() <= raw.length + 1e-9
    assert edges_free(model.packed, short[:-1], short[1:], DEFAULT_RESOLUTION).all()
    again, _ = compiled_shortcut(
        model.packed, raw.path, rng=np.random.default_rng(0), resolution=DEFAULT_RESOLUTION
    )
    np.testing.assert_array_equal(again, short)


def test_wall_through_the_base_makes_the_other_side_unreachable(panda: Arm) -> None:
    """A wall in the plane y = 0 through the base axis; only the base links may touch it.

    Links 3 onwards hang from the shoulder, on the axis, so they cannot cross the plane:
    a start on one side and a goal on the other are not connected.
    """
    base = frozenset((link, "split") for link in ("panda_link0", "panda_link1", "panda_link2"))
    wall = Box("split", np.eye(4), np.array([2.0, 0.005, 2.0]))
    scene = Scene((wall,), padding=PAD, allowed=base)
    space = collision_space(CollisionModel(panda, scene), panda)
    start = np.array([np.pi / 2, 0.5, 0.0, -1.8, 0.0, 2.1, 0.785])
    goal = start * [-1, 1, 1, 1, 1, 1, 1]
    assert space.valid(np.array([start, goal])).all()
    t0 = time.perf_counter()
    res = plan(space, start, goal, rng=0, timeout=0.5)
    assert time.perf_counter() - t0 < 0.5 + 0.2
    assert res.status is PlanStatus.TIMEOUT
    assert res.reason and "0.5 s" in res.reason
    assert res.path.shape == (0, 7)


def test_goal_inside_an_obstacle_is_reported(panda: Arm) -> None:
    scene = _window_wall(0.45, -0.04, 0.66, 0.17)
    space = collision_space(CollisionModel(panda, scene), panda)
    goal = _goal_through_window(panda)
    goal[3] += 0.6  # the forearm swings into the wall
    res = plan(space, panda.configuration("ready"), goal, rng=0, timeout=0.5)
    assert res.status is PlanStatus.INVALID_GOAL
    assert res.reason and "goal 0 in collision" in res.reason


def test_cartesian_retreat_checked_by_the_model_and_exact(panda: Arm, client: BulletClient) -> None:
    scene = _window_wall(0.45, -0.04, 0.66, 0.17)
    model = CollisionModel(panda, scene)
    goal = _goal_through_window(panda)
    res = cartesian_along_tool(panda, goal, -0.08, checker=model)  # back out of the window
    assert res.success, res.reason
    _exact_clear(client, panda, scene, res.path)
    # Pushing on through the window reaches too far: the line fails with a reason.
    far = cartesian_along_tool(panda, goal, 0.5, checker=model)
    assert not far.success and far.reason


# box[30] and table_pick[22] of shared/benchmarks/mbm/panda_public.json (MotionBenchMaker
# problems as distributed with VAMP), copied so that a clean clone runs this test.
MBM_POCKETS = Path(__file__).parent / "data" / "mbm_pockets.json"


@pytest.mark.parametrize("name", ["box", "table_pick"])
def test_goals_boxed_in_by_limits_and_obstacles_are_reached_quickly(name: str) -> None:
    # With Franka's limits these goals sit in pockets (joints at their limits, obstacles on
    # the other sides): the goal's tree stayed at a few nodes and 1 seed in 3 took over 1 s.
    from bench.mbm import FINGER_OPENING, RESOLUTION, grasp_allowance, load_problems

    panda = load_arm("panda", "franka_hand", finger_opening=FINGER_OPENING)
    problems = load_problems(MBM_POCKETS, panda.dof, robot=panda.name, joints=panda.joint_names)
    (prob,) = problems[name]
    scene = grasp_allowance(panda, Scene.from_dicts(prob.obstacles), prob.goals)
    space = collision_space(CollisionModel(panda, scene), panda)
    for seed in range(4):
        res = plan(space, prob.start, prob.goals, rng=seed, timeout=1.0, resolution=RESOLUTION)
        assert res.success, (seed, res.reason)
        assert res.stats.plan_time < 0.5, (seed, res.stats.plan_time)
