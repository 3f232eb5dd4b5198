"""SetpointChecker: each check in the specified order, with its reason code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from streaming_helpers import ur5e_like_limits

from cells.motion import quintic_move
from cells.protocol import Code, Setpoint
from cells.setpoint_checks import CheckConfig, SetpointChecker, VerdictKind
from planners.errors import InputError

LIMITS = ur5e_like_limits()
Q0 = np.array([0.0, -1.5, 1.0, -1.0, 0.5, 0.0])
MS = 1_000_000


def sp(seq: int, q: np.ndarray | tuple, t_apply: int | None = None, session: int = 3) -> Setpoint:
    t = (seq + 10) * MS if t_apply is None else t_apply
    return Setpoint(session, seq, 0, t, tuple(float(v) for v in q))


def fresh() -> SetpointChecker:
    c = SetpointChecker(LIMITS)
    c.begin(3, 1e-3)
    return c


def test_limit_respecting_motion_is_accepted_throughout() -> None:
    c = fresh()
    rows = quintic_move(Q0, Q0 + 0.8, LIMITS, 1000.0, scale=0.95)
    for k, q in enumerate(rows):
        v = c.check(sp(k, q), k * MS, Q0, True)
        assert v.kind is VerdictKind.ACCEPT, (k, v)


@pytest.mark.parametrize(
    ("make", "kind", "code"),
    [
        (lambda: sp(1, Q0, session=4), VerdictKind.DROP, Code.UNKNOWN_SESSION),
        (lambda: sp(0, Q0), VerdictKind.DROP, Code.DUPLICATE),
        (lambda: sp(1, Q0, t_apply=0), VerdictKind.DROP, Code.LATE),
        (lambda: sp(1, Q0, t_apply=10**12), VerdictKind.FAULT, Code.BAD_TIME),
        (lambda: sp(1, Q0, t_apply=10 * MS), VerdictKind.FAULT, Code.BAD_TIME),
        (lambda: sp(1, Q0[:5]), VerdictKind.FAULT, Code.SHAPE),
        (lambda: sp(1, (*Q0[:5], math.nan)), VerdictKind.FAULT, Code.NOT_FINITE),
        (lambda: sp(1, (*Q0[:5], -math.inf)), VerdictKind.FAULT, Code.NOT_FINITE),
        (lambda: sp(1, (*Q0[:5], 7.0)), VerdictKind.FAULT, Code.POSITION_LIMIT),
        (lambda: sp(1, Q0 + 0.01), VerdictKind.FAULT, Code.VELOCITY_LIMIT),
        (lambda: sp(1, Q0 + 1e-4), VerdictKind.FAULT, Code.ACCELERATION_LIMIT),
    ],
    ids=[
        "other-session",
        "duplicate",
        "late",
        "too-far-ahead",
        "time-not-increasing",
        "shape",
        "nan",
        "inf",
        "position",
        "velocity",
        "acceleration",
    ],
)
def test_second_setpoint_checks(make, kind: VerdictKind, code: Code) -> None:
    c = fresh()
    assert c.check(sp(0, Q0), 0, Q0, True).kind is VerdictKind.ACCEPT
    v = c.check(make(), 1 * MS, Q0, True)
    assert (v.kind, v.code) == (kind, code), v
    assert c.last_seq == 0  # nothing rejected becomes history


def test_jerk_jump_is_a_fault() -> None:
    c = fresh()
    for k in range(3):
        assert c.check(sp(k, Q0), k * MS, Q0, True).kind is VerdictKind.ACCEPT
    v = c.check(sp(3, Q0 + 1e-6), 3 * MS, Q0, True)
    assert v.code is Code.JERK_LIMIT


def test_old_sequence_is_dropped_and_gaps_are_allowed() -> None:
    c = fresh()
    c.check(sp(0, Q0), 0, Q0, True)
    assert c.check(sp(5, Q0), 0, Q0, True).kind is VerdictKind.ACCEPT
    v = c.check(sp(3, Q0), 0, Q0, True)
    assert (v.kind, v.code) == (VerdictKind.DROP, Code.OLD_SEQUENCE)


def test_first_setpoint_must_match_and_arm_must_be_active() -> None:
    c = fresh()
    assert c.check(sp(0, Q0 + 0.02), 0, Q0, True).code is Code.START_MISMATCH
    assert c.check(sp(0, Q0), 0, Q0, False).code is Code.NOT_ACTIVE
    c.end()
    assert c.check(sp(0, Q0), 0, Q0, True).code is Code.UNKNOWN_SESSION


def test_config_is_validated() -> None:
    with pytest.raises(InputError, match="margin"):
        CheckConfig(margin=0.0)
    with pytest.raises(InputError, match="late_s"):
        CheckConfig(late_s=-1.0)
