"""The configuration space a planner searches: bounds, sampling, metric, batched validity.

A planner needs five things of the space it plans in, and nothing more: its bounds,
uniform samples, a distance, an interpolation, and a validity test that takes many
configurations at once (:class:`ConfigurationSpace`). :class:`JointSpace` is the one
implementation the project uses: a box of joint positions with the Euclidean metric and
straight-line interpolation, whose validity is any batched callable. :func:`collision_space`
builds it from a batched collision model (``planners.collision.CollisionModel``), so the
planners never see links, spheres or obstacles.

Edges are checked at a fixed joint resolution: :meth:`JointSpace.edge` returns the
configurations a straight edge passes through, no two consecutive ones farther apart than
the resolution (Euclidean, so no joint moves more than that between checks), for one
``valid`` call per edge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numba as nb
import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import frozen
from planners.errors import InputError

__all__ = ["ConfigurationSpace", "JointSpace", "ValidFn", "collision_space"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

ValidFn = Callable[[NDArray[np.float64]], NDArray[np.bool_]]
"""Batched validity: (N, dof) configurations -> (N,) bool, True where collision-free."""


@runtime_checkable
class ConfigurationSpace(Protocol):
    """What a sampling planner needs of the space it searches."""

    @property
    def dof(self) -> int:
        """Number of coordinates."""
        ...

    @property
    def lower(self) -> NDArray[np.float64]:
        """Lower bounds (dof,) [rad or m]."""
        ...

    @property
    def upper(self) -> NDArray[np.float64]:
        """Upper bounds (dof,) [rad or m]."""
        ...

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
        """``n`` uniform samples within the bounds, (n, dof)."""
        ...

    def distance(self, a: npt.ArrayLike, b: npt.ArrayLike) -> NDArray[np.float64]:
        """Distance between broadcastable (..., dof) arrays, shape (...)."""
        ...

    def interpolate(
        self, a: npt.ArrayLike, b: npt.ArrayLike, t: npt.ArrayLike
    ) -> NDArray[np.float64]:
        """Configurations at fractions ``t`` (K,) of the way from ``a`` to ``b``, (K, dof)."""
        ...

    def valid(self, Q: npt.ArrayLike) -> NDArray[np.bool_]:
        """Validity of (N, dof) configurations, (N,) bool."""
        ...


@dataclass(frozen=True)
class JointSpace:
    """A box of joint positions with the Euclidean metric and a batched validity test.

    Attributes:
        lower: Lower bounds (dof,) [rad or m] (read-only).
        upper: Upper bounds (dof,) [rad or m] (read-only).
        valid_fn: Batched validity of (N, dof) configurations within the bounds; the bounds
            are tested here, so ``valid_fn`` sees only configurations inside them.
        name: What the space is, for messages.
        packed: The collision model behind ``valid_fn`` packed for compiled code
            (:attr:`planners.collision.CollisionModel.packed`, joint limits equal to the
            bounds), or ``None``. When given, :func:`planners.plan.plan` runs its search
            and smoothing loops compiled against it (same validity, no Python per check).
    """

    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    valid_fn: ValidFn
    name: str = "joint space"
    packed: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None

    def __post_init__(self) -> None:
        lower, upper = frozen(self.lower), frozen(self.upper)
        if lower.ndim != 1 or lower.shape != upper.shape or lower.size == 0:
            raise InputError(
                f"bounds: expected two (dof,) arrays, got {lower.shape} and {upper.shape}"
            )
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise InputError("bounds: every value must be finite")
        if np.any(lower >= upper):
            raise InputError("bounds: every lower bound must be below its upper one")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def dof(self) -> int:
        """Number of joints."""
        return int(self.lower.shape[0])

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
        """``n`` configurations drawn uniformly within the bounds, (n, dof)."""
        return rng.uniform(self.lower, self.upper, size=(int(n), self.dof))

    def distance(self, a: npt.ArrayLike, b: npt.ArrayLike) -> NDArray[np.float64]:
        """Euclidean distance between broadcastable (..., dof) arrays [rad], shape (...)."""
        d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
        return np.sqrt(np.einsum("...i,...i->...", d, d))

    def interpolate(
        self, a: npt.ArrayLike, b: npt.ArrayLike, t: npt.ArrayLike
    ) -> NDArray[np.float64]:
        """Configurations at fractions ``t`` (K,) along the straight line from ``a`` to ``b``."""
        qa = np.asarray(a, dtype=np.float64)
        qb = np.asarray(b, dtype=np.float64)
        tt = np.asarray(t, dtype=np.float64).reshape(-1, 1)
        return qa + tt * (qb - qa)

    def within(self, Q: npt.ArrayLike) -> NDArray[np.bool_]:
        """Whether each of (N, dof) configurations lies within the bounds, (N,)."""
        Q = np.asarray(Q, dtype=np.float64)
        return np.all((self.lower <= Q) & (self.upper >= Q), axis=-1)

    def valid(self, Q: npt.ArrayLike) -> NDArray[np.bool_]:
        """Within the bounds and accepted by ``valid_fn``: (N, dof) -> (N,) bool."""
        Q = np.atleast_2d(np.asarray(Q, dtype=np.float64))
        ok = self.within(Q)
        if ok.all():
            return np.asarray(self.valid_fn(Q), dtype=bool)
        out = np.zeros(Q.shape[0], dtype=bool)
        if ok.any():
            out[ok] = np.asarray(self.valid_fn(Q[ok]), dtype=bool)
        return out

    def edge(self, a: npt.ArrayLike, b: npt.ArrayLike, resolution: float) -> NDArray[np.float64]:
        """Configurations checked along the edge ``a`` -> ``b``, excluding ``a``, including ``b``.

        Args:
            a: (dof,) start of the edge.
            b: (dof,) end of the edge.
            resolution: Largest Euclidean step between consecutive configurations [rad].

        Returns:
            (K, dof) with K = max(1, ceil(|b - a| / resolution)).
        """
        return edge_points(np.asarray(a, float), np.asarray(b, float), resolution)


def edge_points(
    a: NDArray[np.float64], b: NDArray[np.float64], resolution: float
) -> NDArray[np.float64]:
    """(K, dof) configurations strictly after ``a`` up to ``b``, steps <= ``resolution``."""
    return _edge_points(
        np.ascontiguousarray(a, np.float64), np.ascontiguousarray(b, np.float64), float(resolution)
    )


@nb.njit(cache=True)
def _edge_points(
    a: NDArray[np.float64], b: NDArray[np.float64], resolution: float
) -> NDArray[np.float64]:
    dof = a.shape[0]
    length = 0.0
    for j in range(dof):
        length += (b[j] - a[j]) ** 2
    n = max(1, int(np.ceil(np.sqrt(length) / resolution)))
    out = np.empty((n, dof))
    for i in range(n):
        t = (i + 1) / n
        for j in range(dof):
            out[i, j] = a[j] + t * (b[j] - a[j])
    for j in range(dof):
        out[n - 1, j] = b[j]
    return out


class _ValidModel(Protocol):
    def valid(self, Q: Any) -> Any: ...


def collision_space(
    model: _ValidModel, arm: Any = None, *, name: str | None = None, max_batch: int = 96
) -> JointSpace:
    """The joint space of an arm whose validity is a batched collision model.

    Args:
        model: An object with ``valid(Q (N, dof)) -> (N,) bool`` (collision and limits),
            such as ``planners.collision.CollisionModel``.
        arm: The arm whose joint limits bound the space; ``model.arm`` by default.
        name: What the space is, for messages (the arm's name by default).
        max_batch: Largest number of configurations per call of ``model.valid``; larger
            batches are split.

    The space carries the model's ``packed`` buffers when it has them and its joint
    limits are the space's bounds (:attr:`JointSpace.packed`).

    Raises:
        InputError: no arm given and the model has none.
    """
    arm = getattr(model, "arm", None) if arm is None else arm
    limits = getattr(arm, "limits", None)
    if limits is None:
        raise InputError("arm: expected an Arm (with limits) for the collision model's space")
    label = name if name is not None else f"{getattr(arm, 'name', 'arm')} joint space"
    if max_batch < 1:
        raise InputError(f"max_batch: expected >= 1, got {max_batch}")
    check = model.valid

    def valid(Q: NDArray[np.float64]) -> NDArray[np.bool_]:
        if Q.shape[0] <= max_batch:
            return np.asarray(check(Q), dtype=bool)
        parts = [check(Q[i : i + max_batch]) for i in range(0, Q.shape[0], max_batch)]
        return np.concatenate(parts).astype(bool)

    packed = getattr(model, "packed", None)
    model_limits = getattr(getattr(model, "arm", None), "limits", None)
    same = model_limits is not None and all(
        np.array_equal(getattr(model_limits, k), getattr(limits, k)) for k in ("lower", "upper")
    )
    return JointSpace(limits.lower, limits.upper, valid, label, packed if same else None)
