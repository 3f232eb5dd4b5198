"""Test motions and trajectory files: within the fraction of the limits asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streaming_helpers import executed_derivatives, ur5e_like_limits

from cells.motion import back_and_forth, quintic_move, rows_from_file
from planners.errors import InputError

LIMITS = ur5e_like_limits()
Q0 = np.array([0.0, -1.5, 1.0, -1.0, 0.5, 0.0])


@pytest.mark.parametrize("scale", [0.3, 0.5, 1.0])
def test_quintic_within_scaled_limits(scale: float) -> None:
    rows = quintic_move(Q0, Q0 + np.linspace(0.1, 1.0, 6), LIMITS, 1000.0, scale)
    v, a, j = executed_derivatives(list(rows), 1e-3)
    assert np.all(np.abs(v) <= scale * LIMITS.velocity * 1.01)
    assert np.all(np.abs(a) <= scale * LIMITS.acceleration * 1.01)
    assert np.all(np.abs(j) <= scale * LIMITS.jerk * 1.01)
    np.testing.assert_allclose(rows[[0, -1]], [Q0, Q0 + np.linspace(0.1, 1.0, 6)])


def test_back_and_forth_ends_at_rest() -> None:
    rows = back_and_forth(Q0, 0.3, LIMITS, 500.0, 4.0)
    assert rows.shape[0] <= 4.0 * 500 + 1
    np.testing.assert_allclose(rows[-1], rows[-2], atol=1e-6)


def test_bad_input() -> None:
    with pytest.raises(InputError, match="q0"):
        quintic_move(Q0[:3], Q0, LIMITS, 1000.0)
    with pytest.raises(InputError, match="scale"):
        quintic_move(Q0, Q0, LIMITS, 1000.0, scale=0.0)


def test_rows_from_file_checks_joints(tmp_path: Path) -> None:
    from planners.trajectory import Trajectory

    t = np.array([0.0, 1.0])
    q = np.array([Q0, Q0 + 0.1])
    path = tmp_path / "t.json"
    Trajectory(LIMITS.names, t, q, np.zeros_like(q), np.zeros_like(q)).save(path)
    rows = rows_from_file(path, 250.0, LIMITS.names)
    assert rows.shape == (251, 6)
    np.testing.assert_allclose(rows[[0, -1]], q)
    with pytest.raises(InputError, match="differ"):
        rows_from_file(path, 250.0, tuple(reversed(LIMITS.names)))
