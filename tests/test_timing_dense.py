"""Dense waypoints (IK samples of a Cartesian line): the curve candidate, fast and on the line."""

from __future__ import annotations

import numpy as np
import pytest
from spatialmath import SE3

from planners import Arm, load_arm, solve_ik
from planners.cartesian import cartesian_line
from planners.limit_check import check_limits
from planners.timing import TimingMethod, time_parameterize
from planners.timing_spline import fit_curve, is_dense

_TOP = np.array([0.3, 0.3, 0.1])
_BOTTOM = np.array([0.3, 0.3, 0.02])


@pytest.fixture(scope="module", params=[("ur5e", "parallel_gripper"), ("panda", "franka_hand")])
def descent(request: pytest.FixtureRequest) -> tuple[Arm, np.ndarray]:
    """The 8 cm straight-down Cartesian line, tool pointing down: (arm, IK samples)."""
    arm = load_arm(*request.param)
    down = SE3.Rx(np.pi)
    q0 = solve_ik(arm, SE3.Trans(*_TOP) * down, arm.configuration("ready")).q
    res = cartesian_line(arm, q0, SE3.Trans(*_BOTTOM) * down)
    assert res.fraction == 1.0, res.reason
    return arm, np.asarray(res.path)


def _line_deviation(p: np.ndarray) -> float:
    """Largest distance of TCP positions (K, 3) from the segment _TOP-_BOTTOM [m]."""
    d = _BOTTOM - _TOP
    lam = np.clip((p - _TOP) @ d / (d @ d), 0.0, 1.0)[:, None]
    return float(np.max(np.linalg.norm(p - _TOP - lam * d, axis=1)))


def test_descent_is_fast_on_the_line_and_within_limits(descent: tuple[Arm, np.ndarray]) -> None:
    arm, W = descent
    assert is_dense(W)
    res = time_parameterize(W, arm.limits, arm=arm)
    tr = res.trajectory
    assert tr is not None, res.reason
    assert res.stats.method is TimingMethod.CURVE
    assert tr.duration < 1.0
    times = np.arange(0.0, tr.duration, 1e-3)
    p = arm.fk_batch(tr.sample(times))[:, :3, 3]
    assert _line_deviation(p) < 2e-4
    report = check_limits(tr, arm.limits, rate_hz=1000.0)
    assert report.ok, report.first
    np.testing.assert_allclose(tr.q[[0, -1]], W[[0, -1]], atol=1e-12)
    np.testing.assert_allclose(tr.qd[[0, -1]], 0.0, atol=1e-12)
    # passes every IK sample within the curve tolerance (1e-4 rad): distance of each
    # sample from the trajectory sampled at 5 kHz and joined by straight segments
    q = tr.sample(np.arange(0.0, tr.duration + 2e-4, 2e-4))
    a, d = q[:-1], np.diff(q, axis=0)
    lam = np.einsum("mkj,kj->mk", W[:, None, :] - a[None], d) / np.maximum(
        np.einsum("kj,kj->k", d, d), 1e-300
    )
    foot = a[None] + np.clip(lam, 0.0, 1.0)[:, :, None] * d[None]
    assert np.linalg.norm(foot - W[:, None, :], axis=2).min(axis=1).max() < 1e-4
    # the old blended path on the same samples is several times slower
    blended = time_parameterize(W, arm.limits, method=TimingMethod.BLENDED).trajectory
    assert blended is not None and blended.duration > 3 * tr.duration


def test_descent_with_tcp_speed_cap(descent: tuple[Arm, np.ndarray]) -> None:
    arm, W = descent
    res = time_parameterize(W, arm.limits, arm=arm, tcp_speed=0.05)
    tr = res.trajectory
    assert tr is not None, res.reason
    assert res.stats.method is TimingMethod.CURVE
    assert 0.08 / 0.05 < tr.duration < 2.5
    times = np.arange(0.0, tr.duration, 1e-3)
    q, qd = tr.sample(times), tr.sample(times, 1)
    eps = 1e-6
    v = np.linalg.norm(arm.fk_batch(q + eps * qd)[:, :3, 3] - arm.fk_batch(q - eps * qd)[:, :3, 3],
                       axis=1) / (2 * eps)  # fmt: skip
    assert v.max() <= 0.05 * (1 + 1e-6)
    assert v.max() > 0.045
    assert _line_deviation(arm.fk_batch(q)[:, :3, 3]) < 2e-4
    report = check_limits(tr, arm.limits, arm=arm, tcp_speed=0.05, rate_hz=1000.0)
    assert report.ok, report.first


def test_boundary_velocity_on_a_dense_path(descent: tuple[Arm, np.ndarray]) -> None:
    arm, W = descent
    u = (W[-1] - W[-2]) / np.linalg.norm(W[-1] - W[-2])
    v = 0.05 * u
    res = time_parameterize(W, arm.limits, arm=arm, end_velocity=v)
    tr = res.trajectory
    assert tr is not None, res.reason
    assert res.stats.method is TimingMethod.CURVE
    np.testing.assert_allclose(tr.qd[-1], v, atol=1e-9)
    np.testing.assert_allclose(tr.qdd[-1], 0.0, atol=1e-12)
    assert check_limits(tr, arm.limits, rate_hz=1000.0).ok


def test_fit_is_within_tolerance_and_refuses_what_it_cannot_fit(
    descent: tuple[Arm, np.ndarray],
) -> None:
    arm, W = descent
    lim = arm.limits
    sp = fit_curve(W, tolerance=1e-4, blend_tolerance=0.05, lower=lim.lower, upper=lim.upper,
                   start_tangent=(W[1] - W[0]) / np.linalg.norm(W[1] - W[0]), arm=arm)  # fmt: skip
    assert sp.deviation <= 1e-4 and sp.tcp_deviation <= 1e-4
    np.testing.assert_allclose(sp(sp.params), W, atol=1e-4)
    np.testing.assert_allclose(sp([0.0, sp.length]), W[[0, -1]], atol=1e-12)
    np.testing.assert_allclose(sp([0.0], 1)[0], (W[1] - W[0]) / np.linalg.norm(W[1] - W[0]),
                               atol=1e-9)  # fmt: skip
    np.testing.assert_allclose(sp([0.0], 2)[0], 0.0, atol=1e-6)
    # a sharp corner in the middle is not a smooth curve
    corner = np.concatenate((W, W[-1] + (W[-1] - W[0])[::-1] * np.linspace(0.01, 1, 20)[:, None]))
    corner = np.clip(corner, lim.lower, lim.upper)
    assert not is_dense(corner)
    res = time_parameterize(corner, lim, method=TimingMethod.CURVE, curve_tolerance=1e-6)
    assert not res.success and res.reason is not None and "curve" in res.reason


def test_sparse_paths_never_build_the_curve(arm: Arm, rng: np.random.Generator) -> None:
    for _ in range(5):
        W = arm.limits.sample(rng, int(rng.integers(2, 6)))
        res = time_parameterize(W, arm.limits)
        assert res.success, res.reason
        assert TimingMethod.CURVE not in {m for m, _ in res.stats.candidates}


def test_zero_blend_tolerance_keeps_the_polyline(descent: tuple[Arm, np.ndarray]) -> None:
    arm, W = descent
    res = time_parameterize(W[:10], arm.limits, blend_tolerance=0.0)
    assert res.stats.method is TimingMethod.STOP_AND_GO
