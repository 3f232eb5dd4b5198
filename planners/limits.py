"""Per-joint limits of an arm: position, velocity, acceleration, jerk and effort."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import frozen
from planners.errors import InputError, UnknownNameError

__all__ = ["JointLimits"]


@dataclass(frozen=True)
class JointLimits:
    """Limits of ``dof`` joints, every array of shape (dof,).

    Attributes:
        names: Joint names, in the order of every array here.
        lower: Lowest position [rad or m].
        upper: Highest position [rad or m].
        velocity: Largest speed [rad/s] (from the URDF).
        acceleration: Largest acceleration [rad/s^2] (from the model's arm.toml).
        jerk: Largest jerk [rad/s^3] (from the model's arm.toml).
        effort: Largest torque [N m] (from the URDF).
    """

    names: tuple[str, ...]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    velocity: NDArray[np.float64]
    acceleration: NDArray[np.float64]
    jerk: NDArray[np.float64]
    effort: NDArray[np.float64]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        dof = len(self.names)
        for name in ("lower", "upper", "velocity", "acceleration", "jerk", "effort"):
            value = frozen(getattr(self, name))
            if value.shape != (dof,):
                raise InputError(f"limits.{name}: expected {dof} values, got shape {value.shape}")
            if not np.all(np.isfinite(value)):
                raise InputError(f"limits.{name}: every value must be finite")
            object.__setattr__(self, name, value)
        if np.any(self.lower >= self.upper):
            raise InputError("limits: every lower position limit must be below its upper one")
        for name in ("velocity", "acceleration", "jerk", "effort"):
            if np.any(getattr(self, name) <= 0):
                raise InputError(f"limits.{name}: every value must be positive")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})

    @property
    def dof(self) -> int:
        """Number of joints."""
        return len(self.names)

    def index(self, joint: str) -> int:
        """Column of ``joint``; UnknownNameError lists the joints."""
        try:
            return self._index[joint]
        except KeyError:
            raise UnknownNameError("joint", joint, self.names) from None

    def require_names(self, names: tuple[str, ...], what: str = "the trajectory's") -> None:
        """Raise InputError unless ``names`` are these joints in this order."""
        if tuple(names) != self.names:
            raise InputError(f"limits.names: {list(self.names)} differ from {what} {list(names)}")

    def within(self, q: npt.ArrayLike, tol: float = 0.0) -> NDArray[np.bool_]:
        """Whether each configuration lies within the position limits.

        Args:
            q: (dof,) or (N, dof) configurations.
            tol: Allowance beyond each limit [rad or m].

        Returns:
            A bool scalar array for one configuration, (N,) for a batch.
        """
        Q = np.asarray(q, dtype=np.float64)
        return np.all((self.lower - tol <= Q) & (self.upper + tol >= Q), axis=-1)

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
        """``n`` configurations drawn uniformly within the position limits, (n, dof)."""
        return rng.uniform(self.lower, self.upper, size=(n, self.dof))

    def scaled(
        self, velocity: float = 1.0, acceleration: float = 1.0, jerk: float = 1.0
    ) -> JointLimits:
        """A copy with velocity, acceleration and jerk limits scaled by the given factors."""
        for name, factor in (
            ("velocity", velocity),
            ("acceleration", acceleration),
            ("jerk", jerk),
        ):
            if not (np.isfinite(factor) and factor > 0):
                raise InputError(f"{name} scale: expected a positive number, got {factor}")
        return JointLimits(
            self.names,
            self.lower,
            self.upper,
            self.velocity * velocity,
            self.acceleration * acceleration,
            self.jerk * jerk,
            self.effort,
        )
