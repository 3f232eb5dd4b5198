"""Stop-and-go timing: ruckig along each straight line, exactly on the polyline."""

from __future__ import annotations

import itertools

import numpy as np
from ruckig import InputParameter, Result, Ruckig
from ruckig import Trajectory as RuckigTrajectory

from planners import Arm
from planners.limit_check import LimitKind, check_limits
from planners.limits import JointLimits
from planners.timing import TimingMethod, TimingStatus, time_parameterize
from planners.timing_lines import stop_and_go
from planners.timing_path import split_at_corners


def _line_deviation(traj_q: np.ndarray, W: np.ndarray) -> float:
    """Largest distance of samples from the polyline's nearest segment [rad]."""
    best = np.full(len(traj_q), np.inf)
    for a, b in itertools.pairwise(W):
        d = b - a
        lam = np.clip((traj_q - a) @ d / (d @ d), 0, 1)[:, None]
        best = np.minimum(best, np.linalg.norm(traj_q - (a + lam * d), axis=1))
    return float(best.max())


def _paths(arm: Arm, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Random paths within the limits and short ones around ``ready``."""
    lim = arm.limits
    out = [lim.sample(rng, int(rng.integers(3, 7))) for _ in range(n)]
    q0 = arm.configuration("ready")
    for _ in range(n):
        W = q0 + rng.uniform(-0.5, 0.5, size=(int(rng.integers(3, 6)), arm.dof))
        out.append(np.clip(W, lim.lower, lim.upper))
    return out


def test_segments_stay_on_the_joint_space_line(arm: Arm, rng: np.random.Generator) -> None:
    for W in _paths(arm, rng, 5):
        res = time_parameterize(W, arm.limits, method=TimingMethod.STOP_AND_GO)
        assert res.success and res.trajectory is not None, res.reason
        tr = res.trajectory
        q = tr.sample(np.arange(0.0, tr.duration, 1e-3))
        assert _line_deviation(q, W) < 1e-6
        for w in W:  # passes every waypoint, at rest
            k = int(np.argmin(np.linalg.norm(tr.q - w, axis=1)))
            np.testing.assert_allclose(tr.q[k], w, atol=1e-12)
            np.testing.assert_allclose(tr.qd[k], 0.0, atol=1e-12)


def test_limit_check_passes_with_the_jerk_limit_active(arm: Arm, rng: np.random.Generator) -> None:
    for W in _paths(arm, rng, 5):
        res = time_parameterize(W, arm.limits, method=TimingMethod.STOP_AND_GO)
        assert res.trajectory is not None, res.reason
        assert res.stats.method is TimingMethod.STOP_AND_GO
        report = check_limits(res.trajectory, arm.limits, rate_hz=1000.0)
        assert report.ok, report.first
        assert report.peak_ratio[LimitKind.JERK] > 0.9  # the profile uses the jerk limit


def test_quintic_reproduces_ruckigs_profile() -> None:
    names = ("a", "b", "c")
    one = np.ones(3)
    lim = JointLimits(names, -3 * one, 3 * one, np.array([1.0, 2.0, 1.5]),
                      np.array([4.0, 3.0, 5.0]), np.array([40.0, 30.0, 80.0]), one)  # fmt: skip
    a, b = np.array([0.0, 0.5, -1.0]), np.array([1.5, -0.7, 0.2])
    res = stop_and_go([np.stack([a, b])], lim)
    assert res.trajectory is not None, res.reason
    tr = res.trajectory
    # the same profile straight from ruckig, on s (the limits of the line)
    length = float(np.linalg.norm(b - a))
    u = (b - a) / length
    otg, inp, ref = Ruckig(1), InputParameter(1), RuckigTrajectory(1)
    inp.current_position, inp.target_position = [0.0], [length]
    inp.max_velocity = [float(np.min(lim.velocity / np.abs(u)))]
    inp.max_acceleration = [float(np.min(lim.acceleration / np.abs(u)))]
    inp.max_jerk = [float(np.min(lim.jerk / np.abs(u)))]
    assert otg.calculate(inp, ref) in (Result.Working, Result.Finished)
    assert abs(tr.duration - ref.duration) < 1e-12
    times = np.linspace(0.0, ref.duration, 2001)
    s, sd, sdd = (np.array([ref.at_time(t)[i][0] for t in times]) for i in range(3))
    np.testing.assert_allclose(tr.sample(times, 0), a + s[:, None] * u, atol=1e-9)
    np.testing.assert_allclose(tr.sample(times, 1), sd[:, None] * u, atol=1e-9)
    np.testing.assert_allclose(tr.sample(times, 2), sdd[:, None] * u, atol=1e-7)


def test_collinear_waypoints_are_one_line() -> None:
    lim = JointLimits(("x", "y"), -3 * np.ones(2), 3 * np.ones(2), np.ones(2), 4 * np.ones(2),
                      40 * np.ones(2), np.ones(2))  # fmt: skip
    W = np.array([[0.0, 0.0], [0.5, 0.25], [1.0, 0.5], [1.0, 1.0]])
    lines = split_at_corners(W)
    assert len(lines) == 2
    tr = stop_and_go(lines, lim).trajectory
    assert tr is not None
    k = int(np.argmin(np.linalg.norm(tr.q - W[1], axis=1)))
    assert np.linalg.norm(tr.qd[k]) > 0.1  # does not stop at the collinear waypoint


def test_boundary_velocity_on_a_line_and_the_tcp_cap(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    d = np.zeros(arm.dof)
    d[0], d[1] = 0.4, -0.2
    W = np.stack([q0, q0 + d, q0 + d + 0.1])
    v = 0.3 * d / np.linalg.norm(d)
    res = time_parameterize(W, arm.limits, start_velocity=v, method=TimingMethod.STOP_AND_GO)
    assert res.trajectory is not None, res.reason
    np.testing.assert_allclose(res.trajectory.qd[0], v, atol=1e-9)
    assert check_limits(res.trajectory, arm.limits).ok
    capped = time_parameterize(W, arm.limits, arm=arm, tcp_speed=0.05,
                               method=TimingMethod.STOP_AND_GO)  # fmt: skip
    assert capped.trajectory is not None, capped.reason
    report = check_limits(capped.trajectory, arm.limits, arm=arm, tcp_speed=0.05)
    assert report.ok, report.first
    assert report.peak_ratio[LimitKind.TCP_SPEED] > 0.8


def test_a_boundary_speed_that_would_leave_the_line_is_infeasible() -> None:
    lim = JointLimits(("x",), -np.ones(1) * 3, np.ones(1) * 3, np.ones(1), np.ones(1),
                      10 * np.ones(1), np.ones(1))  # fmt: skip
    # 0.9 rad/s cannot stop within 0.05 rad at 1 rad/s^2: ruckig would overshoot and return
    res = time_parameterize([[0.0], [0.05]], lim, start_velocity=[0.9],
                            method=TimingMethod.STOP_AND_GO)  # fmt: skip
    assert res.status is TimingStatus.INFEASIBLE
    assert res.reason is not None and "line" in res.reason


def test_holds_back_almost_nothing_from_ruckigs_optimum(arm: Arm, rng: np.random.Generator) -> None:
    lim = arm.limits
    for W in _paths(arm, rng, 3):
        res = time_parameterize(W, lim, method=TimingMethod.STOP_AND_GO)
        assert res.trajectory is not None, res.reason
        optimum = 0.0
        for run in split_at_corners(W):
            exact = stop_and_go([run], lim).trajectory  # full limits, no guard
            assert exact is not None
            optimum += exact.duration
        assert optimum <= res.trajectory.duration <= optimum * (1 + 1e-6)
