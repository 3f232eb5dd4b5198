"""A simulated arm: one PyBullet client stepping at the stream rate under position control.

:class:`SimArm` is what the arm endpoint drives when no real arm is attached. It owns its
own ``BulletClient(pybullet.DIRECT)`` (no module-level simulator state), steps the
physics once per stream period and reports the measured joint positions and velocities.
It knows nothing of sockets: the endpoint in ``cells/`` calls :meth:`SimArm.command`
once per period, exactly as an adapter to a real arm would be called.
"""

from __future__ import annotations

import logging
from types import TracebackType

import numpy as np
import numpy.typing as npt
import pybullet
from numpy.typing import NDArray

from planners.arm import Arm
from planners.errors import InputError
from planners.limits import JointLimits
from sim.arm_body import ArmBody
from sim.client import direct_client

__all__ = ["SimArm"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class SimArm:
    """An arm in its own PyBullet client, stepping ``1 / rate_hz`` per command.

    Args:
        arm: The planner's model (limits, joint names, URDF).
        rate_hz: Physics step and command rate [Hz], > 0.
        q0: (dof,) initial joint positions [rad]; the arm's ``home`` configuration, or
            zeros clipped into the limits, when omitted.
        gravity: Gravity along world -z [m/s^2].

    Raises:
        InputError: a non-positive rate or a ``q0`` of the wrong shape or outside limits.
    """

    def __init__(
        self,
        arm: Arm,
        rate_hz: float = 1000.0,
        q0: npt.ArrayLike | None = None,
        gravity: float = 9.81,
    ) -> None:
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise InputError(f"rate_hz: expected a positive number, got {rate_hz!r}")
        self.arm = arm
        self.rate_hz = float(rate_hz)
        self._client = direct_client()
        try:
            self._client.setTimeStep(1.0 / self.rate_hz)
            self._client.setGravity(0.0, 0.0, -float(gravity))
            self._body = ArmBody.load(self._client, arm)
        except BaseException:
            self._client.disconnect()
            raise
        self._joints = list(self._body.joint_indices)
        self._forces = [float(f) for f in arm.limits.effort]
        # Motor gains tuned for tight tracking at the stream rate.
        self._kp = [0.6] * len(self._joints)
        self._kd = [1.0] * len(self._joints)
        if q0 is None:
            q0 = arm.configurations.get("home", np.zeros(arm.dof))
        self.reset(q0)
        self._closed = False

    # ------------------------------------------------------------------ interface
    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint names, the order of every vector."""
        return self.arm.joint_names

    @property
    def limits(self) -> JointLimits:
        """The arm's joint limits."""
        return self.arm.limits

    def reset(self, q: npt.ArrayLike) -> None:
        """Teleport to ``q`` (dof,) [rad] at rest and hold it there."""
        qv = self.arm.check_q(q, "q0")
        if np.any(qv < self.limits.lower) or np.any(qv > self.limits.upper):
            raise InputError("q0: outside the arm's position limits")
        self._body.set_q(qv)
        self._target = qv.copy()
        self._apply(qv, np.zeros_like(qv))

    def read(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Measured ``(q, qd)``, each (dof,), in [rad] and [rad/s]."""
        states = self._client.getJointStates(self._body.body, self._joints)
        q = np.fromiter((s[0] for s in states), np.float64, len(states))
        qd = np.fromiter((s[1] for s in states), np.float64, len(states))
        return q, qd

    def command(self, q: npt.ArrayLike, qd: npt.ArrayLike) -> None:
        """Track position ``q`` [rad] with feed-forward velocity ``qd`` [rad/s] for one period.

        Sets the motor targets and steps the physics once (``1 / rate_hz`` s).
        """
        qv = np.asarray(q, dtype=np.float64)
        self._target = qv
        self._apply(qv, np.asarray(qd, dtype=np.float64))
        self._client.stepSimulation()

    def emergency_stop(self) -> None:
        """Stop at once: hold the measured position with zero velocity, step once."""
        q, _ = self.read()
        self.command(q, np.zeros_like(q))

    def close(self) -> None:
        """Disconnect the PyBullet client (idempotent)."""
        if not getattr(self, "_closed", True):
            self._client.disconnect()
            self._closed = True

    def __enter__(self) -> SimArm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _apply(self, q: NDArray[np.float64], qd: NDArray[np.float64]) -> None:
        self._client.setJointMotorControlArray(
            self._body.body,
            self._joints,
            pybullet.POSITION_CONTROL,
            targetPositions=q.tolist(),
            targetVelocities=qd.tolist(),
            forces=self._forces,
            positionGains=self._kp,
            velocityGains=self._kd,
        )
