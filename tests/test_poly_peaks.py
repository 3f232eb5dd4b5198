"""Exact interval peaks: never below a dense sampling, and equal to it up to its spacing."""

from __future__ import annotations

import numpy as np
import pytest

from planners.errors import InputError
from planners.limits import JointLimits
from planners.poly_peaks import interval_peaks
from planners.trajectory import Trajectory

NAMES = ("a", "b", "c")


def _limits(rng: np.random.Generator) -> JointLimits:
    ones = np.ones(3)
    return JointLimits(
        NAMES, -rng.uniform(0.5, 3.0, 3), rng.uniform(0.5, 3.0, 3), ones, ones, ones, ones
    )


def _random(rng: np.random.Generator) -> Trajectory:
    n = int(rng.integers(2, 7))
    t = np.cumsum(rng.uniform(0.05, 1.0, n))
    shape = (n, 3)
    return Trajectory(
        NAMES, t, rng.normal(size=shape), 3 * rng.normal(size=shape), 20 * rng.normal(size=shape)
    )


def _dense(traj: Trajectory, limits: JointLimits, order: int) -> np.ndarray:
    values = traj.sample_intervals(np.linspace(0.0, 1.0, 20_001), order).reshape(-1, traj.dof)
    if order == 0:
        return np.maximum(
            0.0, np.maximum(values.max(0) - limits.upper, limits.lower - values.min(0))
        )
    return np.abs(values).max(axis=0)


def test_peaks_bound_a_dense_sampling_tightly(rng: np.random.Generator) -> None:
    for _ in range(200):
        traj, limits = _random(rng), _limits(rng)
        peaks = interval_peaks(traj, limits)
        for order in range(4):
            dense = _dense(traj, limits, order)
            assert np.all(peaks[order] >= dense * (1 - 1e-12)), order
            # 20,001 points per interval miss a peak by at most ~1e-8 of its size.
            scale = np.abs(traj.sample_intervals([0.0, 0.5, 1.0], order)).max() + 1.0
            assert np.all(peaks[order] - dense <= 1e-6 * scale), order


def test_peak_between_knots_is_found() -> None:
    # Rest to rest over 1 rad in 1 s: velocity peaks mid-interval at 1.875 rad/s.
    traj = Trajectory(("a",), [0.0, 1.0], [[0.0], [1.0]], [[0.0], [0.0]], [[0.0], [0.0]])
    one = np.ones(1)
    limits = JointLimits(("a",), -one, 0.5 * one, one, one, one, one)
    peaks = interval_peaks(traj, limits)
    assert peaks[0, 0] == pytest.approx(0.5)  # 1.0 is 0.5 past the upper limit
    assert peaks[1, 0] == pytest.approx(1.875)
    assert peaks[2, 0] == pytest.approx(10.0 / np.sqrt(3.0))  # 60 x (1 - 3x + 2x^2) peaks
    assert peaks[3, 0] == pytest.approx(60.0)


def test_names_must_match() -> None:
    traj = Trajectory(("x",), [0.0, 1.0], [[0.0], [1.0]], [[0.0], [0.0]], [[0.0], [0.0]])
    one = np.ones(1)
    with pytest.raises(InputError, match=r"limits\.names"):
        interval_peaks(traj, JointLimits(("a",), -one, one, one, one, one, one))
