"""RRT-Connect and shortcutting on stand-in spaces whose validity is exact and cheap.

The planners check edges at a resolution; these spaces plan against obstacles grown by a
padding and re-check the returned paths densely against the true obstacles, as the arm
tests do with PyBullet's exact geometry (tests/test_plan_arm.py).
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from planners.errors import InputError
from planners.plan import plan
from planners.plan_result import PlanStatus, path_length
from planners.rrt import rrt_connect
from planners.shortcut import shortcut
from planners.space import JointSpace

PAD = 0.01


def _window_wall(pad: float, window: bool = True) -> JointSpace:
    """A 2-D square with a wall at x = 0 pierced by a window of height 0.1 at y = 0.5."""

    def valid(Q: np.ndarray) -> np.ndarray:
        in_wall = np.abs(Q[:, 0]) < 0.05 + pad
        in_window = np.abs(Q[:, 1] - 0.5) < 0.05 - pad if window else np.zeros(len(Q), bool)
        return ~(in_wall & ~in_window)

    return JointSpace(-np.ones(2), np.ones(2), valid, "window wall")


def _balls(pad: float, dof: int = 7, n: int = 30, seed: int = 4) -> tuple[JointSpace, np.ndarray]:
    centres = np.random.default_rng(seed).uniform(-np.pi, np.pi, (n, dof))

    def valid(Q: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(Q[:, None, :] - centres[None], axis=2)
        return np.all(d > 1.2 + pad, axis=1)

    return JointSpace(-np.pi * np.ones(dof), np.pi * np.ones(dof), valid, "balls"), centres


def _dense_ok(space: JointSpace, path: np.ndarray, step: float = 1e-4) -> bool:
    for a, b in itertools.pairwise(path):
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / step)) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        if not space.valid(a + t * (b - a)).all():
            return False
    return True


START, GOAL = np.array([-0.6, -0.3]), np.array([0.6, -0.3])


@pytest.mark.parametrize("seed", range(5))
def test_narrow_window_is_solved_and_the_path_is_clear(seed: int) -> None:
    space, truth = _window_wall(PAD), _window_wall(0.0)
    res = plan(space, START, GOAL, rng=seed, timeout=2.0, resolution=0.005, step=0.3)
    assert res.status is PlanStatus.SOLVED, res.reason
    assert res.reason is None
    np.testing.assert_array_equal(res.path[0], START)
    np.testing.assert_array_equal(res.path[-1], GOAL)
    assert _dense_ok(truth, res.path)
    assert res.length <= res.stats.raw_length + 1e-9
    assert not res.path.flags.writeable


def test_seven_joints_among_balls_clear_and_shortened() -> None:
    space, _ = _balls(PAD)
    truth, _ = _balls(0.0)
    rng = np.random.default_rng(1)
    solved = 0
    for _ in range(10):
        q = space.sample(rng, 2)
        if not space.valid(q).all():
            continue
        res = plan(space, q[0], q[1], rng=rng, timeout=1.0)
        assert res.status is PlanStatus.SOLVED, res.reason
        assert _dense_ok(truth, res.path, 1e-3)
        assert res.length <= res.stats.raw_length + 1e-9
        solved += 1
    assert solved >= 3


def test_same_seed_same_path() -> None:
    space = _window_wall(PAD)
    a = plan(space, START, GOAL, rng=7, timeout=5.0, resolution=0.005, step=0.3)
    b = plan(
        space, START, GOAL, rng=np.random.default_rng(7), timeout=5.0, resolution=0.005, step=0.3
    )
    assert a.success and b.success
    np.testing.assert_array_equal(a.path, b.path)
    assert a.stats.iterations == b.stats.iterations


def _corner(dof: int = 7) -> JointSpace:
    """A box whose far corner is a pocket: beyond x0 = 0.5 only q1..q6 >= 0.85 is free."""

    def valid(Q: np.ndarray) -> np.ndarray:
        return ~((Q[:, 0] > 0.5) & np.any(Q[:, 1:] < 0.85, axis=1))

    return JointSpace(-np.ones(dof), np.ones(dof), valid, "corner pocket")


@pytest.mark.parametrize("seed", range(5))
def test_a_goal_in_a_pocket_grows_out_of_it(seed: int) -> None:
    # Uniform samples pull the goal's tree into the pocket's walls (20 000 iterations were
    # not enough); local samples around the trapped tree find the way out along x0.
    space = _corner()
    start, goal = -0.9 * np.ones(7), 0.95 * np.ones(7)
    res = rrt_connect(space, start, goal, rng=np.random.default_rng(seed), timeout=10.0,
                      max_iterations=3000, resolution=0.02, step=0.3, lazy=1)  # fmt: skip
    assert res.status is PlanStatus.SOLVED, res.reason
    assert _dense_ok(space, res.path, 1e-3)
    again = rrt_connect(space, start, goal, rng=np.random.default_rng(seed), timeout=10.0,
                        max_iterations=3000, resolution=0.02, step=0.3, lazy=1)  # fmt: skip
    np.testing.assert_array_equal(res.path, again.path)


def test_direct_edge_is_taken_when_free() -> None:
    space = _window_wall(PAD)
    res = plan(space, [-0.6, 0.5], [0.6, 0.5], rng=0)
    assert res.success and res.path.shape == (2, 2) and res.stats.iterations == 0


def test_several_goals_reach_one_and_report_which() -> None:
    space = _window_wall(PAD)
    goals = np.array([[0.0, 0.0], [0.6, 0.8], [0.7, -0.9]])  # the first is inside the wall
    res = plan(space, START, goals, rng=3, timeout=2.0, resolution=0.005, step=0.3)
    assert res.success, res.reason
    assert res.stats.invalid_goals == (0,)
    assert res.stats.goal_index in (1, 2)
    np.testing.assert_array_equal(res.path[-1], goals[res.stats.goal_index])


def test_impossible_problem_fails_with_a_reason_inside_its_time_limit() -> None:
    space = _window_wall(PAD, window=False)  # the wall cuts the square in two
    t0 = time.perf_counter()
    res = plan(space, START, GOAL, rng=0, timeout=0.2, resolution=0.005, step=0.3)
    elapsed = time.perf_counter() - t0
    assert res.status is PlanStatus.TIMEOUT
    assert res.reason and "0.2 s" in res.reason
    assert res.path.shape == (0, 2)
    assert elapsed < 0.2 + 0.1


def test_iteration_limit() -> None:
    space = _window_wall(PAD, window=False)
    res = rrt_connect(space, START, GOAL, rng=np.random.default_rng(0), max_iterations=50)
    assert res.status is PlanStatus.ITERATION_LIMIT and res.stats.iterations == 50
    assert res.reason and "50 iterations" in res.reason


def test_start_in_collision_or_out_of_bounds() -> None:
    space = _window_wall(PAD)
    res = plan(space, [0.0, 0.0], GOAL, rng=0)
    assert res.status is PlanStatus.INVALID_START and res.reason == "start in collision"
    res = plan(space, [-1.5, 0.0], GOAL, rng=0)
    assert res.status is PlanStatus.INVALID_START
    assert res.reason and "joint 0" in res.reason and "outside" in res.reason


def test_every_goal_invalid() -> None:
    space = _window_wall(PAD)
    res = plan(space, START, [[0.0, 0.0], [0.2, 3.0]], rng=0)
    assert res.status is PlanStatus.INVALID_GOAL
    assert res.reason and "goal 0 in collision" in res.reason and "goal 1 joint 1" in res.reason
    assert res.stats.invalid_goals == (0, 1)


@pytest.mark.parametrize(
    ("start", "goals", "status", "reason"),
    [
        ([0.0, 0.0, 0.0], [[0.5, 0.5]], PlanStatus.INVALID_START, "start: expected shape (2,)"),
        ([np.nan, 0.0], [[0.5, 0.5]], PlanStatus.INVALID_START, "start: joint 0 is nan"),
        ([-0.6, np.inf], [[0.5, 0.5]], PlanStatus.INVALID_START, "start: joint 1 is inf"),
        (START, [[0.5, 0.5, 0.5]], PlanStatus.INVALID_GOAL, "goal 0: expected shape (2,)"),
        (START, [[np.inf, 0.5]], PlanStatus.INVALID_GOAL, "goal 0: joint 0 is inf"),
        (START, [0.6, np.nan], PlanStatus.INVALID_GOAL, "goal 0: joint 1 is nan"),
        (START, [[np.nan, 0.5], [0.6]], PlanStatus.INVALID_GOAL, "goal 1: expected shape (2,)"),
        (START, np.empty((0, 2)), PlanStatus.INVALID_GOAL, "goals: expected shape"),
    ],
)
def test_malformed_start_or_goals_are_invalid_with_a_reason(
    start: object, goals: object, status: PlanStatus, reason: str
) -> None:
    for planner in (plan, rrt_connect):
        res = planner(_window_wall(PAD), start, goals, rng=np.random.default_rng(0))  # type: ignore[operator]
        assert res.status is status
        assert res.reason and reason in res.reason, res.reason
        assert res.path.shape == (0, 2)


def test_a_malformed_goal_among_valid_ones_is_skipped() -> None:
    space = _window_wall(PAD)
    res = plan(space, START, [[np.nan, 0.5], GOAL, [0.1]], rng=0, timeout=2.0)
    assert res.status is PlanStatus.SOLVED, res.reason
    assert res.stats.invalid_goals == (0, 2) and res.stats.goal_index == 1
    np.testing.assert_array_equal(res.path[-1], GOAL)
    assert _dense_ok(_window_wall(0.0), res.path)


@pytest.mark.parametrize(("start", "goals"), [("start", [[0.5, 0.5]]), (START, ["goal"])])
def test_input_that_is_not_numbers_raises(start: object, goals: object) -> None:
    with pytest.raises(InputError):
        plan(_window_wall(PAD), start, goals, rng=0)  # type: ignore[arg-type]


def test_bad_settings_raise() -> None:
    space = _window_wall(PAD)
    with pytest.raises(InputError):
        plan(space, START, GOAL, rng=0, resolution=0.0)
    with pytest.raises(InputError):
        plan(space, START, GOAL, rng=0, timeout=-1.0)


def test_shortcut_keeps_ends_shortens_and_stays_clear() -> None:
    space, truth = _window_wall(PAD), _window_wall(0.0)
    zigzag = np.array([START, [-0.5, 0.4], [-0.3, -0.5], [-0.2, 0.5], [0.2, 0.5], [0.4, 0.9], GOAL])
    assert _dense_ok(space, zigzag)
    out, stats = shortcut(space, zigzag, rng=np.random.default_rng(0), resolution=0.005)
    np.testing.assert_array_equal(out[0], START)
    np.testing.assert_array_equal(out[-1], GOAL)
    assert path_length(out) < path_length(zigzag) - 0.5
    assert _dense_ok(truth, out)
    assert stats.valid_calls > 0 and stats.checked > 0


def test_shortcut_rejects_a_malformed_path() -> None:
    with pytest.raises(InputError):
        shortcut(_window_wall(PAD), np.zeros((3, 3)), rng=np.random.default_rng(0), resolution=0.01)
