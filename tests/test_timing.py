"""Time parameterization: limits never exceeded, on the path, degenerate and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planners import Arm
from planners.errors import InputError
from planners.limit_check import check_limits
from planners.limits import JointLimits
from planners.timing import TimingMethod, TimingStatus, time_parameterize
from planners.timing_path import BlendedPath
from planners.trajectory import Trajectory


def _limits(dof: int, vel: float = 2.0, acc: float = 10.0, jerk: float = 200.0) -> JointLimits:
    names = tuple(f"j{i}" for i in range(dof))
    one = np.ones(dof)
    return JointLimits(names, -3 * one, 3 * one, vel * one, acc * one, jerk * one, one)


def _distance_to_polyline(points: np.ndarray, W: np.ndarray) -> np.ndarray:
    best = np.full(len(points), np.inf)
    for a, b in itertools.pairwise(W):
        d = b - a
        lam = np.clip((points - a) @ d / max(d @ d, 1e-300), 0, 1)[:, None]
        best = np.minimum(best, np.linalg.norm(points - (a + lam * d), axis=1))
    return best


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, JointLimits, float]:
    dof = draw(st.integers(1, 4))
    m = draw(st.integers(1, 6))
    floats = st.floats(-2.5, 2.5, allow_nan=False)
    W = np.array(
        draw(st.lists(st.lists(floats, min_size=dof, max_size=dof), min_size=m, max_size=m))
    )
    if draw(st.booleans()) and m > 1:  # a repeated waypoint
        W[-1] = W[-2]
    names = tuple(f"j{i}" for i in range(dof))
    pos = st.floats(0.05, 1.0)
    vel = np.array([draw(st.floats(0.2, 3.0)) for _ in range(dof)])
    acc = np.array([draw(st.floats(0.5, 20.0)) for _ in range(dof)])
    jerk = acc * np.array([draw(st.floats(2.0, 500.0)) for _ in range(dof)])
    limits = JointLimits(names, -3 * np.ones(dof), 3 * np.ones(dof), vel, acc, jerk, np.ones(dof))
    return W, limits, draw(pos)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_random_paths_never_exceed_limits_and_stay_on_the_path(
    problem: tuple[np.ndarray, JointLimits, float],
) -> None:
    W, limits, tol = problem
    res = time_parameterize(W, limits, blend_tolerance=tol)
    assert res.status is TimingStatus.SUCCESS, res.reason
    traj = res.trajectory
    assert traj is not None
    report = check_limits(traj, limits, rate_hz=1000.0, rtol=1e-6)
    assert report.ok, report.first
    np.testing.assert_allclose(traj.q[0], W[0], atol=1e-9)
    np.testing.assert_allclose(traj.q[-1], W[-1], atol=1e-9)
    np.testing.assert_allclose(traj.qd[[0, -1]], 0.0, atol=1e-9)
    if traj.t.size > 1:
        times = np.linspace(0.0, traj.duration, 400)
        dist = _distance_to_polyline(traj.sample(times), W)
        assert dist.max() <= tol * (1 + 1e-6) + 1e-9


def test_single_and_repeated_waypoints_give_a_still_trajectory() -> None:
    lim = _limits(3)
    for W in ([[0.1, 0.2, 0.3]], [[0.1, 0.2, 0.3]] * 4):
        res = time_parameterize(W, lim)
        assert res.success and res.trajectory is not None
        assert res.trajectory.duration == 0.0
        np.testing.assert_array_equal(res.trajectory.q[0], [0.1, 0.2, 0.3])
    res = time_parameterize([[0.0] * 3] * 2, lim, start_velocity=[0.1, 0.0, 0.0])
    assert res.status is TimingStatus.INFEASIBLE and res.reason


def test_straight_segment_is_close_to_the_s_curve_optimum() -> None:
    # One joint, 2 rad, v 1, a 4, j 40: the jerk-limited optimum is d/v + v/a + a/j = 2.35 s.
    lim = _limits(1, vel=1.0, acc=4.0, jerk=40.0)
    res = time_parameterize([[0.0], [2.0]], lim)
    assert res.trajectory is not None
    assert 2.35 * 0.999 <= res.trajectory.duration <= 2.35 * 1.03


def test_zero_tolerance_stops_at_the_corner() -> None:
    lim = _limits(2)
    W = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    res = time_parameterize(W, lim, blend_tolerance=0.0)
    assert res.trajectory is not None
    tr = res.trajectory
    k = int(np.argmin(np.linalg.norm(tr.q - W[1], axis=1)))
    assert np.linalg.norm(tr.q[k] - W[1]) < 1e-9
    np.testing.assert_allclose(tr.qd[k], 0.0, atol=1e-9)
    assert np.max(_distance_to_polyline(tr.sample(np.linspace(0, tr.duration, 500)), W)) < 1e-9
    blended = time_parameterize(W, lim, blend_tolerance=0.05).trajectory
    assert blended is not None and blended.duration < tr.duration


def test_boundary_velocity_blends_two_segments() -> None:
    lim = _limits(2)
    W1 = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, 0.5]])
    W2 = np.array([[2.0, 0.5], [2.5, 0.5], [2.5, 1.5]])
    v = np.array([0.8, 0.0])  # along the last segment of W1 and the first of W2
    a = time_parameterize(W1, lim, end_velocity=v)
    b = time_parameterize(W2, lim, start_velocity=v)
    assert a.trajectory is not None and b.trajectory is not None, (a.reason, b.reason)
    np.testing.assert_allclose(a.trajectory.qd[-1], v, atol=1e-9)
    np.testing.assert_allclose(b.trajectory.qd[0], v, atol=1e-9)
    joined = Trajectory.concatenate([a.trajectory, b.trajectory], atol=1e-9)
    assert check_limits(joined, lim).ok
    too_fast = time_parameterize(W1, lim, end_velocity=[5.0, 0.0])
    assert too_fast.status is TimingStatus.INFEASIBLE and "end_velocity" in (too_fast.reason or "")


def test_tcp_speed_cap_is_respected(arm: Arm) -> None:
    q0 = arm.configuration("ready")
    W = np.stack([q0, q0 + 0.2, q0 + np.array([0.3, 0.1, -0.1, 0.2, 0.0, 0.1, 0.0][: arm.dof])])
    res = time_parameterize(W, arm.limits, arm=arm, tcp_speed=0.02)
    assert res.trajectory is not None, res.reason
    report = check_limits(res.trajectory, arm.limits, arm=arm, tcp_speed=0.02)
    assert report.ok, report.first
    assert report.peak_ratio[next(k for k in report.peak_ratio if k.value == "tcp_speed")] > 0.9
    free = time_parameterize(W, arm.limits).trajectory
    assert free is not None and free.duration < res.trajectory.duration


@pytest.mark.parametrize(
    ("path", "kwargs", "field"),
    [
        ([[0.0, np.nan], [1.0, 1.0]], {}, "path"),
        ([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], {}, "path"),
        ([[0.0, 0.0], [5.0, 0.0]], {}, r"path\[1\]"),
        ([[0.0, 0.0], [1.0, 0.0]], {"start_velocity": [0.0, 1.0]}, "start_velocity"),
        ([[0.0, 0.0], [1.0, 0.0]], {"end_velocity": [1.0]}, "end_velocity"),
        ([[0.0, 0.0], [1.0, 0.0]], {"tcp_speed": 0.1}, "arm"),
        ([[0.0, 0.0], [1.0, 0.0]], {"blend_tolerance": -1.0}, "blend_tolerance"),
    ],
)
def test_bad_input_raises_naming_the_field(path: list, kwargs: dict, field: str) -> None:
    with pytest.raises(InputError, match=field):
        time_parameterize(path, _limits(2), **kwargs)


@pytest.mark.parametrize("name", ["velocity", "acceleration", "jerk"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_zero_or_negative_limits_raise_naming_the_field(name: str, value: float) -> None:
    lim = _limits(2)
    fields = {
        n: getattr(lim, n) for n in ("lower", "upper", "velocity", "acceleration", "jerk", "effort")
    }
    fields[name] = np.array([1.0, value])
    with pytest.raises(InputError, match=f"limits.{name}"):
        JointLimits(lim.names, **fields)


def test_blended_path_is_c2_and_within_tolerance() -> None:
    W = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.5], [0.0, 1.0, 1.0]])
    bp = BlendedPath.from_waypoints(W, 0.05)
    assert bp.is_blend.sum() == 2
    s = bp.breakpoints[1:-1]
    for order in (0, 1, 2):
        np.testing.assert_allclose(bp(s - 1e-9, order), bp(s + 1e-9, order), atol=1e-6)
    dist = _distance_to_polyline(bp(np.linspace(0, bp.length, 2000)), W)
    assert 0.04 < dist.max() <= 0.05 + 1e-9


def _hybrid_paths(arm: Arm, rng: np.random.Generator) -> list[np.ndarray]:
    lim = arm.limits
    paths = [lim.sample(rng, int(rng.integers(3, 7))) for _ in range(6)]
    q0 = arm.configuration("ready")
    for _ in range(6):
        W = q0 + rng.uniform(-0.5, 0.5, size=(int(rng.integers(3, 6)), arm.dof))
        paths.append(np.clip(W, lim.lower, lim.upper))
    # dense small-angle samples of a curve (like a Cartesian line's IK samples)
    x = np.linspace(0.0, 1.0, 15)[:, None]
    paths.append(np.clip(q0 + 0.6 * np.sin(2.0 * x + np.arange(arm.dof)), lim.lower, lim.upper))
    return paths


def test_hybrid_is_never_longer_than_either_candidate(arm: Arm, rng: np.random.Generator) -> None:
    for W in _hybrid_paths(arm, rng):
        auto = time_parameterize(W, arm.limits)
        blended = time_parameterize(W, arm.limits, method=TimingMethod.BLENDED)
        lines = time_parameterize(W, arm.limits, method=TimingMethod.STOP_AND_GO)
        assert auto.trajectory is not None, auto.reason
        assert blended.trajectory is not None and lines.trajectory is not None
        assert blended.stats.method is TimingMethod.BLENDED
        assert lines.stats.method is TimingMethod.STOP_AND_GO
        shortest = min(blended.trajectory.duration, lines.trajectory.duration)
        assert auto.trajectory.duration <= shortest * (1 + 1e-9)
        by_method = {TimingMethod.BLENDED: blended, TimingMethod.STOP_AND_GO: lines}
        if auto.stats.method is TimingMethod.CURVE:  # dense samples only
            by_method[TimingMethod.CURVE] = time_parameterize(
                W, arm.limits, method=TimingMethod.CURVE
            )
        else:
            assert auto.stats.candidates[0][0] is TimingMethod.STOP_AND_GO
        assert auto.stats.method is not None
        winner = by_method[auto.stats.method]
        assert winner.trajectory is not None
        assert auto.trajectory.duration == pytest.approx(winner.trajectory.duration, rel=1e-12)
        assert check_limits(auto.trajectory, arm.limits).ok


def test_dense_curve_samples_pick_the_curve(arm: Arm, rng: np.random.Generator) -> None:
    W = _hybrid_paths(arm, rng)[-1]
    res = time_parameterize(W, arm.limits)
    assert res.stats.method is TimingMethod.CURVE
    assert res.stats.candidates[0][0] is TimingMethod.CURVE
    blended = time_parameterize(W, arm.limits, method=TimingMethod.BLENDED)
    assert res.trajectory is not None and blended.trajectory is not None
    assert res.trajectory.duration < blended.trajectory.duration


def test_method_must_be_a_timing_method() -> None:
    with pytest.raises(InputError, match=r"method.*STOP_AND_GO"):
        time_parameterize([[0.0, 0.0], [1.0, 0.0]], _limits(2), method="blended")  # type: ignore[arg-type]
