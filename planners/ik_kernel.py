"""Compiled inverse kinematics for a serial chain (numba).

The whole solve runs in one compiled call: damped least squares (Levenberg-Marquardt
with the damping of Sugihara 2011: lambda = E + w), steps projected onto the joint
limits, restarts from given seeds, whole-turn wrapping towards the reference, and for
redundant chains a null-space pull towards the reference after convergence.

A chain is four arrays built by :func:`serial_chain`: ``consts`` (J+1, 4, 4) the fixed
transforms before each joint and after the last, ``axis`` (J,) 0/1/2 for x/y/z,
``rot`` (J,) 1 for revolute, 0 for prismatic, ``sign`` (J,) +-1.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from numpy.typing import NDArray

__all__ = ["SOLVED", "fk_batch", "serial_chain", "solve_batch", "solve_one"]

SOLVED = 0
NOT_CONVERGED = 1
_KINDS = {"Rx": (0, 1), "Ry": (1, 1), "Rz": (2, 1), "tx": (0, 0), "ty": (1, 0), "tz": (2, 0)}


def serial_chain(
    ets: Any,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Compile a roboticstoolbox ETS (base to TCP) into the kernel's arrays."""
    consts: list[NDArray[np.float64]] = []
    axis: list[int] = []
    rot: list[int] = []
    sign: list[float] = []
    const = np.eye(4)
    for et in ets:
        if et.isjoint:
            consts.append(const)
            const = np.eye(4)
            a, r = _KINDS[et.kind]
            axis.append(a)
            rot.append(r)
            sign.append(-1.0 if et.isflip else 1.0)
        else:
            const = const @ et.A()
    consts.append(const)
    return (
        np.ascontiguousarray(consts, dtype=np.float64),
        np.asarray(axis, dtype=np.int64),
        np.asarray(rot, dtype=np.int64),
        np.asarray(sign, dtype=np.float64),
    )


@nb.njit(cache=True)
def _mul4(A, B, out):
    """out = A @ B for 4x4 rigid transforms (last row 0 0 0 1), without BLAS."""
    for i in range(3):
        for j in range(4):
            out[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
        out[i, 3] += A[i, 3]
    out[3, 0] = out[3, 1] = out[3, 2] = 0.0
    out[3, 3] = 1.0


@nb.njit(cache=True)
def _move(T, axis, rot, v):
    """Right-multiply T in place by a motion v along or about local ``axis``."""
    if rot == 0:
        for r in range(3):
            T[r, 3] += v * T[r, axis]
        return
    c = np.cos(v)
    s = np.sin(v)
    i = (axis + 1) % 3
    j = (axis + 2) % 3
    for r in range(3):
        ti = T[r, i]
        tj = T[r, j]
        T[r, i] = c * ti + s * tj
        T[r, j] = c * tj - s * ti


@nb.njit(cache=True)
def fk_frames(consts, axis, rot, sign, q, frames):
    """TCP pose; fills ``frames`` (J, 4, 4) with each joint's frame (before its motion)."""
    T = np.eye(4)
    tmp = np.empty((4, 4))
    for k in range(q.shape[0]):
        _mul4(T, consts[k], tmp)
        T[:, :] = tmp
        frames[k] = T
        _move(T, axis[k], rot[k], sign[k] * q[k])
    out = np.empty((4, 4))
    _mul4(T, consts[q.shape[0]], out)
    return out


@nb.njit(cache=True)
def fk_batch(consts, axis, rot, sign, Q):
    """TCP poses (N, 4, 4) of (N, J) configurations."""
    n = Q.shape[0]
    J = Q.shape[1]
    out = np.empty((n, 4, 4))
    frames = np.empty((J, 4, 4))
    for i in range(n):
        out[i] = fk_frames(consts, axis, rot, sign, Q[i], frames)
    return out


@nb.njit(cache=True)
def _error(T, Tt, e):
    """Stack position error and the rotation vector of Tt R^T into e (6,); return (dp, dr)."""
    for i in range(3):
        e[i] = Tt[i, 3] - T[i, 3]
    R = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            R[i, j] = Tt[i, 0] * T[j, 0] + Tt[i, 1] * T[j, 1] + Tt[i, 2] * T[j, 2]
    cos = min(1.0, max(-1.0, (R[0, 0] + R[1, 1] + R[2, 2] - 1.0) / 2.0))
    angle = np.arccos(cos)
    vx = R[2, 1] - R[1, 2]
    vy = R[0, 2] - R[2, 0]
    vz = R[1, 0] - R[0, 1]
    if angle < 1e-9:
        e[3], e[4], e[5] = vx / 2.0, vy / 2.0, vz / 2.0
    elif angle > np.pi - 1e-6:
        # Near a half turn: axis from the diagonal of R + I.
        d = np.array([R[0, 0], R[1, 1], R[2, 2]])
        k = int(np.argmax(d))
        ax = (R[:, k] + np.eye(3)[:, k]) / np.sqrt(2.0 * (1.0 + d[k]))
        e[3], e[4], e[5] = ax[0] * angle, ax[1] * angle, ax[2] * angle
    else:
        f = angle / (2.0 * np.sin(angle))
        e[3], e[4], e[5] = vx * f, vy * f, vz * f
    dp = np.sqrt(e[0] ** 2 + e[1] ** 2 + e[2] ** 2)
    return dp, angle


@nb.njit(cache=True)
def _jacobian(T, frames, axis, rot, sign, J):
    for k in range(frames.shape[0]):
        z = frames[k, :3, axis[k]] * sign[k]
        if rot[k] == 1:
            r = T[:3, 3] - frames[k, :3, 3]
            J[0, k] = z[1] * r[2] - z[2] * r[1]
            J[1, k] = z[2] * r[0] - z[0] * r[2]
            J[2, k] = z[0] * r[1] - z[1] * r[0]
            J[3, k], J[4, k], J[5, k] = z[0], z[1], z[2]
        else:
            J[0, k], J[1, k], J[2, k] = z[0], z[1], z[2]
            J[3, k] = J[4, k] = J[5, k] = 0.0


@nb.njit(cache=True)
def _damped_step(J, e, lam, A, g, dq):
    """dq = (J^T J + lam I)^-1 J^T e by Cholesky, in preallocated buffers."""
    n = J.shape[1]
    for i in range(n):
        acc = 0.0
        for r in range(6):
            acc += J[r, i] * e[r]
        g[i] = acc
        for j in range(i + 1):
            acc = 0.0
            for r in range(6):
                acc += J[r, i] * J[r, j]
            A[i, j] = acc
        A[i, i] += lam
    # In-place Cholesky: lower triangle of A becomes L.
    for j in range(n):
        d = A[j, j]
        for k in range(j):
            d -= A[j, k] * A[j, k]
        d = np.sqrt(max(d, 1e-300))
        A[j, j] = d
        for i in range(j + 1, n):
            acc = A[i, j]
            for k in range(j):
                acc -= A[i, k] * A[j, k]
            A[i, j] = acc / d
    for i in range(n):  # L y = g
        acc = g[i]
        for k in range(i):
            acc -= A[i, k] * dq[k]
        dq[i] = acc / A[i, i]
    for i in range(n - 1, -1, -1):  # L^T x = y
        acc = dq[i]
        for k in range(i + 1, n):
            acc -= A[k, i] * dq[k]
        dq[i] = acc / A[i, i]


@nb.njit(cache=True)
def _descend(consts, axis, rot, sign, Tt, q, lower, upper, tol_p, tol_r, max_iter):
    """LM from q (modified in place); returns (converged, iterations, dp, dr).

    Damping lambda = mu * (E + 1e-9) (Sugihara's E-proportional damping), mu shrinking
    after an accepted step and growing after a rejected one; steps are clamped to limits.
    """
    n = q.shape[0]
    frames = np.empty((n, 4, 4))
    J = np.empty((6, n))
    A = np.empty((n, n))
    g = np.empty(n)
    dq = np.empty(n)
    e = np.empty(6)
    en = np.empty(6)
    trial = np.empty(n)
    free = np.empty(n, np.bool_)
    T = fk_frames(consts, axis, rot, sign, q, frames)
    dp, dr = _error(T, Tt, e)
    E = 0.5 * (e @ e)
    mu = 1.0
    for it in range(max_iter):
        if dp <= tol_p and dr <= tol_r:
            return True, it, dp, dr
        _jacobian(T, frames, axis, rot, sign, J)
        # Active set: a joint resting on a limit that the step would push further out
        # is taken out of the step (its column zeroed) and the step solved again, so
        # the descent slides along the limit instead of crawling into it.
        free[:] = True
        for _ in range(n):
            _damped_step(J, e, mu * (E + 1e-9), A, g, dq)
            blocked = False
            for k in range(n):
                pushing_out = (q[k] <= lower[k] and dq[k] < 0.0) or (
                    q[k] >= upper[k] and dq[k] > 0.0
                )
                if free[k] and pushing_out:
                    free[k] = False
                    J[:, k] = 0.0
                    blocked = True
            if not blocked:
                break
        for k in range(n):
            trial[k] = min(max(q[k] + dq[k], lower[k]), upper[k])
        Tn = fk_frames(consts, axis, rot, sign, trial, frames)
        dpn, drn = _error(Tn, Tt, en)
        En = 0.5 * (en @ en)
        if En < E:
            q[:] = trial
            T = Tn
            e[:] = en
            E = En
            dp, dr = dpn, drn
            mu = max(mu * 0.3, 1e-6)
        else:
            mu *= 10.0
            if mu > 1e8:
                break
            T = fk_frames(consts, axis, rot, sign, q, frames)
    return dp <= tol_p and dr <= tol_r, max_iter, dp, dr


@nb.njit(cache=True)
def _wrap(q, q_ref, lower, upper, rot):
    two_pi = 2.0 * np.pi
    for k in range(q.shape[0]):
        if rot[k] == 1:
            c = q[k] + np.round((q_ref[k] - q[k]) / two_pi) * two_pi
            if lower[k] <= c <= upper[k]:
                q[k] = c


@nb.njit(cache=True)
def _pull(consts, axis, rot, sign, Tt, q, q_ref, lower, upper, tol_p, tol_r, steps):
    """Move a solution towards q_ref through the null space while holding the pose.

    Each step is dq = J+ e + (I - J+ J)(q_ref - q): the first term keeps the TCP on
    target, the second moves the redundant joints. A final LM polish restores the
    tolerance; the move is kept only if it ends nearer q_ref and within tolerance.
    Returns the iterations spent.
    """
    n = q.shape[0]
    frames = np.empty((n, 4, 4))
    J = np.empty((6, n))
    e = np.empty(6)
    trial = q.copy()
    for _ in range(steps):
        T = fk_frames(consts, axis, rot, sign, trial, frames)
        _jacobian(T, frames, axis, rot, sign, J)
        _error(T, Tt, e)
        M = J @ np.ascontiguousarray(J.T)
        for i in range(6):
            M[i, i] += 1e-9
        d = q_ref - trial
        w = np.linalg.solve(M, J @ d - e)
        dq = d - J.T @ w  # = J+ e + (I - J+ J) d
        for k in range(n):
            trial[k] = min(max(trial[k] + dq[k], lower[k]), upper[k])
        if np.sqrt(dq @ dq) < 1e-4:
            break
    ok, it, _, _ = _descend(consts, axis, rot, sign, Tt, trial, lower, upper, tol_p, tol_r, 30)
    if ok and np.sum((trial - q_ref) ** 2) < np.sum((q - q_ref) ** 2):
        q[:] = trial
    return steps + it


@nb.njit(cache=True)
def solve_one(
    consts, axis, rot, sign, Tt, q_ref, seeds, lower, upper, tol_p, tol_r, max_iter, pull_steps
):
    """Solve from q_ref, then from each seed row, until a solution within tolerance.

    The reference attempt may take ``max_iter`` iterations; a restart gets a third of
    that (a good seed converges in a few tens; many short restarts beat few long ones
    near singular targets), and the best restart is finally polished with ``max_iter``.

    Returns (q, status, iterations, attempts, dp, dr). When a restart (not the
    reference) solves, one more seed is tried and the solution nearer q_ref is kept:
    the reference seed lands on the nearest branch in practice, a restart may not.
    """
    n = q_ref.shape[0]
    start = np.minimum(np.maximum(q_ref, lower), upper)
    best = start.copy()
    best_cost = np.inf
    best_dp = np.inf
    best_dr = np.inf
    found = np.empty(n)
    have = False
    iterations = 0
    attempts = 0
    extra = 0
    for a in range(seeds.shape[0] + 1):
        attempts = a + 1
        q = start.copy() if a == 0 else seeds[a - 1].copy()
        budget = max_iter if a == 0 else max(max_iter // 3, 10)
        ok, it, dp, dr = _descend(
            consts, axis, rot, sign, Tt, q, lower, upper, tol_p, tol_r, budget
        )
        iterations += it
        if dp + dr < best_cost:
            best_cost = dp + dr
            best[:] = q
            best_dp, best_dr = dp, dr
        if ok:
            _wrap(q, q_ref, lower, upper, rot)
            if not have or np.sum((q - q_ref) ** 2) < np.sum((found - q_ref) ** 2):
                found[:] = q
                have = True
            if a == 0:
                break
        if have:
            extra += 1
            if extra >= 2:
                break
    if not have and seeds.shape[0] > 0 and best_dp < 0.01:
        # Close but slow (near a singularity): give the best attempt a full budget.
        q = best.copy()
        ok, it, dp, dr = _descend(
            consts, axis, rot, sign, Tt, q, lower, upper, tol_p, tol_r, max_iter
        )
        iterations += it
        if ok:
            _wrap(q, q_ref, lower, upper, rot)
            found[:] = q
            have = True
        elif dp + dr < best_cost:
            best[:] = q
            best_dp, best_dr = dp, dr
    if not have:
        return best, NOT_CONVERGED, iterations, attempts, best_dp, best_dr
    if n > 6 and pull_steps > 0:
        iterations += _pull(
            consts, axis, rot, sign, Tt, found, q_ref, lower, upper, tol_p, tol_r, pull_steps
        )
    frames = np.empty((n, 4, 4))
    e = np.empty(6)
    dp, dr = _error(fk_frames(consts, axis, rot, sign, found, frames), Tt, e)
    return found, SOLVED, iterations, attempts, dp, dr


@nb.njit(cache=True)
def solve_batch(
    consts, axis, rot, sign, Tts, q_refs, seeds, lower, upper, tol_p, tol_r, max_iter, pull_steps
):
    """:func:`solve_one` over (N, 4, 4) targets with (N, dof) references; seeds (N, S, dof)."""
    N = Tts.shape[0]
    n = q_refs.shape[1]
    Q = np.empty((N, n))
    status = np.empty(N, np.int64)
    iters = np.empty(N, np.int64)
    attempts = np.empty(N, np.int64)
    err = np.empty((N, 2))
    for i in range(N):
        q, s, it, at, dp, dr = solve_one(
            consts,
            axis,
            rot,
            sign,
            Tts[i],
            q_refs[i],
            seeds[i],
            lower,
            upper,
            tol_p,
            tol_r,
            max_iter,
            pull_steps,
        )
        Q[i] = q
        status[i] = s
        iters[i] = it
        attempts[i] = at
        err[i, 0] = dp
        err[i, 1] = dr
    return Q, status, iters, attempts, err
