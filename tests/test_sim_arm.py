"""SimArm: holds still, tracks position commands at the stream rate, owns its client."""

from __future__ import annotations

import numpy as np
import pytest

from cells.arm_interface import ArmInterface
from planners import Arm
from planners.errors import InputError
from sim.sim_arm import SimArm


def test_holds_and_tracks(arm: Arm) -> None:
    with SimArm(arm, 1000.0) as sim:
        assert isinstance(sim, ArmInterface)
        q0, _ = sim.read()
        for _ in range(100):
            sim.command(q0, np.zeros(arm.dof))
        np.testing.assert_allclose(sim.read()[0], q0, atol=1e-4)
        target = np.clip(q0 + 0.05, arm.limits.lower, arm.limits.upper)
        for k in range(1, 501):
            s = min(k / 300, 1.0)
            sim.command(q0 + s * (target - q0), (target - q0) / 0.3 * (k <= 300))
        np.testing.assert_allclose(sim.read()[0], target, atol=2e-3)
        sim.emergency_stop()
        _, qd = sim.read()
        assert np.all(np.abs(qd) < 1.0)


def test_rejects_bad_arguments(arm: Arm) -> None:
    with pytest.raises(InputError, match="rate_hz"):
        SimArm(arm, 0.0)
    with pytest.raises(InputError, match="q0"):
        SimArm(arm, 1000.0, q0=np.full(arm.dof, 100.0))
