"""Cartesian straight-line moves: on the line, continuous, failures with sample and joint."""

from __future__ import annotations

import numpy as np
import pytest
from spatialmath import SE3

from planners import Arm, InputError, pose_error
from planners.cartesian import (
    CartesianStatus,
    cartesian_along_tool,
    cartesian_line,
    chord_of,
    line_poses,
)
from planners.rrt import DEFAULT_RESOLUTION


def _distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def test_line_poses_are_evenly_spaced_and_end_exactly() -> None:
    A = np.eye(4)
    B = (SE3.Trans(0.1, 0.0, 0.05) * SE3.Rz(0.4)).A
    T = line_poses(A, B, 0.001, 0.01)
    np.testing.assert_array_equal(T[0], A)
    np.testing.assert_array_equal(T[-1], B)
    steps = np.linalg.norm(np.diff(T[:, :3, 3], axis=0), axis=1)
    assert steps.max() <= 0.001 + 1e-12
    assert np.ptp(steps) < 1e-12


def test_straight_line_is_followed(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    T0 = arm.fk(q0)
    goal = SE3.Trans(0.08, -0.05, 0.04) * T0 * SE3.Rz(0.3)
    res = cartesian_line(arm, q0, goal)
    assert res.status is CartesianStatus.SOLVED, res.reason
    assert res.reason is None and res.index == -1 and res.fraction == 1.0
    np.testing.assert_array_equal(res.path[0], q0)
    assert not res.path.flags.writeable
    tcp = arm.fk_batch(res.path)
    off = _distance_to_segment(tcp[:, :3, 3], T0.t, goal.t)
    assert off.max() < 2e-5  # the IK tolerance, 10 um, with margin
    for T, P in zip(tcp, res.poses, strict=True):
        dp, dr = pose_error(T, P)
        assert dp < 2e-5 and dr < 2e-4
    assert arm.limits.within(res.path).all()
    assert np.abs(np.diff(res.path, axis=0)).max() < 0.05  # rad per 1 mm sample


def test_a_short_line_has_a_chord_a_long_one_does_not(arm: Arm) -> None:
    """A 12 mm approach is a straight joint move within 0.1 mm; 20 cm across is not."""
    q0 = arm.configuration("ready")
    short = cartesian_along_tool(arm, q0, 0.012)
    chord = chord_of(arm, short.path, 1e-4)
    assert chord is not None and chord.shape == (2, arm.dof)
    np.testing.assert_array_equal(chord, short.path[[0, -1]])
    u = np.linspace(0, 1, 200)[:, None]
    tcp = arm.fk_batch(chord[0] + u * (chord[1] - chord[0]))
    T0, T1 = tcp[0, :3, 3], tcp[-1, :3, 3]
    assert _distance_to_segment(tcp[:, :3, 3], T0, T1).max() <= 1e-4
    assert chord_of(arm, short.path, 1e-7) is None  # not a joint-space line at 0.1 um
    T = arm.fk(q0)
    long = cartesian_line(arm, q0, SE3.Trans(0.0, 0.2, 0.0) * T)
    assert long.success, long.reason
    assert chord_of(arm, long.path, 1e-4) is None
    assert chord_of(arm, long.path[:1], 1e-4) is None  # one sample: nothing to follow


def test_approach_and_retreat_along_the_tool_axis(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    T0 = arm.fk(q0)
    for d in (0.05, -0.05):
        res = cartesian_along_tool(arm, q0, d)
        assert res.success, res.reason
        T1 = arm.fk(res.path[-1])
        np.testing.assert_allclose(T1.t - T0.t, T0.R[:, 2] * d, atol=2e-5)
        np.testing.assert_allclose(T1.R, T0.R, atol=2e-4)


def test_out_of_reach_fails_at_a_named_sample(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    res = cartesian_line(arm, q0, SE3.Trans(2.0, 0.0, 0.0) * arm.fk(q0))
    assert res.status in (CartesianStatus.IK_FAILED, CartesianStatus.DISCONTINUITY)
    assert res.reason and f"sample {res.index} of" in res.reason
    assert 0 < res.index < 2000 and 0 < res.fraction < 1
    assert res.path.shape[0] == res.index  # the samples solved before the failure


def test_a_joint_jump_is_a_discontinuity_naming_the_joint(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    goal = SE3.Trans(0.0, 0.0, 0.02) * arm.fk(q0)
    res = cartesian_line(arm, q0, goal, max_joint_step_per_mm=1e-4)
    assert res.status is CartesianStatus.DISCONTINUITY
    assert res.index == 1
    assert res.reason and any(name in res.reason for name in arm.joint_names)
    assert "branch jump" in res.reason


class _BelowPlane:
    """Stands in for a CollisionModel: the TCP must stay above a horizontal plane."""

    def __init__(self, arm: Arm, z: float) -> None:
        self.arm, self.z = arm, z

    def valid(self, Q: np.ndarray) -> np.ndarray:
        return self.arm.fk_batch(np.atleast_2d(Q))[:, 2, 3] > self.z


def test_collision_along_the_line_is_reported(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    z0 = arm.fk(q0).t[2]
    checker = _BelowPlane(arm, z0 - 0.03)
    res = cartesian_line(arm, q0, SE3.Trans(0.0, 0.0, -0.05) * arm.fk(q0), checker=checker)
    assert res.status is CartesianStatus.COLLISION
    assert res.reason and "in collision" in res.reason
    assert 25 <= res.index <= 35  # about 30 mm down
    ok = cartesian_line(arm, q0, SE3.Trans(0.0, 0.0, 0.05) * arm.fk(q0), checker=checker)
    assert ok.success


class _Slab:
    """Stands in for a CollisionModel: the TCP must not be inside a thin horizontal slab."""

    def __init__(self, arm: Arm, z: float, half: float) -> None:
        self.arm, self.z, self.half = arm, z, half
        self.checked = 0

    def valid(self, Q: np.ndarray) -> np.ndarray:
        Q = np.atleast_2d(Q)
        self.checked += Q.shape[0]
        return np.abs(self.arm.fk_batch(Q)[:, 2, 3] - self.z) > self.half


def test_a_collision_between_samples_is_found_at_the_edge_resolution(arm: Arm) -> None:
    """A slab 4 mm thick midway between two samples 1 cm apart: no sample is in it, but the
    joints move more than the planner's edge resolution between the samples, and the motion
    between them is checked at that resolution as a planned edge is."""
    q0 = arm.configuration("ready")
    z0 = arm.fk(q0).t[2]
    goal = SE3.Trans(0.0, 0.0, -0.05) * arm.fk(q0)
    free = cartesian_line(arm, q0, goal, step=0.01)
    assert free.success and free.path.shape[0] == 6
    steps = np.linalg.norm(np.diff(free.path, axis=0), axis=1)
    assert steps.min() > DEFAULT_RESOLUTION  # each interval needs checks between samples
    slab = _Slab(arm, z0 - 0.015, 0.002)
    assert slab.valid(free.path).all()  # every sample is clear of the slab
    # Checked at the samples only (a resolution coarser than any interval), it is missed:
    assert cartesian_line(arm, q0, goal, step=0.01, checker=slab, resolution=1.0).success
    slab.checked = 0
    res = cartesian_line(arm, q0, goal, step=0.01, checker=slab)
    assert res.status is CartesianStatus.COLLISION
    assert res.reason == "motion between samples 1 and 2 of 5 is in collision"
    assert res.index == 2 and res.path.shape[0] == 2
    # the start alone, then the start and each interval at the resolution in one call
    assert slab.checked == 2 + sum(int(np.ceil(s / DEFAULT_RESOLUTION)) for s in steps)
    # The reason at a sample keeps its format.
    at = cartesian_line(arm, q0, goal, step=0.01, checker=_Slab(arm, z0 - 0.02, 0.001))
    assert at.reason == "sample 2 of 5 is in collision" and at.index == 2


def test_start_outside_limits_or_in_collision(arm: Arm) -> None:
    q0 = np.array(arm.configuration("ready"))
    bad = q0.copy()
    bad[0] = arm.limits.upper[0] + 0.1
    res = cartesian_line(arm, bad, arm.fk(q0))
    assert res.status is CartesianStatus.INVALID_START
    assert res.reason and arm.joint_names[0] in res.reason
    res = cartesian_line(arm, q0, arm.fk(q0), checker=_BelowPlane(arm, 10.0))
    assert res.status is CartesianStatus.INVALID_START


def test_malformed_input_raises(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    with pytest.raises(InputError):
        cartesian_line(arm, q0[:-1], arm.fk(q0))
    with pytest.raises(InputError):
        cartesian_line(arm, q0, np.eye(3))
    with pytest.raises(InputError):
        cartesian_line(arm, q0, arm.fk(q0), step=0.0)
    with pytest.raises(InputError):
        cartesian_line(arm, q0, arm.fk(q0), resolution=0.0)
    with pytest.raises(InputError):
        cartesian_along_tool(arm, q0, 0.01, axis=(0, 0, 0))
    with pytest.raises(InputError):
        cartesian_along_tool(arm, q0, float("nan"))
