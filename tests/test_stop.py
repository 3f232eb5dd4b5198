"""controlled_stop: at rest at the end, never over the acceleration and jerk limits."""

from __future__ import annotations

import numpy as np
import pytest

from planners.errors import InputError
from planners.stop import controlled_stop

A = np.array([8.0, 8, 8, 12, 12, 12])
J = np.array([100.0, 100, 100, 150, 150, 150])


def test_random_states_stop_within_limits(rng: np.random.Generator) -> None:
    for _ in range(30):
        q = rng.uniform(-3, 3, 6)
        v = rng.uniform(-3, 3, 6)
        a = rng.uniform(-1, 1, 6) * A
        p = controlled_stop(q, v, a, A, J)
        dt = 1e-3
        ts = np.arange(0.0, p.duration + 5 * dt, dt)
        states = [p.at(t) for t in ts]
        qd = np.array([s[1] for s in states])
        qdd = np.array([s[2] for s in states])
        assert np.all(np.abs(qdd) <= A * (1 + 1e-6))
        assert np.all(np.abs(np.diff(qdd, axis=0)) / dt <= J * (1 + 1e-6))
        np.testing.assert_allclose(qd[-1], 0.0, atol=1e-9)
        np.testing.assert_allclose(states[0][0], q)
        np.testing.assert_allclose(p.at(p.duration + 1)[0], p.at(p.duration)[0])


def test_at_rest_is_an_empty_stop() -> None:
    p = controlled_stop(np.ones(3), np.zeros(3), np.zeros(3), A[:3], J[:3])
    assert p.duration == 0.0
    np.testing.assert_array_equal(p.at(1.0)[0], np.ones(3))


def test_bad_input_raises() -> None:
    with pytest.raises(InputError, match="qd"):
        controlled_stop(np.zeros(3), np.zeros(2), np.zeros(3), A[:3], J[:3])
    with pytest.raises(InputError, match="positive"):
        controlled_stop(np.zeros(3), np.ones(3), np.zeros(3), -A[:3], J[:3])
