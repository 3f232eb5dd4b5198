"""The interface an arm endpoint drives: the simulated arm or an adapter to a real one.

:class:`sim.sim_arm.SimArm` implements it; an adapter to a real arm (Franka FCI, UR RTDE,
ABB EGM, KUKA RSI) would implement the same five members and nothing else changes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.limits import JointLimits

__all__ = ["ArmInterface"]


@runtime_checkable
class ArmInterface(Protocol):
    """One arm, commanded once per stream period.

    Attributes:
        joint_names: Joint names, the order of every vector.
        limits: Joint limits (the endpoint checks setpoints against them).
    """

    @property
    def joint_names(self) -> tuple[str, ...]: ...

    @property
    def limits(self) -> JointLimits: ...

    def read(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Measured ``(q, qd)``, each (dof,), [rad] and [rad/s]."""
        ...

    def command(self, q: npt.ArrayLike, qd: npt.ArrayLike) -> None:
        """Track position ``q`` [rad] with feed-forward velocity ``qd`` [rad/s] for one period."""
        ...

    def emergency_stop(self) -> None:
        """Stop at once (category 0/1 stop of a real arm); called every period while on."""
        ...

    def close(self) -> None:
        """Release the arm (simulator client, connection)."""
        ...
