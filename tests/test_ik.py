"""Inverse kinematics: round trips, nearest solutions, failures with reasons."""

from __future__ import annotations

import numpy as np
import pytest
from spatialmath import SE3

from planners import Arm, IKStatus, InputError, pose_error, solve_ik, solve_ik_batch


def test_fk_ik_fk_round_trip(arm: Arm, rng: np.random.Generator) -> None:
    """>= 99.9 % of 1,000 random reachable in-limit poses, from the ready configuration."""
    Q = arm.limits.sample(rng, 1000)
    targets = arm.fk_batch(Q)
    failures = []
    for T in targets:
        res = solve_ik(arm, T, arm.configuration("ready"), rng=rng)
        if res.success:
            assert arm.limits.within(res.q)
            dp, dr = pose_error(arm.fk(res.q).A, T)
            assert dp <= 1e-5 and dr <= 1e-4
        else:
            failures.append(res.reason)
    assert len(failures) <= 1, failures


def test_solution_is_the_reference_when_the_reference_solves(
    arm: Arm, rng: np.random.Generator
) -> None:
    for q in arm.limits.sample(rng, 20):
        res = solve_ik(arm, arm.fk(q), q, rng=rng)
        assert res.success
        np.testing.assert_allclose(res.q, q, atol=1e-4)


def test_solution_stays_near_a_nearby_reference(arm: Arm, rng: np.random.Generator) -> None:
    """A small move from the reference gives a small joint change (no branch or turn jump)."""
    q_ref = arm.configuration("ready")
    T = arm.fk(q_ref) * SE3.Trans(0.01, -0.01, 0.02)
    res = solve_ik(arm, T, q_ref, rng=rng)
    assert res.success
    assert np.max(np.abs(res.q - q_ref)) < 0.2


def test_revolute_joints_take_the_turn_nearest_the_reference(rng: np.random.Generator) -> None:
    from planners import load_arm

    arm = load_arm("ur5e", "screwdriver")
    q_ref = arm.configuration("ready").copy()
    q_ref[0] -= 2 * np.pi - 0.1  # still within the +-2 pi limit
    q_ref[5] -= 2 * np.pi - 0.2
    assert arm.limits.within(q_ref)
    res = solve_ik(arm, arm.fk(q_ref), q_ref, rng=rng)
    assert res.success
    np.testing.assert_allclose(res.q, q_ref, atol=1e-4)


def test_unreachable_pose_fails_with_reason(arm: Arm, rng: np.random.Generator) -> None:
    res = solve_ik(arm, SE3.Trans(3.0, 0.0, 0.5), rng=rng, restarts=5)
    assert res.status is IKStatus.NOT_CONVERGED and not res.success
    assert "out of reach" in (res.reason or "")
    assert res.q.shape == (arm.dof,) and res.position_error > 1.0


def test_bad_input_raises_input_error(arm: Arm) -> None:
    T = np.eye(4)
    T[0, 3] = np.nan
    with pytest.raises(InputError, match="finite"):
        solve_ik(arm, T)
    with pytest.raises(InputError, match="rotation"):
        solve_ik(arm, np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(InputError, match="q_ref"):
        solve_ik(arm, np.eye(4), np.zeros(arm.dof + 1))
    with pytest.raises(InputError, match="tol"):
        solve_ik(arm, np.eye(4), tol_position=0.0)


def test_batch_matches_single(arm: Arm, rng: np.random.Generator) -> None:
    Q = arm.limits.sample(rng, 10)
    results = solve_ik_batch(arm, arm.fk_batch(Q), Q)
    assert all(r.success for r in results)
    np.testing.assert_allclose(np.stack([r.q for r in results]), Q, atol=1e-4)


def test_restarts_are_deterministic_for_a_seed(arm: Arm) -> None:
    T = arm.fk_batch(arm.limits.sample(np.random.default_rng(7), 1))[0]
    far = arm.limits.lower + 0.01
    a = solve_ik(arm, T, far, rng=np.random.default_rng(3))
    b = solve_ik(arm, T, far, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.q, b.q)
