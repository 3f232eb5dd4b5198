"""Limit check: planted faults are found with kind, joint, time, value and limit."""

from __future__ import annotations

import numpy as np
import pytest

from planners import Arm
from planners.errors import InputError
from planners.limit_check import LimitKind, check_limits, peak_ratios
from planners.limits import JointLimits
from planners.trajectory import Trajectory

LIMITS = JointLimits(
    ("j1", "j2"), np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([1.0, 2.0]),
    np.array([10.0, 10.0]), np.array([100.0, 100.0]), np.array([1.0, 1.0]),
)  # fmt: skip


def _constant_velocity(v: tuple[float, float], duration: float = 1.0) -> Trajectory:
    t = np.linspace(0.0, duration, 11)
    vel = np.asarray(v)
    q = t[:, None] * vel
    return Trajectory(LIMITS.names, t, q, np.broadcast_to(vel, q.shape), np.zeros_like(q))


def test_clean_trajectory_passes() -> None:
    report = check_limits(_constant_velocity((0.5, 0.5)), LIMITS)
    assert report.ok and report.first is None
    assert report.peak_ratio[LimitKind.VELOCITY] == pytest.approx(0.5)
    assert report.samples >= 1001


def test_velocity_fault_names_kind_joint_and_time() -> None:
    # j2 ramps its speed 0 -> 3 rad/s (limit 2) with constant acceleration 3 rad/s^2.
    t = np.linspace(0.0, 1.0, 5)
    q = np.stack([np.zeros_like(t), 1.5 * t**2 - 0.9], axis=1)
    qd = np.stack([np.zeros_like(t), 3.0 * t], axis=1)
    qdd = np.stack([np.zeros_like(t), np.full_like(t, 3.0)], axis=1)
    report = check_limits(Trajectory(LIMITS.names, t, q, qd, qdd), LIMITS)
    assert not report.ok
    first = report.first
    assert first is not None
    assert first.kind is LimitKind.VELOCITY and first.joint == "j2"
    assert first.time == pytest.approx(2.0 / 3.0, abs=1.5e-3)  # 3 t = 2
    assert first.limit == 2.0 and first.value > 2.0
    assert first.value == pytest.approx(2.0, abs=5e-3)


def test_position_fault_is_found() -> None:
    report = check_limits(_constant_velocity((0.0, 0.9), duration=2.0), LIMITS)  # j2 reaches 1.8
    kinds = {(v.kind, v.joint) for v in report.violations}
    assert kinds == {(LimitKind.POSITION, "j2")}
    v = report.violations[0]
    assert v.time == pytest.approx(1.0 / 0.9, abs=1.5e-3) and v.limit == 1.0


def test_jerk_and_acceleration_faults_are_found() -> None:
    t = np.array([0.0, 0.1])
    q = np.zeros((2, 2))
    qdd = np.array([[0.0, 0.0], [0.0, 20.0]])  # 200 rad/s^3 average, 20 rad/s^2 at the end
    report = check_limits(Trajectory(LIMITS.names, t, q, np.zeros((2, 2)), qdd), LIMITS)
    kinds = {v.kind for v in report.violations}
    assert LimitKind.JERK in kinds and LimitKind.ACCELERATION in kinds
    assert all(v.joint == "j2" for v in report.violations)
    times = [v.time for v in report.violations]
    assert times == sorted(times)
    peaks = peak_ratios(Trajectory(LIMITS.names, t, q, np.zeros((2, 2)), qdd), LIMITS)
    assert peaks[LimitKind.JERK] > 1 and peaks[LimitKind.ACCELERATION] == pytest.approx(2.0)


def test_tcp_speed_violation_names_the_tcp_link(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    qd = np.zeros(arm.dof)
    qd[0] = 0.5  # base joint turning at 0.5 rad/s: the TCP moves at r * 0.5 m/s
    t = np.linspace(0.0, 0.2, 3)
    q = q0 + t[:, None] * qd
    tr = Trajectory(arm.joint_names, t, q, np.broadcast_to(qd, q.shape), np.zeros_like(q))
    report = check_limits(tr, arm.limits, arm=arm, tcp_speed=0.01)
    assert report.first is not None
    assert report.first.kind is LimitKind.TCP_SPEED and report.first.joint == arm.tcp_link
    p = arm.fk(q0).t
    radius = float(np.hypot(p[0], p[1]))
    assert report.first.value == pytest.approx(0.5 * radius, rel=1e-6)
    assert check_limits(tr, arm.limits, arm=arm, tcp_speed=1.0).ok


def test_misuse_raises() -> None:
    tr = _constant_velocity((0.1, 0.1))
    with pytest.raises(InputError, match="rate_hz"):
        check_limits(tr, LIMITS, rate_hz=500.0)
    with pytest.raises(InputError, match="arm"):
        check_limits(tr, LIMITS, tcp_speed=0.1)
    other = JointLimits(("x", "y"), LIMITS.lower, LIMITS.upper, LIMITS.velocity,
                        LIMITS.acceleration, LIMITS.jerk, LIMITS.effort)  # fmt: skip
    with pytest.raises(InputError, match=r"limits\.names"):
        check_limits(tr, other)


def test_clean_trajectory_counts_every_covered_sample() -> None:
    tr = Trajectory(
        LIMITS.names, [0.0, 0.3337, 1.0, 1.25], np.zeros((4, 2)), np.zeros((4, 2)),
        np.zeros((4, 2)),
    )  # fmt: skip
    report = check_limits(tr, LIMITS, rate_hz=1000.0)
    grid = np.arange(int(np.floor(tr.duration * 1000.0)) + 1) / 1000.0
    assert report.ok
    assert report.samples == np.unique(np.concatenate((grid, tr.t))).size


def test_peak_ratio_is_the_exact_peak_between_samples() -> None:
    # Rest to rest over 0.5 rad in 0.5 s: the velocity peaks at 1.875 rad/s mid-interval.
    q = np.array([[0.0, 0.0], [0.5, 0.0]])
    tr = Trajectory(LIMITS.names, [0.0, 0.5], q, np.zeros((2, 2)), np.zeros((2, 2)))
    report = check_limits(tr, LIMITS)
    assert report.peak_ratio[LimitKind.VELOCITY] == pytest.approx(1.875)
    velocity = [v for v in report.violations if v.kind is LimitKind.VELOCITY]
    assert [v.joint for v in velocity] == ["j1"]
    assert velocity[0].time == pytest.approx(0.1202, abs=1.5e-3)  # 30 x^2 (1-x)^2 = 1
