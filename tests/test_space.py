"""The configuration-space interface: bounds, metric, edges, validity, the collision adapter."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from planners.errors import InputError
from planners.space import ConfigurationSpace, JointSpace, collision_space, edge_points


def _free(Q: np.ndarray) -> np.ndarray:
    return np.ones(len(Q), dtype=bool)


def test_joint_space_is_a_configuration_space() -> None:
    space = JointSpace(np.zeros(3), np.ones(3), _free)
    assert isinstance(space, ConfigurationSpace)
    assert space.dof == 3
    assert not space.lower.flags.writeable and not space.upper.flags.writeable


@pytest.mark.parametrize(
    ("lower", "upper"),
    [([0.0, 1.0], [1.0, 0.5]), ([0.0], [1.0, 2.0]), ([np.nan], [1.0]), ([], [])],
)
def test_bad_bounds_raise(lower: list[float], upper: list[float]) -> None:
    with pytest.raises(InputError):
        JointSpace(np.array(lower), np.array(upper), _free)


def test_samples_lie_within_bounds_and_follow_the_seed() -> None:
    space = JointSpace(np.array([-1.0, 0.0]), np.array([1.0, 5.0]), _free)
    a = space.sample(np.random.default_rng(3), 500)
    b = space.sample(np.random.default_rng(3), 500)
    assert a.shape == (500, 2)
    np.testing.assert_array_equal(a, b)
    assert space.within(a).all()


def test_distance_and_interpolate() -> None:
    space = JointSpace(-np.ones(2), np.ones(2), _free)
    assert space.distance([0, 0], [0.3, 0.4]) == pytest.approx(0.5)
    np.testing.assert_allclose(space.distance(np.zeros((4, 2)), np.ones(2)), np.sqrt(2))
    mid = space.interpolate([0, 0], [1, -1], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(mid, np.array([[0.0, 0.0], [0.5, -0.5], [1.0, -1.0]]))


def test_edge_points_respect_the_resolution_and_end_exactly() -> None:
    a, b = np.array([0.0, 0.0, 0.0]), np.array([0.3, -0.2, 0.1])
    P = edge_points(a, b, 0.01)
    steps = np.linalg.norm(np.diff(np.vstack((a, P)), axis=0), axis=1)
    assert steps.max() <= 0.01 + 1e-12
    np.testing.assert_allclose(P[-1], b)
    assert edge_points(a, a, 0.01).shape == (1, 3)  # a degenerate edge still checks its end


def test_valid_rejects_out_of_bounds_without_asking_the_checker() -> None:
    seen: list[np.ndarray] = []

    def spy(Q: np.ndarray) -> np.ndarray:
        seen.append(Q.copy())
        return Q[:, 0] < 0.5

    space = JointSpace(np.zeros(2), np.ones(2), spy)
    ok = space.valid([[0.2, 0.2], [0.7, 0.2], [1.5, 0.2], [0.1, -0.1]])
    np.testing.assert_array_equal(ok, [True, False, False, False])
    assert len(seen) == 1 and np.all((seen[0] >= 0) & (seen[0] <= 1))


class _Limits:
    lower = np.array([-1.0, -2.0])
    upper = np.array([1.0, 2.0])


class _Arm:
    name = "toy"
    limits = _Limits()


class _Model:
    """Stands in for planners.collision.CollisionModel: an arm and a batched valid()."""

    arm = _Arm()

    def valid(self, Q: np.ndarray) -> np.ndarray:
        return np.linalg.norm(Q, axis=1) > 0.5


def test_collision_space_adapts_a_batched_model() -> None:
    space = collision_space(_Model())
    np.testing.assert_array_equal(space.lower, _Limits.lower)
    np.testing.assert_array_equal(
        space.valid([[0.0, 0.0], [0.9, 0.0], [0.0, 3.0]]), [False, True, False]
    )
    assert "toy" in space.name


def test_collision_space_needs_an_arm() -> None:
    class Bare:
        def valid(self, Q: np.ndarray) -> np.ndarray:
            return np.ones(len(Q), bool)

    with pytest.raises(InputError):
        collision_space(Bare())


def test_collision_space_carries_the_packed_model_only_with_the_same_limits() -> None:
    from planners import load_arm
    from planners.collision import CollisionModel

    arm = load_arm("panda", "franka_hand")
    model = CollisionModel(arm)
    assert collision_space(model).packed is model.packed
    lim = arm.limits
    half = dataclasses.replace(lim, lower=lim.lower / 2, upper=lim.upper / 2)
    assert collision_space(model, SimpleNamespace(limits=half)).packed is None
    assert collision_space(_Model()).packed is None
