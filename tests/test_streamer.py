"""The streamer process against a real arm endpoint over sockets: faults, kills, pause.

The arm endpoint runs an ideal arm in a thread of the test process (fast start); the
streamer runs in its own process as in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from streaming_helpers import IdealArm, endpoint_thread, short_dir, ur5e_like_limits

from cells.arm_core import ArmCore, Mode
from cells.arm_endpoint import ArmEndpoint
from cells.motion import back_and_forth, quintic_move
from cells.protocol import Code, Rejection, Setpoint, Welcome
from cells.stream_faults import FaultPlan
from cells.streamer import StreamConfig, Streamer, StreamerProcess
from planners.errors import InputError

LIMITS = ur5e_like_limits()
Q0 = np.array([0.0, -1.5, 1.0, -1.0, 0.5, 0.0])


@pytest.fixture(params=[0.2])
def arm_endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[ArmCore, IdealArm, str]]:
    """An ideal arm served in a thread. The watchdog is the parameter: 200 ms by default
    (this test process is not real-time; a loaded machine must not fail unrelated tests)."""
    d = short_dir()
    arm = IdealArm(LIMITS, Q0)
    core = ArmCore(arm, 1000.0, watchdog_s=request.param)
    core.arm_motion()
    endpoint = ArmEndpoint(core, f"ipc://{d}/arm", insecure_plaintext=True)
    with endpoint_thread(endpoint):
        yield core, arm, f"ipc://{d}/arm"


def test_one_percent_mixed_faults_over_sockets(arm_endpoint: tuple) -> None:
    """Specified: with 1 % of setpoints dropped, delayed, duplicated or reordered, the motion
    completes (OK) and the arm counts every injected fault."""
    core, arm, ep = arm_endpoint
    rows = back_and_forth(Q0, 0.5, LIMITS, 1000.0, 3.0)
    plan = FaultPlan(drop=0.0025, delay=0.0025, duplicate=0.0025, reorder=0.0025, seed=11)
    cfg = StreamConfig(ep, insecure_plaintext=True, faults=plan, state_timeout_s=0.5)
    with StreamerProcess(cfg, rows, LIMITS.names) as proc:
        result = proc.wait(30)
    assert result is not None and result["code"] == "OK", result
    injected = result["faults"]
    assert sum(injected.values()) >= 10
    c = core.counters
    assert c.duplicate >= injected["duplicate"]
    assert c.old + c.late >= injected["reorder"] + injected["delay"] - 2
    assert c.gaps >= injected["drop"]
    assert core.mode is Mode.ARMED
    np.testing.assert_allclose(arm.q, rows[-1], atol=1e-9)


@pytest.mark.parametrize("arm_endpoint", [0.020], indirect=True)
def test_controller_killed_mid_motion_arm_stops_by_watchdog(arm_endpoint: tuple) -> None:
    """Specified: the streaming process is killed (SIGKILL) mid-motion; the arm decides the
    stop within watchdog + one period of its last valid setpoint (on a shared machine the
    loop's own wake-up lateness is added: allowed 10 ms) and ends in FAULT at rest."""
    core, arm, ep = arm_endpoint
    rows = back_and_forth(Q0, 0.5, LIMITS, 1000.0, 10.0)
    cfg = StreamConfig(ep, insecure_plaintext=True, state_timeout_s=0.5)
    with StreamerProcess(cfg, rows, LIMITS.names) as proc:
        end = time.monotonic() + 20
        while core.mode is not Mode.ACTIVE and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.5)
        proc.kill()
        end = time.monotonic() + 5
        while core.mode is not Mode.FAULT and time.monotonic() < end:
            time.sleep(0.01)
    assert core.reason is Code.WATCHDOG and core.mode is Mode.FAULT
    delay_ns = core.stop_decided_ns - core.last_valid_ns
    print(f"controller killed: stop decided {delay_ns / 1e6:.2f} ms after the last valid setpoint")
    assert delay_ns <= core.watchdog_ns + core.period_ns + 10_000_000, delay_ns
    np.testing.assert_allclose(arm.qd, 0.0, atol=1e-9)


def test_pause_resume_stop(arm_endpoint: tuple) -> None:
    """Pause slows to standstill (1 s smooth time scaling, inside the limits for a motion
    at half the limits) and holds (no watchdog); resume continues; stop ends the motion
    where it stands with the arm armed again."""
    core, arm, ep = arm_endpoint
    rows = back_and_forth(Q0, 0.5, LIMITS, 1000.0, 8.0)
    cfg = StreamConfig(ep, insecure_plaintext=True, ramp_s=1.0, state_timeout_s=0.5)
    with StreamerProcess(cfg, rows, LIMITS.names) as proc:
        end = time.monotonic() + 20
        while core.mode is not Mode.ACTIVE and time.monotonic() < end:
            time.sleep(0.01)
        proc.send("pause")
        time.sleep(1.3)
        held = arm.q.copy()
        time.sleep(0.2)
        assert core.mode is Mode.ACTIVE
        np.testing.assert_allclose(arm.q, held, atol=1e-9)
        proc.send("resume")
        time.sleep(0.5)
        assert np.max(np.abs(arm.q - held)) > 1e-3
        proc.send("stop")
        result = proc.wait(10)
    assert result is not None and result["code"] == "OK", result
    assert core.mode is Mode.ARMED and core.reason is Code.OK


def test_abort_stops_and_reports(arm_endpoint: tuple) -> None:
    core, _arm, ep = arm_endpoint
    rows = back_and_forth(Q0, 0.5, LIMITS, 1000.0, 8.0)
    cfg = StreamConfig(ep, insecure_plaintext=True, state_timeout_s=0.5)
    with StreamerProcess(cfg, rows, LIMITS.names) as proc:
        end = time.monotonic() + 20
        while core.mode is not Mode.ACTIVE and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.3)
        proc.send("abort")
        result = proc.wait(10)
    assert result is not None and result["code"] == "ABORTED"
    assert core.reason is Code.ABORTED


def test_refusals_are_results(arm_endpoint: tuple) -> None:
    _core, _arm, ep = arm_endpoint
    with Streamer(StreamConfig(ep, insecure_plaintext=True)) as s:
        res = s.stream(quintic_move(Q0, Q0 + 0.1, LIMITS, 1000.0), tuple(reversed(LIMITS.names)))
        assert res.code is Code.JOINT_MISMATCH
        with pytest.raises(InputError, match="q"):
            s.stream(np.zeros((3, 2)), LIMITS.names)
    with Streamer(
        StreamConfig("ipc:///tmp/rc-nobody", insecure_plaintext=True, handshake_timeout_s=0.3)
    ) as s:
        assert s.stream(np.array([Q0]), LIMITS.names).code is Code.ARM_UNREACHABLE


def test_controller_gone_streamer_aborts(arm_endpoint: tuple) -> None:
    """Specified: if the controlling process dies but its streaming process survives (the
    pipe to it closes), the streamer aborts: the arm stops under its jerk limits (ABORTED)."""
    core, arm, ep = arm_endpoint
    rows = back_and_forth(Q0, 0.5, LIMITS, 1000.0, 10.0)
    cfg = StreamConfig(ep, insecure_plaintext=True, state_timeout_s=0.5)
    proc = StreamerProcess(cfg, rows, LIMITS.names)
    try:
        end = time.monotonic() + 20
        while core.mode is not Mode.ACTIVE and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.3)
        proc.connection.close()  # what the controller's death does to the pipe
        end = time.monotonic() + 5
        while core.mode is not Mode.FAULT and time.monotonic() < end:
            time.sleep(0.01)
        assert core.reason is Code.ABORTED and core.mode is Mode.FAULT
        np.testing.assert_allclose(arm.qd, 0.0, atol=1e-9)
    finally:
        if proc.process.is_alive():
            proc.process.kill()
        proc.process.join(5)


class _RecordingCore(ArmCore):
    """An arm core that keeps ``(seq, t_apply_ns)`` of every setpoint it accepted."""

    applied: list[tuple[int, int]]

    def on_frames(
        self, peer: bytes, frames: Sequence[bytes], now_ns: int
    ) -> Welcome | Setpoint | Rejection | None:
        out = super().on_frames(peer, frames, now_ns)
        if isinstance(out, Setpoint):
            self.applied.append((out.seq, out.t_apply_ns))
        return out


@pytest.mark.parametrize("rate_hz", [250.0, 500.0])
def test_streams_at_250_and_500_hz(rate_hz: float) -> None:
    """A short move through the real streamer process and arm endpoint at a rate other than
    1 kHz: every setpoint sent is received (none lost), the arm ends at the last one, and
    the accepted setpoints lie on the rate's grid ``t0 + seq / rate_hz``."""
    d = short_dir()
    arm = IdealArm(LIMITS, Q0)
    core = _RecordingCore(arm, rate_hz, watchdog_s=0.2)
    core.applied = []
    core.arm_motion()
    ep = f"ipc://{d}/arm"
    rows = quintic_move(Q0, Q0 + 0.1, LIMITS, rate_hz)
    assert 0.3 < rows.shape[0] / rate_hz < 1.5  # a short motion
    with endpoint_thread(ArmEndpoint(core, ep, insecure_plaintext=True)):
        cfg = StreamConfig(ep, rate_hz, insecure_plaintext=True, state_timeout_s=0.5)
        with StreamerProcess(cfg, rows, LIMITS.names) as proc:
            result = proc.wait(20)
    assert result is not None and result["code"] == "OK", result
    c = core.counters
    assert result["sent"] == rows.shape[0]
    assert c.received == result["sent"], (c, result["sent"])  # nothing lost
    assert c.accepted + c.late == c.received and c.old == c.duplicate == 0, c
    assert core.mode is Mode.ARMED
    np.testing.assert_allclose(arm.q, rows[-1], atol=1e-9)
    seqs = np.array([s for s, _ in core.applied])
    t_apply = np.array([t for _, t in core.applied])
    assert seqs[-1] == rows.shape[0] - 1 and len(seqs) == c.accepted
    period_ns = round(1e9 / rate_hz)
    assert core.period_ns == period_ns
    np.testing.assert_array_equal(t_apply - t_apply[0], (seqs - seqs[0]) * period_ns)
