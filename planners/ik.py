"""Inverse kinematics: the configuration within limits nearest a reference.

The solver is a Levenberg-Marquardt descent compiled with numba (:mod:`planners.ik_kernel`),
run once from the reference configuration and then from random restarts drawn from an
injected generator (roboticstoolbox's ``ik_LM`` draws restarts from a global generator
and spends more time in its Python wrapper than in its C++ solve; ``cellctl bench ik``
runs it side by side). Around the descent this module adds what a cell needs:

* the answer nearest the reference: every revolute joint is moved by whole turns to the
  equivalent angle nearest the reference when the limits allow it (a UR joint spans two
  turns), and among several solutions the nearest is kept;
* for a redundant arm (7 joints), a null-space pull towards the reference after
  convergence, so the elbow stays where the reference had it;
* an explicit verdict: a failed solve returns the best configuration it reached, the
  residual, and the reason, never ``None``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners import ik_kernel as kernel
from planners.arm import Arm, cached_per_object
from planners.arrays import as_matrix4, frozen
from planners.errors import InputError

__all__ = ["IKResult", "IKStatus", "pose_error", "solve_ik", "solve_ik_batch"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class IKStatus(Enum):
    """Outcome of an IK solve."""

    SOLVED = "solved"
    NOT_CONVERGED = "not_converged"


@dataclass(frozen=True)
class IKResult:
    """Result of :func:`solve_ik`.

    Attributes:
        status: SOLVED, or NOT_CONVERGED with ``reason`` saying why.
        q: (dof,) the solution, or the best configuration reached when not solved.
        reason: ``None`` when solved; otherwise what failed.
        iterations: LM iterations spent over every attempt.
        attempts: Seeds tried (1 = the reference alone).
        position_error: Distance from the target [m].
        rotation_error: Angle from the target orientation [rad].
    """

    status: IKStatus
    q: NDArray[np.float64]
    reason: str | None
    iterations: int
    attempts: int
    position_error: float
    rotation_error: float

    @property
    def success(self) -> bool:
        """True when a solution within limits and tolerance was found."""
        return self.status is IKStatus.SOLVED


def pose_error(T_a: NDArray[np.float64], T_b: NDArray[np.float64]) -> tuple[float, float]:
    """Position [m] and rotation [rad] distance between two 4x4 poses."""
    dp = float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))
    c = (np.trace(T_a[:3, :3].T @ T_b[:3, :3]) - 1.0) / 2.0
    return dp, float(np.arccos(np.clip(c, -1.0, 1.0)))


class _Solver:
    """One arm's compiled chain and settings, shared by single and batch solves."""

    def __init__(
        self, arm: Arm, tol_position: float, tol_rotation: float, max_iterations: int
    ) -> None:
        if not (tol_position > 0 and tol_rotation > 0):
            raise InputError(
                "tolerances: expected positive tol_position [m] and tol_rotation [rad]"
            )
        if max_iterations < 1:
            raise InputError(f"max_iterations: expected >= 1, got {max_iterations}")
        self.arm = arm
        self.chain = _chain_of(arm)
        self.tol_p = float(tol_position)
        self.tol_r = float(tol_rotation)
        self.max_iter = int(max_iterations)
        self.base_inv = _inverse(arm.base)
        self.pull = _PULL_STEPS if arm.dof > 6 else 0

    def result(
        self, q: NDArray[np.float64], status: int, iters: int, attempts: int, dp: float, dr: float
    ) -> IKResult:
        if status == kernel.SOLVED:
            return IKResult(
                IKStatus.SOLVED, frozen(q), None, int(iters), int(attempts), float(dp), float(dr)
            )
        reason = (
            f"no solution within limits after {attempts} attempts; best reached "
            f"{dp * 1e3:.3g} mm, {np.degrees(dr):.3g} deg from the target "
            f"({'likely out of reach' if dp > 1e-3 else 'likely blocked by joint limits'})"
        )
        return IKResult(
            IKStatus.NOT_CONVERGED,
            frozen(q),
            reason,
            int(iters),
            int(attempts),
            float(dp),
            float(dr),
        )


_PULL_STEPS = 6
_NO_SEEDS = np.empty((0, 64))
_CHAINS: dict[int, tuple[Any, Any]] = {}


def _solver(arm: Arm, tol_position: float, tol_rotation: float, max_iterations: int) -> _Solver:
    """A cached :class:`_Solver` (one per arm model, base and settings)."""
    key = (id(arm), tol_position, tol_rotation, max_iterations)
    solver = _SOLVERS.get(key)
    if solver is None or solver.arm is not arm:
        solver = _SOLVERS[key] = _Solver(arm, tol_position, tol_rotation, max_iterations)
    return solver


_SOLVERS: dict[tuple, _Solver] = {}


def _chain_of(arm: Arm) -> tuple:
    """The kernel arrays of ``arm``'s base-to-TCP chain, compiled once per model."""
    return cached_per_object(
        _CHAINS,
        arm.ets,
        lambda ets: (*kernel.serial_chain(ets), arm.limits.lower.copy(), arm.limits.upper.copy()),
    )


def solve_ik(
    arm: Arm,
    T_world_tcp: object,
    q_ref: npt.ArrayLike | None = None,
    *,
    rng: np.random.Generator | None = None,
    restarts: int = 60,
    tol_position: float = 1e-5,
    tol_rotation: float = 1e-4,
    max_iterations: int = 100,
) -> IKResult:
    """Solve for the TCP pose ``T_world_tcp``, nearest ``q_ref``, within joint limits.

    Args:
        arm: The arm (with its tool: the pose is the tool's TCP).
        T_world_tcp: Target pose, spatialmath SE3 or 4x4 array, in the world frame.
        q_ref: Reference configuration (dof,); the arm's ``ready`` (or ``home``) by default.
        rng: Generator for restart seeds; ``np.random.default_rng(0)`` by default.
        restarts: Random restarts after the reference seed fails.
        tol_position: Largest accepted position error [m].
        tol_rotation: Largest accepted orientation error [rad].
        max_iterations: LM iterations per attempt.

    Returns:
        An :class:`IKResult`; a failure carries the reason and the best configuration.

    Raises:
        InputError: a malformed pose or reference (not finite, wrong shape).
    """
    solver = _solver(arm, tol_position, tol_rotation, max_iterations)
    ref = _reference(arm, q_ref)
    Tb = solver.base_inv @ as_matrix4(T_world_tcp, "target pose")
    consts, axis, rot, sign, lower, upper = solver.chain
    args = (lower, upper, solver.tol_p, solver.tol_r, solver.max_iter, solver.pull)
    out = kernel.solve_one(consts, axis, rot, sign, Tb, ref, _NO_SEEDS[:0, : arm.dof], *args)
    if out[1] != kernel.SOLVED and restarts > 0:
        # Seeds are drawn only when the reference fails: a solve that needs none
        # leaves the generator untouched and costs no sampling.
        gen = rng if rng is not None else np.random.default_rng(0)
        seeds = gen.uniform(lower, upper, size=(int(restarts), arm.dof))
        retry = kernel.solve_one(consts, axis, rot, sign, Tb, ref, seeds, *args)
        out = (*retry[:2], retry[2] + out[2], retry[3] + out[3], *retry[4:])
    return solver.result(*out)


def solve_ik_batch(
    arm: Arm,
    T_world_tcp: npt.ArrayLike,
    q_ref: npt.ArrayLike | None = None,
    *,
    rng: np.random.Generator | None = None,
    restarts: int = 60,
    tol_position: float = 1e-5,
    tol_rotation: float = 1e-4,
    max_iterations: int = 100,
) -> list[IKResult]:
    """:func:`solve_ik` for (N, 4, 4) poses; ``q_ref`` is (dof,) or (N, dof)."""
    T = np.asarray(T_world_tcp, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise InputError(f"T_world_tcp: expected shape (N, 4, 4), got {T.shape}")
    refs = np.asarray(_reference(arm, None) if q_ref is None else q_ref, dtype=np.float64)
    refs = np.broadcast_to(refs, (T.shape[0], arm.dof)) if refs.ndim == 1 else refs
    if refs.shape != (T.shape[0], arm.dof):
        raise InputError(
            f"q_ref: expected shape ({arm.dof},) or ({T.shape[0]}, {arm.dof}), got {refs.shape}"
        )
    if not np.all(np.isfinite(T)):
        raise InputError("T_world_tcp: every value must be finite")
    if not np.all(np.isfinite(refs)):
        raise InputError("q_ref: every value must be finite")
    solver = _solver(arm, tol_position, tol_rotation, max_iterations)
    gen = rng if rng is not None else np.random.default_rng(0)
    consts, axis, rot, sign, lower, upper = solver.chain
    seeds = gen.uniform(lower, upper, size=(T.shape[0], max(int(restarts), 0), arm.dof))
    Tb = np.ascontiguousarray(solver.base_inv @ T)
    Q, status, iters, attempts, err = kernel.solve_batch(
        consts, axis, rot, sign, Tb, np.ascontiguousarray(refs), seeds, lower, upper,
        solver.tol_p, solver.tol_r, solver.max_iter, solver.pull,
    )  # fmt: skip
    return [
        solver.result(Q[i], status[i], iters[i], attempts[i], err[i, 0], err[i, 1])
        for i in range(len(Q))
    ]


def _inverse(T: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def _reference(arm: Arm, q_ref: npt.ArrayLike | None) -> NDArray[np.float64]:
    if q_ref is not None:
        return arm.check_q(q_ref, "q_ref")
    for name in ("ready", "home"):
        if name in arm.configurations:
            return np.asarray(arm.configurations[name])
    return (arm.limits.lower + arm.limits.upper) / 2.0
