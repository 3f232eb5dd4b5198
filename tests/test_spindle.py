"""The simulated spindle: shapes, determinism, physics of good joints and faults."""

from __future__ import annotations

import numpy as np
import pytest

from planners.errors import InputError
from sim.spindle import Fault, ScrewJoint, SpindleProgram, TighteningTrace, tighten

JOINT = ScrewJoint(pitch=0.0003, length=0.003)
PROGRAM = SpindleProgram(target_torque=0.10, max_angle=3890.0, step=0.5)


def test_nominal_seat_angle_is_length_over_pitch() -> None:
    assert JOINT.seat_angle == pytest.approx(3600.0)


@pytest.mark.parametrize("fault", list(Fault))
def test_same_seed_same_trace(fault: Fault) -> None:
    a = tighten(JOINT, PROGRAM, np.random.default_rng(7), fault)
    b = tighten(JOINT, PROGRAM, np.random.default_rng(7), fault)
    np.testing.assert_array_equal(a.torque, b.torque)
    np.testing.assert_array_equal(a.angle, b.angle)
    assert not a.torque.flags.writeable
    assert np.all(np.diff(a.angle) == pytest.approx(0.5))
    assert np.all(a.torque >= 0)


def test_good_joint_seats_near_nominal_and_stops_at_target() -> None:
    for seed in range(30):
        t = tighten(JOINT, PROGRAM, np.random.default_rng(seed))
        assert 0.10 <= t.final_torque < 0.11  # overshoot and sample noise
        assert 3450 < t.final_angle < 3800
        rundown = t.torque[(t.angle > 720) & (t.angle < 3300)]
        assert 0.005 < np.median(rundown) < 0.03


def test_faults_look_like_their_physics() -> None:
    rng = np.random.default_rng(3)
    missing = tighten(JOINT, PROGRAM, rng, Fault.MISSING_SCREW)
    assert missing.peak_torque < 0.005 and missing.final_angle == pytest.approx(3890.0)
    cross = tighten(JOINT, PROGRAM, rng, Fault.CROSS_THREAD)
    assert cross.final_torque >= 0.10 and cross.final_angle < 3000
    stripped = tighten(JOINT, PROGRAM, rng, Fault.STRIPPED)
    assert stripped.peak_torque > 0.05 and stripped.final_torque < 0.5 * stripped.peak_torque
    no_seat = tighten(JOINT, PROGRAM, rng, Fault.NO_SEAT)
    assert no_seat.peak_torque < 0.04 and no_seat.final_angle == pytest.approx(3890.0)
    high = tighten(JOINT, PROGRAM, rng, Fault.HIGH_TORQUE)
    assert high.final_torque > 0.12 and high.final_angle < 3450
    hole = tighten(JOINT, PROGRAM, rng, Fault.HOLE_POSITION)
    assert np.median(hole.torque) < 0.003 and hole.peak_torque > 0.01


def test_bad_arguments_raise_input_error() -> None:
    with pytest.raises(InputError, match="pitch"):
        ScrewJoint(pitch=0.0)
    with pytest.raises(InputError, match="target_torque"):
        SpindleProgram(target_torque=float("nan"), max_angle=100.0)
    with pytest.raises(InputError, match="fault"):
        tighten(JOINT, PROGRAM, np.random.default_rng(0), "stripped")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="increase"):
        TighteningTrace.from_arrays([0.0, 0.0], [0.0, 0.1])
    with pytest.raises(InputError, match="finite"):
        TighteningTrace.from_arrays([0.0, 1.0], [0.0, np.inf])
