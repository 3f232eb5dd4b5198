"""The arm endpoint: an :class:`~cells.arm_core.ArmCore` behind two ZeroMQ sockets.

* **Stream socket** (ROUTER, bound at ``stream_endpoint``): Hello, setpoints, Abort and
  Bye come in from a streamer's DEALER; Welcome and one State per period go back to the
  session's peer.
* **Command socket** (ROUTER, bound at ``command_endpoint``): request/reply commands
  ``status``, ``arm``, ``reset``, ``estop``, ``release``, ``stats``, ``shutdown``.

Both sockets are CURVE servers behind the ZAP allowlist unless plain text was asked for
(:class:`~cells.security.ServerSecurity`). The loop ticks the arm at absolute deadlines
and handles messages as they arrive in between.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np
import zmq

from cells.arm_core import ArmCore
from cells.pacing import clock_ns, request_realtime, wait_until
from cells.protocol import (
    MAX_COMMAND_BYTES,
    MAX_STREAM_BYTES,
    Code,
    Rejection,
    Reply,
    Request,
    Welcome,
    decode_request,
    encode_reply,
    encode_state,
    encode_welcome,
)
from cells.security import ServerSecurity

__all__ = ["ArmEndpoint", "LatencyLog", "command_endpoint_for"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

PEER_TIMEOUT_NS = 2_000_000_000


def command_endpoint_for(stream_endpoint: str) -> str:
    """The default command endpoint beside a stream endpoint: TCP port + 1, or ``<path>.cmd``."""
    if stream_endpoint.startswith("tcp://"):
        host, port = stream_endpoint.rsplit(":", 1)
        return f"{host}:{int(port) + 1}"
    return stream_endpoint + ".cmd"


class LatencyLog:
    """Arrival statistics of setpoints: latency and inter-arrival time [ns]."""

    def __init__(self) -> None:
        self.latency: list[int] = []
        self.interval: list[int] = []
        self._last: int | None = None

    def add(self, now_ns: int, t_send_ns: int) -> None:
        """Record one setpoint received at ``now_ns`` that was sent at ``t_send_ns``."""
        self.latency.append(now_ns - t_send_ns)
        if self._last is not None:
            self.interval.append(now_ns - self._last)
        self._last = now_ns

    def clear(self) -> None:
        """Forget everything."""
        self.latency.clear()
        self.interval.clear()
        self._last = None

    def summary(self, period_ns: int) -> dict[str, float | int]:
        """Count, latency median/p99/max and jitter p99/max [us], late (> one period)."""
        lat = np.asarray(self.latency, dtype=np.float64) / 1e3
        jit = np.abs(np.asarray(self.interval, dtype=np.float64) - period_ns) / 1e3

        def pct(a: np.ndarray, p: float) -> float:
            return float(np.percentile(a, p)) if a.size else 0.0

        return {
            "received": int(lat.size),
            "late": int(np.count_nonzero(lat > period_ns / 1e3)),
            "latency_median_us": pct(lat, 50),
            "latency_p99_us": pct(lat, 99),
            "latency_max_us": float(lat.max()) if lat.size else 0.0,
            "jitter_p99_us": pct(jit, 99),
            "jitter_max_us": float(jit.max()) if jit.size else 0.0,
        }


class ArmEndpoint:
    """Serve one :class:`ArmCore` on a stream socket and a command socket.

    Args:
        core: The arm's core (owns the arm).
        stream_endpoint: Where the stream ROUTER binds, e.g. ``tcp://127.0.0.1:5555``.
        command_endpoint: Where the command ROUTER binds (default: see
            :func:`command_endpoint_for`).
        keys_dir: CURVE key directory; ``None`` with ``insecure_plaintext``.
        insecure_plaintext: Plain text, loopback only.

    Raises:
        SecurityError: CURVE cannot be set up (see :class:`~cells.security.ServerSecurity`).
    """

    def __init__(
        self,
        core: ArmCore,
        stream_endpoint: str,
        command_endpoint: str | None = None,
        keys_dir: str | None = None,
        insecure_plaintext: bool = False,
    ) -> None:
        self.core = core
        self.stream_endpoint = stream_endpoint
        self.command_endpoint = command_endpoint or command_endpoint_for(stream_endpoint)
        self.log = LatencyLog()
        self._ctx = zmq.Context()
        self._security: ServerSecurity | None = None
        self._running = False
        try:
            self._security = ServerSecurity(self._ctx, keys_dir, insecure_plaintext)
            self._stream = self._socket(self.stream_endpoint, MAX_STREAM_BYTES, hwm=10_000)
            self._command = self._socket(self.command_endpoint, MAX_COMMAND_BYTES, hwm=100)
        except BaseException:
            self.close()
            raise
        self._last_peer_ns = 0
        self.max_tick_ns = 0
        self._cpu0, self._wall0 = time.process_time(), clock_ns()
        self.max_tick_gap_ns = 0
        logger.info("arm endpoint: stream %s, commands %s", stream_endpoint, self.command_endpoint)

    def _socket(self, endpoint: str, max_bytes: int, hwm: int) -> zmq.Socket:
        s = self._ctx.socket(zmq.ROUTER)
        s.linger = 0
        s.sndhwm = hwm
        s.rcvhwm = hwm
        s.sndtimeo = 0
        s.maxmsgsize = max_bytes
        assert self._security is not None
        self._security.apply(s, endpoint)
        s.bind(endpoint)
        return s

    # ------------------------------------------------------------------ the loop
    def serve(
        self, should_stop: Callable[[], bool] | None = None, duration_s: float | None = None
    ) -> None:
        """Tick at the rate until ``shutdown``, ``should_stop()`` or ``duration_s`` elapses."""
        core = self.core
        period = core.period_ns
        start = clock_ns()
        end = start + int(duration_s * 1e9) if duration_s is not None else None
        k = 1
        last_tick = 0
        self._cpu0, self._wall0 = time.process_time(), start
        self._running = True
        while self._running:
            self._drain()
            now = clock_ns()
            deadline = start + k * period
            if now >= deadline:
                core.tick(now)
                self._send_state(now)
                done = clock_ns()
                self.max_tick_ns = max(self.max_tick_ns, done - now)
                if last_tick:
                    self.max_tick_gap_ns = max(self.max_tick_gap_ns, now - last_tick)
                last_tick = now
                k += 1
                if now - (start + k * period) > 20 * period:  # a long stall: skip, no burst
                    k = (now - start) // period + 1
                if (end is not None and now >= end) or (should_stop and should_stop()):
                    break
                continue
            wait_until(deadline, (self._stream, self._command), spin_ns=0)

    def _drain(self) -> None:
        for _ in range(1000):
            try:
                frames = self._stream.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._on_stream(frames)
        for _ in range(100):
            try:
                frames = self._command.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._on_command(frames)

    def _on_stream(self, frames: list[bytes]) -> None:
        now = clock_ns()
        peer, body = frames[0], frames[1:]
        if peer == self.core.peer:
            self._last_peer_ns = now
        out = self.core.on_frames(peer, body, now)
        if isinstance(out, Welcome):
            if out.code is Code.OK:
                self.log.clear()
                self._last_peer_ns = now
            self._send(self._stream, [peer, encode_welcome(out)])
        sp = self.core.last_decoded
        if sp is not None:  # every setpoint of the session, accepted or not
            self.log.add(now, sp.t_send_ns)
            self.core.last_decoded = None

    def _send_state(self, now: int) -> None:
        core = self.core
        if core.peer is None:
            return
        if now - self._last_peer_ns > PEER_TIMEOUT_NS and core.mode.value != "ACTIVE":
            core.peer = None
            return
        self._send(self._stream, [core.peer, encode_state(core.state(now))])

    @staticmethod
    def _send(socket: zmq.Socket, frames: list[bytes]) -> None:
        with contextlib.suppress(zmq.Again, zmq.ZMQError):  # a lost peer never blocks the arm
            socket.send_multipart(frames, zmq.NOBLOCK)

    def _on_command(self, frames: list[bytes]) -> None:
        envelope, body = frames[:-1], frames[-1:]
        if len(envelope) not in (1, 2) or (len(envelope) == 2 and envelope[1] != b""):
            return  # not a REQ or DEALER envelope: nothing to answer to
        req = decode_request(body)
        if isinstance(req, Rejection):
            reply = Reply(req.id, req.code, req.detail)
        else:
            try:
                reply = self.handle(req)
            except Exception as exc:  # never die on a bad request
                logger.exception("command %s failed", req.cmd)
                reply = Reply(req.id, Code.INTERNAL, f"{type(exc).__name__}: {exc}")
        self._send(self._command, [*envelope, encode_reply(reply)])

    def handle(self, req: Request) -> Reply:
        """Run one command; unknown commands get ``UNKNOWN_COMMAND`` listing the valid ones."""
        core = self.core
        now = clock_ns()
        actions: dict[str, Callable[[], Code]] = {
            "arm": core.arm_motion,
            "reset": core.reset,
            "estop": lambda: core.estop(now),
            "release": core.release,
            "status": lambda: Code.OK,
            "stats": lambda: Code.OK,
            "shutdown": self._shutdown,
        }
        action = actions.get(req.cmd)
        if action is None:
            return Reply(req.id, Code.UNKNOWN_COMMAND, f"valid: {', '.join(sorted(actions))}")
        code = action()
        data: dict[str, object] = core.status()
        if req.cmd == "stats":
            data = {
                "mode": str(core.mode),
                "reason": str(core.reason),
                "max_tick_us": self.max_tick_ns / 1e3,
                "max_tick_gap_us": self.max_tick_gap_ns / 1e3,
                "cpu_s": time.process_time() - self._cpu0,
                "wall_s": (clock_ns() - self._wall0) / 1e9,
                **self.log.summary(core.period_ns),
            }
        detail = "" if code is Code.OK else f"{req.cmd} not allowed in mode {core.mode}"
        return Reply(req.id, code, detail, data)

    def _shutdown(self) -> Code:
        self._running = False
        return Code.OK

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the sockets, the authenticator and the arm (idempotent)."""
        for name in ("_stream", "_command"):
            s = getattr(self, name, None)
            if s is not None:
                s.close(linger=0)
                setattr(self, name, None)
        if self._security is not None:
            self._security.close()
            self._security = None
        if not self._ctx.closed:
            self._ctx.destroy(linger=0)
        self.core.arm.close()

    def __enter__(self) -> ArmEndpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve_arm(
    robot: str,
    bind: str,
    rate_hz: float = 1000.0,
    keys_dir: str | None = None,
    insecure_plaintext: bool = False,
    watchdog_s: float = 0.020,
    command_bind: str | None = None,
    ready: Callable[[ArmEndpoint], None] | None = None,
    realtime_priority: int = 0,
    exit_with_parent: bool = False,
    tool: str | None = None,
    start: str | None = None,
) -> None:
    """Load ``robot``, simulate it in PyBullet and serve it until ``shutdown``.

    Args:
        robot: Arm model name.
        bind: Stream endpoint.
        rate_hz: Stream and physics rate [Hz].
        keys_dir: CURVE key directory.
        insecure_plaintext: Plain text, loopback only.
        watchdog_s: Watchdog [s].
        command_bind: Command endpoint (default: :func:`command_endpoint_for`).
        ready: Called once the sockets are bound.
        realtime_priority: SCHED_FIFO priority of this process, 0 for none.
        exit_with_parent: Stop serving when the parent process dies (benchmarks and
            tests start the arm as a child; an orphan must not keep a core busy).
        tool: Tool model on the flange; by default the arm's usual one
            (``default_tool`` in its ``arm.toml``).
        start: Named configuration of the arm (``[configurations]`` of its ``arm.toml``,
            e.g. ``ready``, where the cells' cycles start) to start at; by default ``home``
            (all zeros for a model without one).

    Raises:
        SecurityError: no key directory without ``insecure_plaintext``.
        UnknownNameError: an unknown ``robot``, ``tool`` or ``start`` (names the valid ones).
    """
    if realtime_priority > 0:
        request_realtime(realtime_priority)
    from planners.arm import default_tool, load_arm
    from sim.sim_arm import SimArm

    if insecure_plaintext is False and keys_dir is None:
        from cells.security import SecurityError

        raise SecurityError("no key directory: CURVE is on by default (see `cellctl keys`)")
    arm = load_arm(robot, tool if tool is not None else default_tool(robot))
    q0 = arm.configuration(start) if start is not None else None
    sim = SimArm(arm, rate_hz, q0)
    try:
        core = ArmCore(sim, rate_hz, watchdog_s)
    except BaseException:
        sim.close()
        raise
    with ArmEndpoint(core, bind, command_bind, keys_dir, insecure_plaintext) as endpoint:
        if ready is not None:
            ready(endpoint)
        gc.collect()
        gc.freeze()  # the models' objects never die: keep them out of collector passes
        parent = os.getppid()
        try:
            endpoint.serve(
                should_stop=(lambda: os.getppid() != parent) if exit_with_parent else None
            )
        finally:
            gc.unfreeze()  # collectable at exit again (frozen nanobind objects print "leaked")
