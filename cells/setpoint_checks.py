"""The checks every setpoint passes before an arm may execute it (SPEC 2.5).

:class:`SetpointChecker` holds the per-session history it needs (last sequence number,
the last accepted setpoints) and returns a :class:`Verdict` for each decoded setpoint:

* ``ACCEPT``: execute it.
* ``DROP``: not executed, counted, not a fault (old or duplicate sequence number, too
  late, another session).
* ``FAULT``: not executed; the arm must stop under its jerk limits and wait for a
  reset (bad time stamp, shape, non-finite value, position limit, velocity,
  acceleration or jerk discontinuity, first setpoint away from the measured position,
  arm not active).

The checks run in the order of the specification; framing and peer checks happen
before decoding (see :mod:`cells.protocol` and :mod:`cells.arm_endpoint`). It is plain
numpy, no sockets, so the fuzz tests run it hundreds of thousands of times a minute.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from cells.protocol import Code, Setpoint
from planners.errors import InputError
from planners.limits import JointLimits

__all__ = ["CheckConfig", "SetpointChecker", "Verdict", "VerdictKind"]


class VerdictKind(enum.Enum):
    """What to do with a setpoint."""

    ACCEPT = "accept"
    DROP = "drop"
    FAULT = "fault"


@dataclass(frozen=True)
class Verdict:
    """The outcome of :meth:`SetpointChecker.check` with the reason code."""

    kind: VerdictKind
    code: Code = Code.OK
    detail: str = ""


ACCEPTED = Verdict(VerdictKind.ACCEPT)


@dataclass(frozen=True)
class CheckConfig:
    """Tolerances of the checks.

    Attributes:
        margin: Factor on the velocity, acceleration and jerk limits (finite differences
            of a motion inside the limits stay inside them; the margin absorbs rounding).
        start_tolerance: Largest distance of the first setpoint from the measured
            position, per joint [rad].
        max_lead_s: Largest time a setpoint may apply ahead of its arrival [s].
        late_s: A setpoint arriving more than this after its apply time is late [s].
    """

    margin: float = 1.05
    start_tolerance: float = 0.01
    max_lead_s: float = 0.5
    late_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("margin", "start_tolerance", "max_lead_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a positive number, got {value!r}")
        if not (math.isfinite(self.late_s) and self.late_s >= 0):
            raise InputError(f"late_s: expected a number >= 0, got {self.late_s!r}")


class SetpointChecker:
    """Session, sequence, age, shape, finiteness, limits and discontinuity checks.

    Args:
        limits: The arm's joint limits (positions [rad], velocity [rad/s], acceleration
            [rad/s^2], jerk [rad/s^3]).
        config: Tolerances.
    """

    def __init__(self, limits: JointLimits, config: CheckConfig | None = None) -> None:
        self.limits = limits
        self.config = config or CheckConfig()
        self._vmax = limits.velocity * self.config.margin + 1e-9
        self._amax = limits.acceleration * self.config.margin + 1e-6
        self._jmax = limits.jerk * self.config.margin + 1e-3
        self.session = 0
        self.last_seq = -1
        self._period = 1e-3
        # (t [s], q) of the last accepted setpoints, oldest first; at most 3.
        self._history: deque[tuple[float, NDArray[np.float64]]] = deque(maxlen=3)

    @property
    def dof(self) -> int:
        """Number of joints."""
        return self.limits.dof

    def begin(self, session: int, period_s: float) -> None:
        """Start checking a new session (a new motion): no sequence, no history.

        Args:
            session: The session id, > 0.
            period_s: The stream period [s]; the first setpoint is checked as if the arm
                had rested at it for two periods.
        """
        self.session = session
        self._period = float(period_s)
        self.last_seq = -1
        self._history.clear()

    def end(self) -> None:
        """Close the session: every later setpoint is dropped as of an unknown session."""
        self.session = 0
        self.last_seq = -1
        self._history.clear()

    def check(
        self,
        sp: Setpoint,
        now_ns: int,
        measured_q: npt.ArrayLike,
        active: bool,
    ) -> Verdict:
        """Check one setpoint; on ``ACCEPT`` it becomes the newest accepted one.

        Args:
            sp: The decoded setpoint.
            now_ns: Arrival time on the arm clock [ns].
            measured_q: (dof,) measured joint positions [rad] (for the first setpoint).
            active: Whether the arm accepts setpoints (armed or active).

        Returns:
            The verdict with a reason code.
        """
        cfg = self.config
        # session and sequence
        if self.session == 0 or sp.session != self.session:
            return Verdict(VerdictKind.DROP, Code.UNKNOWN_SESSION, f"session {sp.session}")
        if sp.seq == self.last_seq:
            return Verdict(VerdictKind.DROP, Code.DUPLICATE, f"seq {sp.seq}")
        if sp.seq < self.last_seq:
            return Verdict(VerdictKind.DROP, Code.OLD_SEQUENCE, f"seq {sp.seq} < {self.last_seq}")
        # age
        t_apply = sp.t_apply_ns * 1e-9
        now = now_ns * 1e-9
        if now - t_apply > cfg.late_s:
            return Verdict(
                VerdictKind.DROP, Code.LATE, f"seq {sp.seq} {1e3 * (now - t_apply):.3f} ms late"
            )
        if t_apply - now > cfg.max_lead_s:
            return Verdict(VerdictKind.FAULT, Code.BAD_TIME, f"applies {t_apply - now:.3f} s ahead")
        if self._history and t_apply <= self._history[-1][0]:
            return Verdict(VerdictKind.FAULT, Code.BAD_TIME, "apply time not increasing")
        # shape
        if len(sp.q) != self.dof:
            return Verdict(
                VerdictKind.FAULT, Code.SHAPE, f"{len(sp.q)} joints, expected {self.dof}"
            )
        q = np.array(sp.q, dtype=np.float64)
        if not np.all(np.isfinite(q)):
            return Verdict(VerdictKind.FAULT, Code.NOT_FINITE, "q has NaN or infinity")
        lim = self.limits
        if np.any(q < lim.lower) or np.any(q > lim.upper):
            j = int(np.argmax((q < lim.lower) | (q > lim.upper)))
            return Verdict(
                VerdictKind.FAULT, Code.POSITION_LIMIT, f"{lim.names[j]} = {q[j]:.6g} rad"
            )
        first = not self._history
        if first:
            mq = np.asarray(measured_q, dtype=np.float64)
            err = np.abs(q - mq)
            if not np.all(err <= cfg.start_tolerance):
                j = int(np.argmax(err))
                return Verdict(
                    VerdictKind.FAULT,
                    Code.START_MISMATCH,
                    f"{lim.names[j]} {err[j]:.4g} rad from the measured position",
                )
        else:
            verdict = self._discontinuity(t_apply, q)
            if verdict is not None:
                return verdict
        # the arm's state
        if not active:
            return Verdict(VerdictKind.FAULT, Code.NOT_ACTIVE, "arm not armed")
        if first:
            # As if the arm had rested at q: the start must begin from rest.
            self._history.extend((t_apply - k * self._period, q) for k in (2, 1))
        self._history.append((t_apply, q))
        self.last_seq = sp.seq
        return ACCEPTED

    def _discontinuity(self, t: float, q: NDArray[np.float64]) -> Verdict | None:
        h = self._history
        t1, q1 = h[-1]
        v = (q - q1) / (t - t1)
        if np.any(np.abs(v) > self._vmax):
            return self._limit(Code.VELOCITY_LIMIT, v, self._vmax, "rad/s")
        if len(h) >= 2:
            t2, q2 = h[-2]
            v1 = (q1 - q2) / (t1 - t2)
            d2 = (v - v1) / (t - t2)  # second divided difference
            a = 2.0 * d2
            if np.any(np.abs(a) > self._amax):
                return self._limit(Code.ACCELERATION_LIMIT, a, self._amax, "rad/s^2")
            if len(h) >= 3:
                t3, q3 = h[-3]
                v2 = (q2 - q3) / (t2 - t3)
                d2_prev = (v1 - v2) / (t1 - t3)
                jerk = 6.0 * (d2 - d2_prev) / (t - t3)
                if np.any(np.abs(jerk) > self._jmax):
                    return self._limit(Code.JERK_LIMIT, jerk, self._jmax, "rad/s^3")
        return None

    def _limit(
        self, code: Code, value: NDArray[np.float64], bound: NDArray[np.float64], unit: str
    ) -> Verdict:
        j = int(np.argmax(np.abs(value) - bound))
        return Verdict(
            VerdictKind.FAULT,
            code,
            f"{self.limits.names[j]} {abs(value[j]):.6g} {unit} > {bound[j]:.6g}",
        )
