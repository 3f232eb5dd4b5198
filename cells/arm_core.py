"""The socket-free heart of the arm endpoint: sessions, checks, interpolation, stops.

:class:`ArmCore` takes raw frames from a peer (:meth:`ArmCore.on_frames`) and a clock
tick once per period (:meth:`ArmCore.tick`), and commands an
:class:`~cells.arm_interface.ArmInterface`. Everything time-dependent takes ``now_ns``
(the arm's monotonic clock) as an argument, so tests drive it with a simulated clock.

Modes::

    DISARMED --arm--> ARMED --first valid setpoint--> ACTIVE --final setpoint done--> ARMED
    ACTIVE --violation / watchdog / abort--> STOPPING --at rest--> FAULT --reset--> DISARMED
    any --estop--> ESTOP --release--> FAULT (reason ESTOP; reset and arm again)

Between accepted setpoints the arm interpolates on its own clock: inside ``[t_i, t_i+1]``
the cubic through the setpoints ``i-1 .. i+2`` (fewer at the ends; a straight line from
where the arm held to the first setpoint of a motion), so a missing setpoint is bridged
smoothly. When the buffer runs out it continues with the velocity and acceleration the
executed commands show, at constant acceleration (jerk zero), until setpoints come again
or the watchdog fires (``docs/protocol.md`` §3). A violation is never executed: the arm
runs a jerk-limited controlled stop (:func:`planners.stop.controlled_stop`) from the state
it is in, keeps the last messages for a post-mortem and waits for a reset.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from cells.arm_interface import ArmInterface
from cells.protocol import (
    Abort,
    Bye,
    Code,
    Counters,
    Hello,
    Rejection,
    Setpoint,
    State,
    Welcome,
    decode_stream,
)
from cells.setpoint_checks import CheckConfig, SetpointChecker, VerdictKind
from planners.errors import InputError
from planners.stop import StopProfile, controlled_stop

__all__ = ["ArmCore", "Mode", "PostMortemEntry"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class Mode(enum.StrEnum):
    """The arm endpoint's mode (see the module docstring for the transitions)."""

    DISARMED = "DISARMED"
    ARMED = "ARMED"
    ACTIVE = "ACTIVE"
    STOPPING = "STOPPING"
    FAULT = "FAULT"
    ESTOP = "ESTOP"


@dataclass(frozen=True)
class PostMortemEntry:
    """One received stream message kept for a post-mortem.

    Attributes:
        t_ns: Arrival time, arm clock [ns].
        raw: The frame's first 256 bytes.
        code: The verdict's code (``OK`` when accepted).
    """

    t_ns: int
    raw: bytes
    code: Code


class ArmCore:
    """Sessions, setpoint checks, interpolation and stops for one arm.

    Args:
        arm: The arm to command.
        rate_hz: Tick rate [Hz] (the stream rate).
        watchdog_s: Longest time without a valid setpoint while active [s].
        config: Tolerances of the setpoint checks.
        keep: Messages kept for the post-mortem.
    """

    def __init__(
        self,
        arm: ArmInterface,
        rate_hz: float = 1000.0,
        watchdog_s: float = 0.020,
        config: CheckConfig | None = None,
        keep: int = 64,
    ) -> None:
        if not (np.isfinite(rate_hz) and 0 < rate_hz <= 10_000):
            raise InputError(f"rate_hz: expected a number in (0, 10000], got {rate_hz!r}")
        if not (np.isfinite(watchdog_s) and watchdog_s > 0):
            raise InputError(f"watchdog_s: expected a positive number, got {watchdog_s!r}")
        self.arm = arm
        self.rate_hz = float(rate_hz)
        self.period_ns = round(1e9 / rate_hz)
        self.watchdog_ns = round(watchdog_s * 1e9)
        self.checker = SetpointChecker(arm.limits, config)
        self.mode = Mode.DISARMED
        self.reason = Code.OK
        self.reason_detail = ""
        self.peer: bytes | None = None
        self.session = 0
        self.counters = Counters()
        self.rejected = 0
        self.stop_started_ns: int | None = None
        self.stop_decided_ns: int | None = None
        self.last_decoded: Setpoint | None = None  # for arrival statistics
        self.last_valid_ns: int | None = None
        self._state_seq = 0
        self._recent: deque[PostMortemEntry] = deque(maxlen=keep)
        self.postmortem: tuple[PostMortemEntry, ...] = ()
        self._buffer: deque[tuple[int, NDArray[np.float64], bool]] = deque()
        self._executed: deque[tuple[int, NDArray[np.float64]]] = deque(maxlen=3)
        self._stop: StopProfile | None = None
        self._hold_knot_ns = -1
        self._extrapolate: (
            tuple[int, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None
        ) = None
        q, _ = arm.read()
        self._hold = q.copy()
        self._measured_q = q.copy()
        self._measured_qd = np.zeros_like(q)

    # ------------------------------------------------------------------ commands
    def arm_motion(self) -> Code:
        """Arm: DISARMED -> ARMED (ARMED stays ARMED). ``BAD_STATE`` in any other mode."""
        if self.mode is Mode.ARMED:
            return Code.OK
        if self.mode is not Mode.DISARMED:
            return Code.BAD_STATE
        self.mode = Mode.ARMED
        self._hold, _ = self.arm.read()
        return Code.OK

    def reset(self) -> Code:
        """Reset: FAULT, ARMED or DISARMED -> DISARMED; ``BAD_STATE`` in any other mode."""
        if self.mode in (Mode.ACTIVE, Mode.STOPPING, Mode.ESTOP):
            return Code.BAD_STATE
        self.mode = Mode.DISARMED
        self.reason, self.reason_detail = Code.OK, ""
        self._end_session()
        self._hold, _ = self.arm.read()
        return Code.OK

    def estop(self, now_ns: int) -> Code:
        """Emergency stop: stop at once, in any mode."""
        if self.mode is not Mode.ESTOP:
            self._freeze(Code.ESTOP, "emergency stop", now_ns)
        self.mode = Mode.ESTOP
        self._stop = None
        self._end_session()
        self.arm.emergency_stop()
        self._hold, _ = self.arm.read()
        return Code.OK

    def release(self) -> Code:
        """Release the emergency stop: ESTOP -> FAULT (never resumes motion by itself)."""
        if self.mode is not Mode.ESTOP:
            return Code.BAD_STATE
        self.mode = Mode.FAULT
        return Code.OK

    # ------------------------------------------------------------------ messages
    def hello(self, peer: bytes, msg: Hello, now_ns: int) -> Welcome:
        """Open a session for ``peer``; the reply says why not when it cannot."""
        code = Code.OK
        if msg.session == 0:
            code = Code.BAD_MESSAGE
        elif tuple(msg.joint_names) != tuple(self.arm.joint_names):
            code = Code.JOINT_MISMATCH
        elif abs(msg.rate_hz - self.rate_hz) > 1e-6 * self.rate_hz:
            code = Code.BAD_ARGUMENT
        elif self.mode in (Mode.ACTIVE, Mode.STOPPING) and peer != self.peer:
            code = Code.BUSY
        elif self.mode is not Mode.ARMED:
            code = Code.BAD_STATE
        if code is Code.OK:
            self.peer, self.session = peer, msg.session
            self.counters = Counters()
            self.checker.begin(msg.session, 1.0 / self.rate_hz)
            self._buffer.clear()
        return Welcome(
            msg.session,
            code,
            now_ns,
            msg.t_send_ns,
            str(self.mode),
            tuple(float(v) for v in self._measured_q),
        )

    def on_frames(
        self, peer: bytes, frames: Sequence[bytes], now_ns: int
    ) -> Welcome | Setpoint | Rejection | None:
        """Handle one stream message from ``peer``.

        Returns:
            A :class:`Welcome` to send back for a Hello; the accepted :class:`Setpoint`;
            a :class:`Rejection` for anything not accepted; ``None`` for Abort and Bye.
        """
        msg = decode_stream(frames)
        from_session = self.peer is not None and peer == self.peer
        if isinstance(msg, Rejection):
            return self._reject(msg, from_session, frames, now_ns)
        if isinstance(msg, Hello):
            return self.hello(peer, msg, now_ns)
        if not from_session or getattr(msg, "session", 0) != self.session or self.session == 0:
            self.rejected += 1
            return Rejection(Code.UNKNOWN_SESSION, "not this arm's session")
        if isinstance(msg, Setpoint):
            return self._setpoint(msg, frames, now_ns)
        if isinstance(msg, Abort):
            self._remember(frames, now_ns, Code.ABORTED)
            if self.mode is Mode.ACTIVE:
                self._begin_stop(Code.ABORTED, "abort requested", now_ns)
            return None
        if isinstance(msg, Bye):
            if self.mode is not Mode.ACTIVE:
                self._end_session()
            return None
        self.rejected += 1  # Welcome or State sent to an arm: not for it
        return Rejection(Code.BAD_MESSAGE, f"{type(msg).__name__} is not accepted by an arm")

    def _reject(
        self, rej: Rejection, from_session: bool, frames: Sequence[bytes], now_ns: int
    ) -> Rejection:
        self.rejected += 1
        if from_session:
            self._remember(frames, now_ns, rej.code)
            if self.mode is Mode.ACTIVE:
                self._begin_stop(rej.code, rej.detail, now_ns)
        return rej

    def _setpoint(self, sp: Setpoint, frames: Sequence[bytes], now_ns: int) -> Setpoint | Rejection:
        self.last_decoded = sp
        c = self.counters
        self.counters = c = replace(c, received=c.received + 1)
        active = self.mode in (Mode.ARMED, Mode.ACTIVE)
        last = self.checker.last_seq
        verdict = self.checker.check(sp, now_ns, self._measured_q, active)
        self._remember(frames, now_ns, verdict.code)
        if verdict.kind is VerdictKind.ACCEPT:
            gaps = max(0, sp.seq - last - 1) if last >= 0 else 0
            self.counters = replace(c, accepted=c.accepted + 1, gaps=c.gaps + gaps)
            self.last_valid_ns = now_ns
            if self.mode is Mode.ARMED:
                self.mode = Mode.ACTIVE
                self._executed.clear()
                # ramp from where the arm holds to the first setpoint
                self._buffer.append((now_ns, self._hold.copy(), False))
                self._hold_knot_ns = now_ns
            self._buffer.append((sp.t_apply_ns, np.array(sp.q), sp.final))
            return sp
        if verdict.kind is VerdictKind.DROP:
            if verdict.code is Code.LATE:
                self.counters = replace(c, late=c.late + 1)
            elif verdict.code is Code.DUPLICATE:
                self.counters = replace(c, duplicate=c.duplicate + 1)
            elif verdict.code is Code.OLD_SEQUENCE:
                self.counters = replace(c, old=c.old + 1)
            return Rejection(verdict.code, verdict.detail)
        self.rejected += 1
        if self.mode is Mode.ACTIVE:
            self._begin_stop(verdict.code, verdict.detail, now_ns)
        elif self.mode is Mode.ARMED:
            self.mode = Mode.FAULT
            self._fault(verdict.code, verdict.detail, now_ns)
        else:
            self.reason, self.reason_detail = verdict.code, verdict.detail
        return Rejection(verdict.code, verdict.detail)

    # ------------------------------------------------------------------ the period
    def tick(self, now_ns: int) -> None:
        """Run one period: read the arm, compute the target, command the arm."""
        q_meas, qd_meas = self.arm.read()
        self._measured_q, self._measured_qd = q_meas, qd_meas
        mode = self.mode
        if mode is Mode.ESTOP:
            self.arm.emergency_stop()
            return
        if mode is Mode.ACTIVE:
            assert self.last_valid_ns is not None
            if now_ns - self.last_valid_ns > self.watchdog_ns:
                self._begin_stop(
                    Code.WATCHDOG,
                    f"no valid setpoint for {(now_ns - self.last_valid_ns) / 1e6:.1f} ms",
                    now_ns,
                )
                mode = self.mode
            else:
                q, qd, done = self._interpolate(now_ns)
                self._command(now_ns, q, qd)
                if done:
                    self.mode = Mode.ARMED
                    self._hold = q
                    self._end_session(keep_peer=True)
                return
        if mode is Mode.STOPPING:
            assert self._stop is not None and self.stop_started_ns is not None
            t = (now_ns - self.stop_started_ns) * 1e-9
            q, qd, _ = self._stop.at(t)
            q = np.clip(q, self.arm.limits.lower, self.arm.limits.upper)
            self._command(now_ns, q, qd)
            if t >= self._stop.duration:
                self.mode = Mode.FAULT
                self._hold = q
                self._stop = None
            return
        self.arm.command(self._hold, np.zeros_like(self._hold))

    def _command(self, now_ns: int, q: NDArray[np.float64], qd: NDArray[np.float64]) -> None:
        self._executed.append((now_ns, q))
        self.arm.command(q, qd)

    def _interpolate(self, now_ns: int) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
        """Position and velocity at ``now_ns`` from the accepted setpoints.

        Inside ``[t_i, t_i+1]`` the cubic through the knots ``i-1 .. i+2`` (Lagrange; fewer
        knots at the ends), so a missing setpoint is bridged smoothly rather than by a
        chord whose corners would be jerk spikes; from the hold knot of the motion's start
        to its first setpoint, a straight line.
        """
        buf = self._buffer
        while len(buf) >= 3 and buf[2][0] <= now_ns:
            buf.popleft()
        i = 1 if len(buf) >= 2 and buf[1][0] <= now_ns else 0
        _ti, qi, final_i = buf[i]
        if i + 1 >= len(buf) or now_ns < buf[0][0]:
            if final_i:
                return qi.copy(), np.zeros_like(qi), True
            # Underrun: continue with the velocity and acceleration the executed commands
            # show (jerk zero, within limits) until setpoints come or the watchdog decides.
            if self._extrapolate is None:
                self._extrapolate = self._executed_state(now_ns)
            t_e, q_e, v_e, a_e = self._extrapolate
            tau = (now_ns - t_e) * 1e-9
            lim = self.arm.limits
            q = np.clip(q_e + v_e * tau + 0.5 * a_e * tau * tau, lim.lower, lim.upper)
            return q, v_e + a_e * tau, False
        self._extrapolate = None
        if buf[i][0] == self._hold_knot_ns:
            knots = [buf[i], buf[i + 1]]  # from where the arm held to the first setpoint
        else:
            lo = i - 1 if i >= 1 and buf[i - 1][0] != self._hold_knot_ns else i
            knots = [buf[m] for m in range(lo, min(len(buf), i + 3))]
        ts = np.array([(k[0] - now_ns) * 1e-9 for k in knots])
        qs = np.array([k[1] for k in knots])
        w, dw = _lagrange(ts)
        return w @ qs, dw @ qs, False

    def _executed_state(
        self, now_ns: int
    ) -> tuple[int, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(t, q, v, a)`` of the last executed command, from the last three."""
        ex = self._executed
        zero = np.zeros_like(self._hold)
        if len(ex) >= 3:
            (t0, q0), (t1, q1), (t2, q2) = ex
            v1 = (q1 - q0) / ((t1 - t0) * 1e-9)
            v2 = (q2 - q1) / ((t2 - t1) * 1e-9)
            a = (v2 - v1) / ((t2 - t0) * 0.5e-9)
            return t2, q2, v2 + a * ((t2 - t1) * 0.5e-9), a
        if ex:
            return ex[-1][0], ex[-1][1], zero, zero
        return now_ns, self._hold, zero, zero

    def _begin_stop(self, code: Code, detail: str, now_ns: int) -> None:
        # The stop starts from the last executed command, at its time, with the velocity
        # and acceleration the executed commands show there (or the extrapolation's).
        if self._extrapolate is not None:
            t_e, q_e, v_e, a_e = self._extrapolate
            tau = (self._executed[-1][0] - t_e) * 1e-9 if self._executed else 0.0
            start, q, v, a = (
                t_e + round(tau * 1e9),
                q_e + v_e * tau + 0.5 * a_e * tau**2,
                v_e + a_e * tau,
                a_e,
            )
            self._extrapolate = None
        else:
            start, q, v, a = self._executed_state(now_ns)
        lim = self.arm.limits
        v = np.clip(v, -lim.velocity, lim.velocity)
        self._stop = controlled_stop(q, v, a, lim.acceleration, lim.jerk)
        self.stop_started_ns = start
        self.stop_decided_ns = now_ns
        self.mode = Mode.STOPPING
        self._fault(code, detail, now_ns)
        self._end_session(keep_peer=True)

    def _fault(self, code: Code, detail: str, now_ns: int) -> None:
        self.reason, self.reason_detail = code, detail
        self._freeze(code, detail, now_ns)
        logger.warning("arm fault %s: %s", code, detail)

    def _freeze(self, code: Code, detail: str, now_ns: int) -> None:
        self.postmortem = tuple(self._recent)

    def _remember(self, frames: Sequence[bytes], now_ns: int, code: Code) -> None:
        raw = bytes(frames[0])[:256] if frames else b""
        self._recent.append(PostMortemEntry(now_ns, raw, code))

    def _end_session(self, keep_peer: bool = False) -> None:
        self.checker.end()
        self._buffer.clear()
        if not keep_peer:
            self.peer, self.session = None, 0

    # ------------------------------------------------------------------ reporting
    def state(self, now_ns: int) -> State:
        """The state message for this period."""
        self._state_seq += 1
        return State(
            self.session,
            self._state_seq,
            now_ns,
            str(self.mode),
            self.reason,
            self.checker.last_seq,
            tuple(self._measured_q.tolist()),
            tuple(self._measured_qd.tolist()),
            self.counters,
        )

    def status(self) -> dict[str, object]:
        """A msgpack-ready summary for the ``status`` command."""
        c = self.counters
        return {
            "mode": str(self.mode),
            "reason": str(self.reason),
            "detail": self.reason_detail,
            "session": self.session,
            "joint_names": list(self.arm.joint_names),
            "q": self._measured_q.tolist(),
            "qd": self._measured_qd.tolist(),
            "counters": {
                "received": c.received,
                "accepted": c.accepted,
                "late": c.late,
                "old": c.old,
                "duplicate": c.duplicate,
                "gaps": c.gaps,
                "rejected": self.rejected,
            },
            "stop_started_ns": self.stop_started_ns or 0,
            "stop_decided_ns": self.stop_decided_ns or 0,
            "last_valid_ns": self.last_valid_ns or 0,
            "postmortem": [[e.t_ns, e.raw.hex(), str(e.code)] for e in self.postmortem],
        }


def _lagrange(ts: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weights of the Lagrange polynomial through knots at times ``ts`` (relative to the
    evaluation time, so it is evaluated at 0) for its value and its first derivative."""
    t = [float(x) for x in ts]
    m = len(t)
    w = [0.0] * m
    dw = [0.0] * m
    for j in range(m):
        others = [t[n] for n in range(m) if n != j]
        denom = 1.0
        num = 1.0
        for x in others:
            denom *= t[j] - x
            num *= -x
        w[j] = num / denom
        # d/dx of prod (x - t_n) at x = 0: sum over l of the product of the others
        d = 0.0
        for skip in range(m - 1):
            p = 1.0
            for n, x in enumerate(others):
                if n != skip:
                    p *= -x
            d += p
        dw[j] = d / denom
    return np.array(w), np.array(dw)
