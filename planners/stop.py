"""A controlled stop: bring every joint from its current motion to rest under jerk limits.

This is what an arm does after a violation, a watchdog timeout or an abort: from the
state it is in (position, velocity, acceleration), decelerate to zero velocity and zero
acceleration without exceeding the acceleration and jerk limits, then hold. The profile
comes from ruckig's velocity interface (target velocity and acceleration zero), time
synchronised so all joints come to rest together and the arm stays close to its path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import ruckig
from numpy.typing import NDArray

from planners.errors import InputError

__all__ = ["StopProfile", "controlled_stop"]


@dataclass(frozen=True)
class StopProfile:
    """A jerk-limited stop from a start state; sample it at any time from its start.

    Attributes:
        q0: (dof,) position at the start of the stop [rad].
        qd0: (dof,) velocity at the start [rad/s].
        qdd0: (dof,) acceleration at the start [rad/s^2] (clipped into the limit).
        duration: Time until every joint is at rest [s].
    """

    q0: NDArray[np.float64]
    qd0: NDArray[np.float64]
    qdd0: NDArray[np.float64]
    duration: float
    _trajectory: Any

    def at(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(q, qd, qdd)`` at ``t`` seconds after the start; held at rest after the end."""
        if self._trajectory is None:
            return self.q0.copy(), np.zeros_like(self.q0), np.zeros_like(self.q0)
        tt = min(max(float(t), 0.0), self.duration)
        q, qd, qdd = self._trajectory.at_time(tt)
        if tt >= self.duration:
            return np.asarray(q, np.float64), np.zeros_like(self.q0), np.zeros_like(self.q0)
        return np.asarray(q, np.float64), np.asarray(qd, np.float64), np.asarray(qdd, np.float64)


def _vector(value: npt.ArrayLike, dof: int, field: str) -> NDArray[np.float64]:
    out = np.asarray(value, dtype=np.float64).reshape(-1)
    if out.shape != (dof,) or not np.all(np.isfinite(out)):
        raise InputError(f"{field}: expected {dof} finite values, got {np.shape(value)}")
    return out


def controlled_stop(
    q: npt.ArrayLike,
    qd: npt.ArrayLike,
    qdd: npt.ArrayLike,
    acceleration: npt.ArrayLike,
    jerk: npt.ArrayLike,
) -> StopProfile:
    """The fastest time-synchronised stop from ``(q, qd, qdd)`` within the limits.

    Args:
        q: (dof,) current position [rad].
        qd: (dof,) current velocity [rad/s].
        qdd: (dof,) current acceleration [rad/s^2]; clipped into ``acceleration``.
        acceleration: (dof,) largest acceleration [rad/s^2], > 0.
        jerk: (dof,) largest jerk [rad/s^3], > 0.

    Returns:
        The stop profile; its ``duration`` is 0 when the arm is already at rest.

    Raises:
        InputError: a vector of the wrong size, non-finite values or non-positive limits.
    """
    qv = np.asarray(q, dtype=np.float64).reshape(-1)
    dof = qv.size
    qv = _vector(qv, dof, "q")
    vd = _vector(qd, dof, "qd")
    amax = _vector(acceleration, dof, "acceleration")
    jmax = _vector(jerk, dof, "jerk")
    if np.any(amax <= 0) or np.any(jmax <= 0):
        raise InputError("acceleration, jerk: every limit must be positive")
    ad = np.clip(_vector(qdd, dof, "qdd"), -amax, amax)
    if np.all(np.abs(vd) < 1e-12) and np.all(np.abs(ad) < 1e-12):
        return StopProfile(qv, vd, ad, 0.0, None)
    trajectory = None
    for sync in (ruckig.Synchronization.Time, ruckig.Synchronization.No):
        otg = ruckig.Ruckig(dof)
        inp = ruckig.InputParameter(dof)
        inp.control_interface = ruckig.ControlInterface.Velocity
        inp.synchronization = sync
        inp.current_position = qv.tolist()
        inp.current_velocity = vd.tolist()
        inp.current_acceleration = ad.tolist()
        inp.target_velocity = [0.0] * dof
        inp.target_acceleration = [0.0] * dof
        inp.max_velocity = (np.abs(vd) + 1.0).tolist()
        inp.max_acceleration = amax.tolist()
        inp.max_jerk = jmax.tolist()
        candidate = ruckig.Trajectory(dof)
        try:
            result = otg.calculate(inp, candidate)
        except RuntimeError:
            continue
        if result in (ruckig.Result.Working, ruckig.Result.Finished):
            trajectory = candidate
            break
    if trajectory is None:  # pragma: no cover - ruckig solves every velocity-interface stop
        raise InputError("controlled_stop: no profile for this state")
    for arr in (qv, vd, ad):
        arr.flags.writeable = False
    return StopProfile(qv, vd, ad, float(trajectory.duration), trajectory)
