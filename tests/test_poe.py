"""Product of exponentials: the arm's own kinematics, for the TCP and for sphere centres."""

from __future__ import annotations

import numpy as np

from planners import Arm
from planners.collision import CollisionModel
from planners.poe import carry, joint_products, screws_of


def test_screws_reproduce_the_tcp(arm: Arm, rng: np.random.Generator) -> None:
    screws = screws_of(arm)
    Q = rng.uniform(np.maximum(arm.limits.lower, -np.pi), np.minimum(arm.limits.upper, np.pi),
                    size=(200, arm.dof))  # fmt: skip
    P = joint_products(screws.revolute, screws.axis, screws.point, Q)
    assert P.shape == (200, arm.dof, 3, 4)
    np.testing.assert_allclose(P[:, -1] @ screws.T0_tcp, arm.fk_batch(Q)[:, :3], atol=1e-12)


def test_carried_points_follow_the_sphere_model(arm: Arm, rng: np.random.Generator) -> None:
    model = CollisionModel(arm)
    screws = screws_of(arm)
    X0 = model.spheres(np.zeros((1, arm.dof)))[0, :, :3]
    # the last joint that moves each sphere carries it
    moved = [
        np.linalg.norm(model.spheres(np.eye(arm.dof)[j] * 0.7)[0, :, :3] - X0, axis=1) > 1e-12
        for j in range(arm.dof)
    ]
    joint = np.array([max((j for j in range(arm.dof) if moved[j][s]), default=-1)
                      for s in range(len(X0))], np.int64)  # fmt: skip
    Q = rng.uniform(-2.0, 2.0, size=(50, arm.dof))
    P = joint_products(screws.revolute, screws.axis, screws.point, Q)
    np.testing.assert_allclose(
        carry(P, joint, np.ascontiguousarray(X0)), model.spheres(Q)[:, :, :3], atol=1e-12
    )
