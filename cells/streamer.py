"""The setpoint streamer: paces a sampled motion to an arm endpoint at a fixed rate.

:class:`Streamer` owns a ZeroMQ context and a DEALER socket connected to an arm
endpoint's stream socket. :meth:`Streamer.stream` opens a session (Hello/Welcome, which
also measures the clock offset), then sends one setpoint per period at absolute
deadlines ``t0 + k * period`` (no drift), each applying ``lookahead`` later on the arm's
clock, and reads the arm's State messages as they come. It supports pause, resume
(a smooth time scaling to and from standstill), stop (pause, then end the motion where
it stands) and abort (the arm stops at once under its jerk limits), and detects a lost
arm when no State arrives within ``state_timeout_s``.

A sender thread inside a busy Python process starves, so the streamer runs in its own
process: :class:`StreamerProcess` starts it with ``multiprocessing`` (spawn) and talks
to it over a pipe.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq
from numpy.typing import NDArray

from cells.pacing import clock_ns, request_realtime, wait_until
from cells.protocol import (
    Abort,
    Bye,
    Code,
    Hello,
    Setpoint,
    State,
    Welcome,
    decode_stream,
    encode_abort,
    encode_bye,
    encode_hello,
    encode_setpoint,
)
from cells.security import apply_client
from cells.stream_faults import FaultPlan, FaultyLink
from planners.errors import InputError

__all__ = ["StreamConfig", "StreamResult", "Streamer", "StreamerProcess"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_ACTIVE_MODES = ("ARMED", "ACTIVE")


@dataclass(frozen=True)
class StreamConfig:
    """How to reach the arm and how to pace.

    Attributes:
        endpoint: The arm's stream endpoint, e.g. ``tcp://127.0.0.1:5555``.
        rate_hz: Setpoint rate [Hz] (must equal the arm's).
        keys_dir: CURVE key directory (``None`` with ``insecure_plaintext``).
        insecure_plaintext: Plain text (loopback only).
        client_secret: Another client secret key file (tests of the allowlist).
        lookahead_s: How far ahead of its apply time a setpoint is sent [s]; keep it
            below the arm's watchdog.
        state_timeout_s: No State for this long: the arm is lost [s].
        handshake_timeout_s: Wait this long for the Welcome [s].
        ramp_s: Time to slow to standstill on pause or stop, and to resume [s].
        spin_us: Busy-wait this long before each deadline [us].
        faults: Fault injection on the outgoing setpoints (tests).
        realtime_priority: SCHED_FIFO priority of the streamer process, 0 for none.
    """

    endpoint: str
    rate_hz: float = 1000.0
    keys_dir: str | None = None
    insecure_plaintext: bool = False
    client_secret: str | None = None
    lookahead_s: float = 0.010
    state_timeout_s: float = 0.050
    handshake_timeout_s: float = 2.0
    ramp_s: float = 1.0
    spin_us: float = 100.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    realtime_priority: int = 0

    def __post_init__(self) -> None:
        for name in ("rate_hz", "lookahead_s", "state_timeout_s", "handshake_timeout_s", "ramp_s"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"{name}: expected a positive number, got {v!r}")


@dataclass(frozen=True)
class StreamResult:
    """What happened to one motion.

    Attributes:
        code: ``OK`` (motion done, arm armed again), the arm's fault code, ``ABORTED``,
            ``ARM_LOST``, ``ARM_UNREACHABLE`` or the Welcome's refusal.
        detail: Human-readable detail.
        sent: Distinct setpoints sent.
        states: State messages received.
        mode: The arm's last reported mode.
        counters: The arm's last reported setpoint counters.
        detected_ns: When the streamer decided the outcome [ns, CLOCK_MONOTONIC].
        faults: Injected faults by kind.
        cpu_s: CPU time of the streaming process during the motion [s].
    """

    code: Code
    detail: str
    sent: int
    states: int
    mode: str
    counters: dict[str, int]
    detected_ns: int
    faults: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain types (for pipes and JSON)."""
        d = asdict(self)
        d["code"] = str(self.code)
        return d


def _catmull_rom(rows: NDArray[np.float64], s: float) -> NDArray[np.float64]:
    """Rows at fractional index ``s``: the C1 cubic through the neighbouring rows.

    Whole indices return the row itself; between rows the curve has no corners, so a
    slowed-down (paused) motion has no jerk spikes.
    """
    n = rows.shape[0]
    i = min(int(s), n - 1)
    f = s - i
    if f <= 0.0 or n == 1:
        return rows[i]
    p0, p1 = rows[max(i - 1, 0)], rows[i]
    p2, p3 = rows[min(i + 1, n - 1)], rows[min(i + 2, n - 1)]
    return p1 + f * (
        0.5 * (p2 - p0)
        + f
        * ((p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3) + f * (-0.5 * p0 + 1.5 * p1 - 1.5 * p2 + 0.5 * p3))
    )


def _smootherstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


class Streamer:
    """A connection to one arm endpoint's stream socket.

    Args:
        config: Endpoint, rate, security and pacing.

    Raises:
        SecurityError: keys missing or exposed, or plain text off loopback.
    """

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self._ctx = zmq.Context()
        try:
            s = self._ctx.socket(zmq.DEALER)
            s.linger = 0
            s.sndhwm = 10_000
            s.rcvhwm = 10_000
            s.sndtimeo = 0
            s.immediate = True
            apply_client(
                s, config.endpoint, config.keys_dir, config.insecure_plaintext,
                config.client_secret,
            )  # fmt: skip
            s.connect(config.endpoint)
        except BaseException:
            self._ctx.destroy(linger=0)
            raise
        self._sock = s
        self.last_state: State | None = None
        self.states = 0
        self._seen_active = False
        self._last_state_ns = clock_ns()

    # ------------------------------------------------------------------ session
    def handshake(self, session: int, joint_names: tuple[str, ...]) -> tuple[Welcome | None, int]:
        """Send Hello until a Welcome arrives or the timeout; returns it and the clock offset.

        The offset [ns] is arm clock minus local clock, estimated as in NTP (half the
        round trip). ``(None, 0)`` when no Welcome came.
        """
        cfg = self.config
        end = clock_ns() + int(cfg.handshake_timeout_s * 1e9)
        samples: list[tuple[int, Welcome]] = []
        offsets: list[int] = []
        while clock_ns() < end:
            t_send = clock_ns()
            hello = Hello(session, joint_names, cfg.rate_hz, t_send)
            try:
                self._sock.send(encode_hello(hello), zmq.NOBLOCK)
            except zmq.Again:
                time.sleep(0.02)  # not connected yet (immediate): retry
                continue
            retry = min(end, clock_ns() + 200_000_000)
            while clock_ns() < retry:
                if not self._sock.poll(20):
                    continue
                msg = decode_stream([self._sock.recv()])
                t_recv = clock_ns()
                if isinstance(msg, Welcome) and msg.session == session:
                    if msg.code is not Code.OK:
                        return msg, 0
                    samples.append((t_recv - msg.t_echo_ns, msg))
                    offset = msg.t_arm_ns - (msg.t_echo_ns + t_recv) // 2
                    offsets.append(offset)
                    break
            if len(samples) >= 8:
                break
        if not samples:
            return None, 0
        # NTP-style: the round trip with the least delay gives the best offset
        best = min(range(len(samples)), key=lambda i: samples[i][0])
        return samples[best][1], offsets[best]

    def _drain(self) -> None:
        while True:
            try:
                raw = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            msg = decode_stream([raw])
            if isinstance(msg, State):
                self.last_state = msg
                self.states += 1
                self._last_state_ns = clock_ns()
                if msg.mode == "ACTIVE":
                    self._seen_active = True

    def _send(self, payload: bytes) -> bool:
        try:
            self._sock.send(payload, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    # ------------------------------------------------------------------ streaming
    def stream(
        self,
        q: npt.ArrayLike,
        joint_names: tuple[str, ...],
        session: int | None = None,
        control: Connection | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> StreamResult:
        """Stream ``q`` (N, dof), one row per period, then wait for the arm to finish.

        Args:
            q: (N, dof) positions [rad] sampled at ``rate_hz``; row 0 must be where the
                arm stands.
            joint_names: The column order (must equal the arm's).
            session: Session id (default: from the clock).
            control: A pipe end that may receive ``"pause"``, ``"resume"``, ``"stop"``
                and ``"abort"``.
            on_event: Called with progress events (``{"event": "progress", ...}``).

        Returns:
            The outcome; never raises for what the arm or the network does.
        """
        rows = np.ascontiguousarray(q, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] != len(joint_names):
            raise InputError(f"q: expected (N, {len(joint_names)}), got {rows.shape}")
        cfg = self.config
        session = session or (time.time_ns() & ((1 << 62) - 1)) | 1
        cpu0 = time.process_time()
        welcome, offset = self.handshake(session, joint_names)
        link = FaultyLink(cfg.faults)

        def result(code: Code, detail: str, sent: int) -> StreamResult:
            st = self.last_state
            return StreamResult(
                code,
                detail,
                sent,
                self.states,
                st.mode if st else "",
                asdict(st.counters) if st else {},
                clock_ns(),
                dict(link.counts),
                time.process_time() - cpu0,
            )

        if welcome is None:
            return result(Code.ARM_UNREACHABLE, f"no Welcome from {cfg.endpoint}", 0)
        if welcome.code is not Code.OK:
            return result(welcome.code, f"arm refused the session in mode {welcome.mode}", 0)
        gap = float(np.max(np.abs(rows[0] - np.asarray(welcome.q))))
        period = round(1e9 / cfg.rate_hz)
        ahead = max(1, round(cfg.lookahead_s * cfg.rate_hz)) * period
        t0_local = clock_ns() + period  # first send
        # Send half a period after the arm's tick, so setpoints arrive while it is idle.
        end = clock_ns() + 100_000_000
        while self.last_state is None and clock_ns() < end:
            if self._sock.poll(5):
                self._drain()
        if self.last_state is not None:
            want = (self.last_state.t_arm_ns + period // 2) % period
            t0_local += (want - (t0_local + offset) % period) % period
        t0_apply = t0_local + offset + ahead
        spin = int(cfg.spin_us * 1e3)
        fds = [control.fileno()] if control is not None else []
        n = rows.shape[0]
        s = 0.0  # path position in rows
        sigma, sigma_from, sigma_to = 1.0, 1.0, 1.0
        ramp_n = max(1, round(cfg.ramp_s * cfg.rate_hz))
        ramp_k0 = -ramp_n
        pending: float | None = None  # the speed asked for next (0 pause/stop, 1 resume)
        ending = ""  # "", "stop", "abort"
        k = 0
        self._last_state_ns = clock_ns()
        self._seen_active = False
        logger.info("session %d: %d setpoints, start gap %.2g rad", session, n, gap)
        while True:
            deadline = t0_local + k * period
            if wait_until(deadline, (self._sock,), fds, spin):
                self._drain()
                while control is not None and control.poll():
                    try:
                        cmd = control.recv()
                    except (EOFError, OSError):  # the controller is gone: abort
                        cmd, control, fds = "abort", None, []
                    if cmd in ("pause", "stop") and not ending:
                        pending = 0.0
                        ending = "stop" if cmd == "stop" else ""
                    elif cmd == "resume" and not ending:
                        pending = 1.0
                    elif cmd == "abort":
                        ending = "abort"
                st = self.last_state
                if st is not None and st.mode not in _ACTIVE_MODES and st.seq > 0 and k > 0:
                    return result(Code(st.reason), f"arm went {st.mode}", k)
                continue
            now = clock_ns()
            if now - self._last_state_ns > cfg.state_timeout_s * 1e9:
                return result(
                    Code.ARM_LOST,
                    f"no state from the arm for {(now - self._last_state_ns) / 1e6:.1f} ms",
                    k,
                )
            if ending == "abort":
                self._send(encode_abort(Abort(session, now + offset)))
                self._wait_mode(("STOPPING", "FAULT", "ESTOP"), 1.0)
                return result(Code.ABORTED, "aborted on request", k)
            if pending is not None and k - ramp_k0 >= ramp_n:
                # a new ramp starts only when the last one is done: the speed's derivative
                # stays continuous (a ramp reversed half way would be a jerk spike)
                sigma_from, sigma_to, ramp_k0, pending = sigma, pending, k, None
            sigma = sigma_from + (sigma_to - sigma_from) * _smootherstep((k - ramp_k0) / ramp_n)
            if k > 0:
                s = min(s + sigma, n - 1.0)
            qk = _catmull_rom(rows, s)
            final = s >= n - 1.0 or (ending == "stop" and sigma == 0.0)
            payload = encode_setpoint(
                Setpoint(session, k, now + offset, t0_apply + k * period, tuple(qk.tolist()), final)
            )
            for p in link.push(payload, now) if cfg.faults.any else [payload]:
                self._send(p)
            k += 1
            if on_event is not None and k % 100 == 0:
                on_event({"event": "progress", "sent": k, "s": s, "n": n})
            if final:
                break
        # flush delayed payloads, then wait for the arm to finish the motion
        end = clock_ns() + int(2e9)
        done = False
        while clock_ns() < end:
            for p in link.due(clock_ns()):
                self._send(p)
            if self._sock.poll(2):
                self._drain()
            st = self.last_state
            if self._seen_active and st is not None and st.mode == "ARMED":
                done = True
                break
            if st is not None and st.mode not in _ACTIVE_MODES:
                return result(Code(st.reason), f"arm went {st.mode}", k)
            if clock_ns() - self._last_state_ns > cfg.state_timeout_s * 1e9:
                return result(Code.ARM_LOST, "no state from the arm", k)
        self._send(encode_bye(Bye(session)))
        if not done:  # e.g. every setpoint arrived late: the arm never moved
            return result(Code.BAD_STATE, "the arm did not confirm the motion", k)
        return result(Code.OK, "stopped on request" if ending == "stop" else "motion done", k)

    def _wait_mode(self, modes: tuple[str, ...], timeout_s: float) -> None:
        end = clock_ns() + int(timeout_s * 1e9)
        while clock_ns() < end:
            if self._sock.poll(2):
                self._drain()
            if self.last_state is not None and self.last_state.mode in modes:
                return

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the socket and context (idempotent)."""
        if not self._ctx.closed:
            self._sock.close(linger=0)
            self._ctx.term()

    def __enter__(self) -> Streamer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _quiet(conn: Connection) -> Callable[[dict[str, Any]], None]:
    def send(event: dict[str, Any]) -> None:
        # if the controller is gone, the control pipe's EOF aborts the run
        with contextlib.suppress(BrokenPipeError, OSError):
            conn.send(event)

    return send


def _process_main(
    config: StreamConfig,
    q: NDArray[np.float64],
    joint_names: tuple[str, ...],
    conn: Connection,
) -> None:
    """The streamer process: stream, report events and the result over ``conn``."""
    if config.realtime_priority > 0:
        request_realtime(config.realtime_priority)
    try:
        with Streamer(config) as streamer:
            conn.send({"event": "started", "t_ns": clock_ns()})
            gc.collect()
            gc.freeze()
            res = streamer.stream(q, joint_names, control=conn, on_event=_quiet(conn))
            conn.send({"event": "done", **res.to_dict()})  # before closing the socket
    except Exception as exc:  # report, never hang the controller
        conn.send({"event": "done", "code": str(Code.INTERNAL), "detail": repr(exc)})
    finally:
        gc.unfreeze()  # collectable at exit again (frozen nanobind objects print "leaked")
        conn.close()


class StreamerProcess:
    """A :class:`Streamer` in its own process (spawned), controlled over a pipe.

    Args:
        config: As for :class:`Streamer`.
        q: (N, dof) positions [rad] at ``config.rate_hz``.
        joint_names: Column order of ``q``.
    """

    def __init__(
        self, config: StreamConfig, q: npt.ArrayLike, joint_names: tuple[str, ...]
    ) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_process_main,
            args=(config, np.asarray(q, dtype=np.float64), tuple(joint_names), child),
            daemon=True,
        )
        self.process.start()
        child.close()
        self.result: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []

    @property
    def connection(self) -> Connection:
        """The controller's end of the pipe (for polling alongside other sockets)."""
        return self._conn

    def send(self, command: str) -> None:
        """``"pause"``, ``"resume"``, ``"stop"`` or ``"abort"``."""
        if command not in ("pause", "resume", "stop", "abort"):
            raise InputError(f"command: expected pause, resume, stop or abort, got {command!r}")
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(command)

    def poll(self, timeout_s: float = 0.0) -> dict[str, Any] | None:
        """Read pending events; returns the result once the streamer is done."""
        try:
            while self.result is None and self._conn.poll(timeout_s):
                ev = self._conn.recv()
                self.events.append(ev)
                if ev.get("event") == "done":
                    self.result = ev
                timeout_s = 0.0
        except (EOFError, OSError):
            if self.result is None:
                self.result = {
                    "event": "done",
                    "code": str(Code.INTERNAL),
                    "detail": "streamer process died",
                }
        return self.result

    def wait(self, timeout_s: float) -> dict[str, Any] | None:
        """Wait for the result up to ``timeout_s`` [s]."""
        end = time.monotonic() + timeout_s
        while self.result is None and time.monotonic() < end:
            self.poll(min(0.05, max(0.0, end - time.monotonic())))
        return self.result

    def kill(self) -> None:
        """Kill the streamer process (fault injection: controller killed)."""
        self.process.kill()

    def close(self) -> None:
        """Terminate the process if still running and close the pipe."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(2.0)
        self._conn.close()

    def __enter__(self) -> StreamerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
