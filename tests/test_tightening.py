"""The tightening classifier (issue 6 item 7) and the reaction policy."""

from __future__ import annotations

import numpy as np
import pytest

from cells.tightening import (
    Reaction,
    ReactionPolicy,
    Reason,
    TighteningSpec,
    classify,
    tightening_features,
)
from planners.errors import InputError
from sim.spindle import Fault, ScrewJoint, TighteningTrace, tighten

SPEC = TighteningSpec()
JOINT = ScrewJoint()
EXPECTED = {
    Fault.MISSING_SCREW: Reason.MISSING_SCREW,
    Fault.CROSS_THREAD: Reason.CROSS_THREAD,
    Fault.STRIPPED: Reason.STRIPPED,
    Fault.NO_SEAT: Reason.NO_SEAT,
    Fault.HIGH_TORQUE: Reason.HIGH_TORQUE,
    Fault.HOLE_POSITION: Reason.HOLE_POSITION,
}


@pytest.mark.parametrize("fault", list(EXPECTED), ids=[f.value for f in EXPECTED])
def test_each_fault_is_detected_with_its_own_reason(fault: Fault) -> None:
    rng = np.random.default_rng(1000 + list(Fault).index(fault))
    reasons = [classify(tighten(JOINT, SPEC.program(), rng, fault), SPEC).reason for _ in range(50)]
    assert reasons == [EXPECTED[fault]] * 50


def test_randomised_good_tightenings_are_all_ok() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(250):
        judgement = classify(tighten(JOINT, SPEC.program(), rng), SPEC)
        assert judgement.ok, judgement.detail


def test_good_joints_keep_a_margin_to_every_threshold() -> None:
    rng = np.random.default_rng(99)
    feats = [tightening_features(tighten(JOINT, SPEC.program(), rng), SPEC) for _ in range(200)]
    assert min(f.final_angle for f in feats) > SPEC.angle_min + 20
    assert max(f.final_angle for f in feats) < SPEC.angle_max - 20
    assert max(f.rundown_torque for f in feats) < SPEC.max_rundown_torque - 0.005
    assert min(f.rundown_torque for f in feats) > 2 * SPEC.min_rundown_torque


def test_classifier_reads_only_the_trace() -> None:
    # A hand-made trace: flat run-down to 3600 deg, then a clean rise to the target.
    angle = np.arange(0.0, 3620.0, 0.5)
    torque = np.where(angle < 3600, 0.02, 0.02 + 0.005 * (angle - 3600))
    torque[-1] = 0.101
    judgement = classify(TighteningTrace.from_arrays(angle, torque), SPEC)
    assert judgement.reason is Reason.OK
    assert judgement.features.seat_angle == pytest.approx(3604.0, abs=2.0)


def test_reaction_policy_retries_once_then_rejects() -> None:
    policy = ReactionPolicy()
    assert policy.react(Reason.OK) is Reaction.CONTINUE
    assert policy.react(Reason.MISSING_SCREW, attempt=1) is Reaction.RETRY
    assert policy.react(Reason.MISSING_SCREW, attempt=2) is Reaction.REJECT_PART
    assert policy.react(Reason.STRIPPED) is Reaction.REJECT_PART
    assert policy.react(Reason.HOLE_POSITION) is Reaction.STOP_CELL
    strict = ReactionPolicy(retries=0, after_retries=Reaction.STOP_CELL)
    assert strict.react(Reason.NO_SEAT) is Reaction.STOP_CELL


def test_misuse_raises_input_error() -> None:
    with pytest.raises(InputError, match="angle_min"):
        TighteningSpec(angle_min=4000.0, angle_max=3000.0)
    with pytest.raises(InputError, match="positive"):
        TighteningSpec(target_torque=-0.1)
    with pytest.raises(InputError, match="missing"):
        ReactionPolicy(reactions={Reason.STRIPPED: Reaction.RETRY})
    with pytest.raises(InputError, match="after_retries"):
        ReactionPolicy(after_retries=Reaction.RETRY)
    with pytest.raises(InputError, match="attempt"):
        ReactionPolicy().react(Reason.STRIPPED, attempt=0)
