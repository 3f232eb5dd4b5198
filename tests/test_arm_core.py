"""ArmCore on a simulated clock: motions, every fault, the stop, e-stop, fuzzing.

Each fault-injection test states its specified outcome and measures it on the commands
the ideal arm received.
"""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streaming_helpers import (
    PERIOD_NS,
    IdealArm,
    executed_derivatives,
    hello_frames,
    sp_frames,
    ur5e_like_limits,
)

from cells.arm_core import ArmCore, Mode
from cells.motion import quintic_move
from cells.protocol import MAGIC, Code, Rejection, Setpoint, Welcome
from cells.stream_faults import FaultPlan, FaultyLink
from planners.errors import InputError

LIMITS = ur5e_like_limits()
Q0 = np.array([0.0, -1.5, 1.0, -1.0, 0.5, 0.0])
PEER = b"streamer"
SESSION = 7
LOOKAHEAD = 10  # periods


def make_core(watchdog_s: float = 0.020) -> tuple[ArmCore, IdealArm]:
    arm = IdealArm(LIMITS, Q0)
    core = ArmCore(arm, 1000.0, watchdog_s)
    assert core.arm_motion() is Code.OK
    return core, arm


def open_session(core: ArmCore, now: int = 0) -> None:
    out = core.on_frames(PEER, hello_frames(SESSION, LIMITS.names), now)
    assert isinstance(out, Welcome) and out.code is Code.OK


def motion(distance: float = 0.4) -> np.ndarray:
    return quintic_move(Q0, Q0 + distance, LIMITS, 1000.0, scale=0.5)


def run_stream(
    core: ArmCore,
    rows: np.ndarray,
    *,
    link: FaultyLink | None = None,
    stop_sending_at: int | None = None,
    mutate: dict[int, np.ndarray] | None = None,
    extra_ticks: int = 200,
) -> int:
    """Send row k at tick k (applying LOOKAHEAD ticks later); tick every period.

    Returns the tick at which sending stopped.
    """
    open_session(core)
    n = rows.shape[0]
    t0 = 1_000_000
    last_sent = n
    for k in range(n + LOOKAHEAD + extra_ticks):
        now = t0 + k * PERIOD_NS
        if k < n and (stop_sending_at is None or k < stop_sending_at):
            q = mutate.get(k, rows[k]) if mutate else rows[k]
            frames = sp_frames(SESSION, k, now + LOOKAHEAD * PERIOD_NS, q, final=k == n - 1)
            payloads = link.push(frames[0], now) if link else frames
            for p in payloads:
                core.on_frames(PEER, [p], now + 1000)
        elif stop_sending_at is not None and k == stop_sending_at:
            last_sent = k
        if link is not None:
            for p in link.due(now):
                core.on_frames(PEER, [p], now + 1000)
        core.tick(now + 2000)
    return last_sent


def assert_within_limits(arm: IdealArm, jerk_factor: float = 1.06) -> None:
    q = np.asarray(arm.commands)
    assert np.all(q >= LIMITS.lower) and np.all(q <= LIMITS.upper)
    v, a, j = executed_derivatives(arm.commands, 1e-3)
    assert np.all(np.abs(v) <= LIMITS.velocity * 1.06)
    assert np.all(np.abs(a) <= LIMITS.acceleration * 1.06)
    assert np.all(np.abs(j) <= LIMITS.jerk * jerk_factor)


def test_clean_motion_is_executed_exactly_and_arm_rearms() -> None:
    core, arm = make_core()
    rows = motion()
    run_stream(core, rows)
    assert core.mode is Mode.ARMED and core.reason is Code.OK
    assert core.counters.accepted == rows.shape[0]
    np.testing.assert_allclose(arm.q, rows[-1], atol=1e-12)
    assert_within_limits(arm)


@pytest.mark.parametrize(
    ("plan", "counter"),
    [
        (FaultPlan(drop=0.01, seed=1), "gaps"),
        (FaultPlan(duplicate=0.01, seed=2), "duplicate"),
        (FaultPlan(reorder=0.01, seed=3), "old"),
        (FaultPlan(delay=0.01, delay_s=0.030, seed=4), "old"),  # arrives after later seqs
    ],
    ids=["drop", "duplicate", "reorder", "delay"],
)
def test_one_percent_faults_are_counted_and_motion_completes(plan: FaultPlan, counter: str) -> None:
    """Specified: 1 % dropped, duplicated, reordered or delayed (30 ms, beyond the
    10 ms look-ahead) setpoints are counted, never executed out of time, never a fault;
    the motion completes within the limits and ends where it should."""
    core, arm = make_core()
    rows = np.vstack([motion(0.8), motion(0.8)[::-1]])
    link = FaultyLink(plan)
    run_stream(core, rows, link=link)
    injected = sum(link.counts.values())
    assert injected >= 5
    assert core.mode is Mode.ARMED, (core.reason, core.reason_detail)
    assert getattr(core.counters, counter) == injected
    lost = 0 if counter == "duplicate" else injected  # a duplicate's original is executed
    assert core.counters.accepted == rows.shape[0] - lost
    np.testing.assert_allclose(arm.q, rows[-1], atol=1e-9)
    assert_within_limits(arm)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (np.nan, Code.NOT_FINITE),
        (np.inf, Code.NOT_FINITE),
        (7.0, Code.POSITION_LIMIT),
        (0.05, Code.VELOCITY_LIMIT),
        (2e-4, Code.ACCELERATION_LIMIT),
        (3e-6, Code.JERK_LIMIT),
    ],
    ids=["nan", "inf", "position", "velocity-jump", "acceleration-jump", "jerk-jump"],
)
def test_bad_setpoint_is_never_executed_and_arm_stops_under_jerk_limits(
    bad: float, code: Code
) -> None:
    """Specified: the bad setpoint is not executed; a controlled stop within the jerk
    limits follows; the reason is reported; the arm then waits in FAULT for a reset."""
    core, arm = make_core()
    rows = motion(0.8)
    k_bad = rows.shape[0] // 3
    q_bad = rows[k_bad].copy()
    q_bad[1] = bad if code in (Code.NOT_FINITE, Code.POSITION_LIMIT) else q_bad[1] + bad
    run_stream(core, rows, mutate={k_bad: q_bad}, extra_ticks=800)
    assert core.reason is code
    assert core.mode is Mode.FAULT
    executed = np.asarray(arm.commands)
    assert not np.any(np.all(np.isclose(executed, q_bad, atol=0, rtol=0), axis=1))
    assert np.all(np.isfinite(executed))
    assert_within_limits(arm, jerk_factor=1.5)
    # at rest at the end, and nothing moves any more without reset and arm
    np.testing.assert_allclose(arm.qd, 0.0, atol=1e-9)
    assert core.postmortem and core.postmortem[-1].code is code
    held = arm.q.copy()
    out = core.on_frames(PEER, sp_frames(SESSION, 10**6, 10**12, held), 10**12)
    assert isinstance(out, Rejection)
    core.tick(10**12 + 1)
    np.testing.assert_array_equal(arm.q, held)
    assert core.arm_motion() is Code.BAD_STATE
    assert core.reset() is Code.OK and core.arm_motion() is Code.OK


def test_streaming_stopped_mid_motion_stop_begins_within_watchdog_plus_one_period() -> None:
    """Specified: stop decided within watchdog (20 ms) + one period of the last valid setpoint."""
    core, arm = make_core()
    rows = motion(0.8)
    run_stream(core, rows, stop_sending_at=rows.shape[0] // 2, extra_ticks=900)
    assert core.reason is Code.WATCHDOG and core.mode is Mode.FAULT
    assert core.last_valid_ns is not None and core.stop_decided_ns is not None
    delay = core.stop_decided_ns - core.last_valid_ns
    assert delay <= core.watchdog_ns + PERIOD_NS
    assert_within_limits(arm, jerk_factor=1.5)
    np.testing.assert_allclose(arm.qd, 0.0, atol=1e-9)


def test_first_setpoint_must_match_measured_position() -> None:
    core, arm = make_core()
    open_session(core)
    out = core.on_frames(PEER, sp_frames(SESSION, 0, 10**7, Q0 + 0.05), 0)
    assert isinstance(out, Rejection) and out.code is Code.START_MISMATCH
    assert core.mode is Mode.FAULT
    core.tick(10**6)
    np.testing.assert_array_equal(arm.q, Q0)


def test_setpoints_refused_when_disarmed() -> None:
    arm = IdealArm(LIMITS, Q0)
    core = ArmCore(arm)
    welcome = core.on_frames(PEER, hello_frames(SESSION, LIMITS.names), 0)
    assert isinstance(welcome, Welcome) and welcome.code is Code.BAD_STATE
    core.tick(1)
    np.testing.assert_array_equal(arm.q, Q0)


def test_hello_with_wrong_joints_or_rate_is_refused() -> None:
    core, _ = make_core()
    names = tuple(reversed(LIMITS.names))
    w = core.on_frames(PEER, hello_frames(SESSION, names), 0)
    assert isinstance(w, Welcome) and w.code is Code.JOINT_MISMATCH
    w = core.on_frames(PEER, hello_frames(SESSION, LIMITS.names, 500.0), 0)
    assert isinstance(w, Welcome) and w.code is Code.BAD_ARGUMENT


def test_other_peer_cannot_inject_setpoints() -> None:
    core, _arm = make_core()
    open_session(core)
    out = core.on_frames(b"intruder", sp_frames(SESSION, 0, 10**7, Q0), 0)
    assert isinstance(out, Rejection) and out.code is Code.UNKNOWN_SESSION
    assert core.counters.accepted == 0 and core.mode is Mode.ARMED


def test_emergency_stop_is_immediate_and_release_never_resumes() -> None:
    core, arm = make_core()
    rows = motion(0.8)
    open_session(core)
    for k in range(200):
        now = 1_000_000 + k * PERIOD_NS
        core.on_frames(PEER, sp_frames(SESSION, k, now + LOOKAHEAD * PERIOD_NS, rows[k]), now)
        core.tick(now + 1)
    assert core.mode is Mode.ACTIVE
    core.estop(300 * PERIOD_NS)
    held = arm.q.copy()
    assert arm.estops == 1
    for k in range(200, 260):
        now = 1_000_000 + k * PERIOD_NS
        out = core.on_frames(PEER, sp_frames(SESSION, k, now + LOOKAHEAD * PERIOD_NS, rows[k]), now)
        assert isinstance(out, Rejection)
        core.tick(now + 1)
    np.testing.assert_array_equal(arm.q, held)
    assert core.release() is Code.OK and core.mode is Mode.FAULT
    core.tick(10**10)
    np.testing.assert_array_equal(arm.q, held)
    assert core.arm_motion() is Code.BAD_STATE  # a reset comes first


def test_abort_stops_under_jerk_limits() -> None:
    from cells.protocol import Abort, encode_abort

    core, arm = make_core()
    rows = motion(0.8)
    open_session(core)
    for k in range(rows.shape[0] // 2):
        now = 1_000_000 + k * PERIOD_NS
        core.on_frames(PEER, sp_frames(SESSION, k, now + LOOKAHEAD * PERIOD_NS, rows[k]), now)
        core.tick(now + 1)
    core.on_frames(PEER, [encode_abort(Abort(SESSION, now))], now + 10)
    for k in range(1000):
        core.tick(now + (k + 1) * PERIOD_NS)
    assert core.reason is Code.ABORTED and core.mode is Mode.FAULT
    assert_within_limits(arm, jerk_factor=1.5)


def test_core_rejects_bad_configuration() -> None:
    arm = IdealArm(LIMITS, Q0)
    with pytest.raises(InputError, match="rate_hz"):
        ArmCore(arm, 0.0)
    with pytest.raises(InputError, match="watchdog_s"):
        ArmCore(arm, 1000.0, math.nan)


# ---------------------------------------------------------------------- fuzzing
def _mid_motion_core(k_end: int = 150) -> tuple[ArmCore, IdealArm, np.ndarray, int]:
    core, arm = make_core()
    rows = motion(0.8)
    open_session(core)
    for k in range(k_end):
        now = 1_000_000 + k * PERIOD_NS
        core.on_frames(PEER, sp_frames(SESSION, k, now + LOOKAHEAD * PERIOD_NS, rows[k]), now)
        core.tick(now + 1)
    return core, arm, rows, 1_000_000 + k_end * PERIOD_NS


def test_random_bytes_never_crash_nor_execute() -> None:
    """20,000 random frames from the session's own peer, in a live motion."""
    rng = np.random.default_rng(7)
    executed_ok = 0
    for _trial in range(20):
        core, arm, _rows, now = _mid_motion_core()
        n_before = len(arm.commands)
        for i in range(1000):
            size = int(rng.integers(0, 300))
            frame = rng.bytes(size)
            if i % 3 == 0:  # a valid header makes the decoder go deeper
                frame = msgpack.packb([MAGIC, 1, 0, "sp"])[:-1] + frame
            frames = [frame] if i % 50 else [frame, frame]
            out = core.on_frames(PEER, frames, now)
            assert out is None or isinstance(out, Rejection | Setpoint | Welcome)
            if i % 10 == 0:
                core.tick(now)
                now += PERIOD_NS
        for _ in range(400):
            core.tick(now)
            now += PERIOD_NS
        assert_within_limits(arm, jerk_factor=1.5)
        executed_ok += len(arm.commands) - n_before
    assert executed_ok > 0


finite = st.floats(allow_nan=True, allow_infinity=True, width=64)
values = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64 - 1),
    finite,
    st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(finite, max_size=8),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seq=st.integers(min_value=-5, max_value=2**64 + 5),
    t_apply=st.one_of(st.integers(min_value=-5, max_value=2**63 + 5), finite),
    q=st.one_of(st.lists(finite, min_size=0, max_size=9), values),
    flags=values,
    tail=st.lists(values, max_size=2),
    session=st.sampled_from([SESSION, 0, 8, -1]),
)
def test_structured_setpoint_fuzz_never_executes_invalid(
    seq: object, t_apply: object, q: object, flags: object, tail: list, session: int
) -> None:
    """Well-formed msgpack with hostile fields: never a crash, never an invalid command."""
    core, arm, _, now = _mid_motion_core(k_end=24)
    n_before = len(arm.commands)
    try:
        frame = msgpack.packb([MAGIC, 1, 0, "sp", session, seq, now, t_apply, q, flags, *tail])
    except (OverflowError, ValueError, TypeError):
        return
    out = core.on_frames(PEER, [frame], now)
    assert out is None or isinstance(out, Rejection | Setpoint)
    for k in range(12):
        core.tick(now + k * PERIOD_NS)
    new = np.asarray(arm.commands[n_before - 3 :])
    assert np.all(np.isfinite(new))
    assert np.all(new >= LIMITS.lower) and np.all(new <= LIMITS.upper)
    _, _, j = executed_derivatives(list(new), 1e-3)
    assert np.all(np.abs(j) <= LIMITS.jerk * 1.5)
