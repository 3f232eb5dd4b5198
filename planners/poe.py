"""Forward kinematics as a product of exponentials, read from an arm's own kinematics.

For a serial chain, anything carried after joint ``k`` is at
``exp(xi_1 q_1) ... exp(xi_k q_k) X(0)``, where ``xi_j`` is joint j's screw in the world
at the zero configuration (a turn about a line or a slide along a direction) and ``X(0)``
is where it is at zero. The screws are read from :meth:`planners.arm.Arm.fk_batch` by
moving one joint at a time and checked against it on random configurations, so this is
the arm's kinematics in another form: one compiled loop that gives every joint's
product at once, for carrying many points (the TCP, sphere centres) along a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.errors import ModelError

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["Screws", "carry", "joint_products", "products_cs", "products_into", "screws_of"]


@dataclass(frozen=True)
class Screws:
    """The joint screws of a serial arm at its zero configuration, world frame.

    Attributes:
        revolute: (J,) 1 for a turn, 0 for a slide.
        axis: (J, 3) unit axis (turn) or direction (slide).
        point: (J, 3) a point on a turn's axis [m] (zero for a slide).
        T0_tcp: (4, 4) world pose of the TCP at the zero configuration.
    """

    revolute: NDArray[np.int64]
    axis: NDArray[np.float64]
    point: NDArray[np.float64]
    T0_tcp: NDArray[np.float64]


@nb.njit(cache=True)
def products_cs(
    revolute: NDArray[np.int64], axis: NDArray[np.float64], point: NDArray[np.float64],
    q: NDArray[np.float64], cq: NDArray[np.float64], sq: NDArray[np.float64],
    P: NDArray[np.float64], E: NDArray[np.float64],
) -> None:  # fmt: skip
    """Fill P (J, 3, 4) with exp(xi_1 q_1) ... exp(xi_k q_k) for every k, given each turn's
    cosine ``cq`` and sine ``sq`` (J,); ``E`` (3, 4) is work space."""
    J = q.shape[0]
    for k in range(J):
        wx, wy, wz = axis[k, 0], axis[k, 1], axis[k, 2]
        if revolute[k] == 1:
            c = cq[k]
            s = sq[k]
            v = 1.0 - c
            E[0, 0] = c + wx * wx * v
            E[0, 1] = wx * wy * v - wz * s
            E[0, 2] = wx * wz * v + wy * s
            E[1, 0] = wy * wx * v + wz * s
            E[1, 1] = c + wy * wy * v
            E[1, 2] = wy * wz * v - wx * s
            E[2, 0] = wz * wx * v - wy * s
            E[2, 1] = wz * wy * v + wx * s
            E[2, 2] = c + wz * wz * v
            for r in range(3):  # (I - R) p
                E[r, 3] = point[k, r] - (
                    E[r, 0] * point[k, 0] + E[r, 1] * point[k, 1] + E[r, 2] * point[k, 2]
                )
        else:
            for r in range(3):
                for col in range(3):
                    E[r, col] = 1.0 if r == col else 0.0
                E[r, 3] = axis[k, r] * q[k]
        if k == 0:
            for r in range(3):
                for col in range(4):
                    P[0, r, col] = E[r, col]
            continue
        for r in range(3):
            for col in range(4):
                P[k, r, col] = (
                    P[k - 1, r, 0] * E[0, col]
                    + P[k - 1, r, 1] * E[1, col]
                    + P[k - 1, r, 2] * E[2, col]
                )
            P[k, r, 3] += P[k - 1, r, 3]


@nb.njit(cache=True)
def products_into(
    revolute: NDArray[np.int64], axis: NDArray[np.float64], point: NDArray[np.float64],
    q: NDArray[np.float64], P: NDArray[np.float64],
) -> None:  # fmt: skip
    """Fill P (J, 3, 4) with exp(xi_1 q_1) ... exp(xi_k q_k) for every k."""
    products_cs(revolute, axis, point, q, np.cos(q), np.sin(q), P, np.empty((3, 4)))


@nb.njit(cache=True)
def joint_products(
    revolute: NDArray[np.int64], axis: NDArray[np.float64], point: NDArray[np.float64],
    Q: NDArray[np.float64],
) -> NDArray[np.float64]:  # fmt: skip
    """(N, J, 3, 4) products ``exp(xi_1 q_1) ... exp(xi_k q_k)`` of (N, J) configurations."""
    N, J = Q.shape
    P = np.empty((N, J, 3, 4))
    E = np.empty((3, 4))
    for i in range(N):
        products_cs(revolute, axis, point, Q[i], np.cos(Q[i]), np.sin(Q[i]), P[i], E)
    return P


@nb.njit(cache=True)
def carry(
    P: NDArray[np.float64], joint: NDArray[np.int64], X0: NDArray[np.float64]
) -> NDArray[np.float64]:
    """(N, M, 3) positions of M points at zero ``X0`` (M, 3), each after joint ``joint[m]``.

    ``joint[m] = -1``: the point does not move.
    """
    N = P.shape[0]
    M = X0.shape[0]
    out = np.empty((N, M, 3))
    for i in range(N):
        for m in range(M):
            k = joint[m]
            for r in range(3):
                if k < 0:
                    out[i, m, r] = X0[m, r]
                else:
                    out[i, m, r] = (
                        P[i, k, r, 0] * X0[m, 0]
                        + P[i, k, r, 1] * X0[m, 1]
                        + P[i, k, r, 2] * X0[m, 2]
                        + P[i, k, r, 3]
                    )
    return out


def screws_of(arm: Arm, *, theta: float = 0.5, rng: np.random.Generator | None = None) -> Screws:
    """Read the screws of ``arm`` from its forward kinematics.

    Args:
        arm: A serial arm (joints in chain order, base first).
        theta: Joint motion used to read each screw [rad or m].
        rng: For the check on random configurations (seeded by default).

    Raises:
        ModelError: the arm's kinematics is not a product of exponentials in joint order
            (checked on random configurations to 1e-9 m and rad).
    """
    dof = arm.dof
    T0 = arm.fk_batch(np.zeros((1, dof)))[0]
    Q = np.eye(dof) * theta
    G = arm.fk_batch(Q) @ np.linalg.inv(T0)  # exp(xi_j theta)
    revolute = np.zeros(dof, np.int64)
    axis = np.zeros((dof, 3))
    point = np.zeros((dof, 3))
    for j in range(dof):
        R, p = G[j, :3, :3], G[j, :3, 3]
        skew = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
        if np.linalg.norm(skew) < 1e-12 and np.allclose(R, np.eye(3), atol=1e-12):
            axis[j] = p / theta
        else:
            revolute[j] = 1
            axis[j] = skew / (2.0 * np.sin(theta))
            point[j] = np.linalg.lstsq(np.eye(3) - R, p, rcond=None)[0]
        axis[j] /= np.linalg.norm(axis[j])
    screws = Screws(revolute, axis, point, T0)
    gen = rng if rng is not None else np.random.default_rng(0)
    lo = np.maximum(arm.limits.lower, -np.pi)
    hi = np.minimum(arm.limits.upper, np.pi)
    Qr = gen.uniform(lo, hi, size=(16, dof))
    P = joint_products(revolute, axis, point, Qr)
    T = np.zeros((len(Qr), 4, 4))
    T[:, :3] = P[:, -1] @ T0
    T[:, 3, 3] = 1.0
    if not np.allclose(T, arm.fk_batch(Qr), atol=1e-9, rtol=0.0):
        raise ModelError(f"arm {arm.name!r}: its kinematics is not a product of exponentials")
    return screws
