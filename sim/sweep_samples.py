"""The sweep's samples and their kinematics, in one compiled pass.

The sweep samples a trajectory so that between two samples the TCP moves at most
``max_tcp_step`` and no joint more than ``max_joint_step``. One loop steps through time:
each step is the previous one scaled by how much of the bounds it used (at most doubled),
checked on the quintic and the arm's product of exponentials (:mod:`planners.poe`) and
shortened when it breaks a bound; so every step is within both bounds and most use
97 % or more of one. The loop keeps each sample's joint products: what the screen needs
to place spheres, and the TCP pose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.poe import Screws, joint_products, products_cs
from planners.trajectory import Trajectory

__all__ = ["SampleBuffers", "sweep_samples"]


def screws_args(
    screws: Screws,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """The screws as the kernels take them."""
    return screws.revolute, screws.axis, screws.point


@nb.njit(cache=True)
def _quintic_at(
    t: NDArray[np.float64], q: NDArray[np.float64], qd: NDArray[np.float64],
    qdd: NDArray[np.float64], k: int, tt: float, out: NDArray[np.float64],
) -> None:  # fmt: skip
    """Position at time ``tt`` in interval ``k`` (as :meth:`Trajectory.sample`)."""
    h = t[k + 1] - t[k]
    x = (tt - t[k]) / h
    for i in range(q.shape[1]):
        d = q[k + 1, i] - q[k, i]
        V0 = qd[k, i] * h
        V1 = qd[k + 1, i] * h
        A0 = qdd[k, i] * h * h
        A1 = qdd[k + 1, i] * h * h
        c3 = 10.0 * d - 6.0 * V0 - 4.0 * V1 - 1.5 * A0 + 0.5 * A1
        c4 = -15.0 * d + 8.0 * V0 + 7.0 * V1 + 1.5 * A0 - A1
        c5 = 6.0 * d - 3.0 * V0 - 3.0 * V1 - 0.5 * A0 + 0.5 * A1
        out[i] = q[k, i] + x * (V0 + x * (0.5 * A0 + x * (c3 + x * (c4 + x * c5))))


@nb.njit(cache=True)
def _tcp(P: NDArray[np.float64], tcp0: NDArray[np.float64], out: NDArray[np.float64]) -> None:
    J = P.shape[0]
    for r in range(3):
        out[r] = (
            P[J - 1, r, 0] * tcp0[0]
            + P[J - 1, r, 1] * tcp0[1]
            + P[J - 1, r, 2] * tcp0[2]
            + P[J - 1, r, 3]
        )


@nb.njit(cache=True)
def _stepped(
    t: NDArray[np.float64], q: NDArray[np.float64], qd: NDArray[np.float64],
    qdd: NDArray[np.float64], revolute: NDArray[np.int64], axis: NDArray[np.float64],
    point: NDArray[np.float64], tcp0: NDArray[np.float64], dq_max: float, dp_max: float,
    extra: NDArray[np.float64], T: NDArray[np.float64], Qk: NDArray[np.float64],
    Pk: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]:  # fmt: skip
    """Times (M,), positions (M, J) and products (M, J, 3, 4), each step within the bounds:
    in buffers (``T``, ``Qk``, ``Pk`` or grown copies), returned with M.

    Each step is the previous one scaled by how far it stayed within the bounds (at most
    doubled), shortened and tried again when a candidate breaks a bound; a step ends at
    the next of the sorted ``extra`` times it would pass. ``T``, ``Qk`` and ``Pk`` are
    where the samples go first (grown when they fill up): buffers kept between calls
    spare allocating fresh memory every time.
    """
    J = q.shape[1]
    t0 = t[0]
    t1 = t[-1]
    cap = T.size
    cur = np.empty(J)
    Pcur = np.empty((J, 3, 4))
    pc = np.empty(3)
    pl = np.empty(3)
    E = np.empty((3, 4))
    _quintic_at(t, q, qd, qdd, 0, t0, cur)
    # cosines and sines follow the steps by angle addition (a step turns < 0.1 rad: its
    # own by series to 1e-17), from exact values every 64 samples
    c_last = np.cos(cur)
    s_last = np.sin(cur)
    cq = np.empty(J)
    sq = np.empty(J)
    products_cs(revolute, axis, point, cur, c_last, s_last, Pcur, E)
    _tcp(Pcur, tcp0, pl)
    T[0] = t0
    Qk[0] = cur
    Pk[0] = Pcur
    m = 1
    now = t0
    dt = 1e-3
    k_now = 0
    e = 0
    while e < extra.size and extra[e] <= t0:
        e += 1
    while now < t1:
        cand = min(now + dt, t1)
        if e < extra.size and extra[e] < cand:
            cand = extra[e]
        k = k_now
        while k < t.size - 2 and t[k + 1] <= cand:
            k += 1
        _quintic_at(t, q, qd, qdd, k, cand, cur)
        for j in range(J):
            d = cur[j] - Qk[m - 1, j]
            if m % 64 == 0 or abs(d) > 0.1:
                cq[j] = np.cos(cur[j])
                sq[j] = np.sin(cur[j])
            else:
                d2 = d * d
                cd = 1.0 - d2 / 2.0 * (1.0 - d2 / 12.0 * (1.0 - d2 / 30.0 * (1.0 - d2 / 56.0)))
                sd = d * (
                    1.0 - d2 / 6.0 * (1.0 - d2 / 20.0 * (1.0 - d2 / 42.0 * (1.0 - d2 / 72.0)))
                )
                cq[j] = c_last[j] * cd - s_last[j] * sd
                sq[j] = s_last[j] * cd + c_last[j] * sd
        products_cs(revolute, axis, point, cur, cq, sq, Pcur, E)
        _tcp(Pcur, tcp0, pc)
        r = 0.0
        for j in range(J):
            r = max(r, abs(cur[j] - Qk[m - 1, j]) / dq_max)
        d = np.sqrt((pc[0] - pl[0]) ** 2 + (pc[1] - pl[1]) ** 2 + (pc[2] - pl[2]) ** 2)
        r = max(r, d / dp_max)
        step = cand - now
        if r > 1.0 and step > 1e-12 * max(1.0, abs(t1)):
            dt = step * min(0.97 / r, 0.5)  # too far: back off (to at most half the step)
            continue
        if m == cap:
            cap *= 2
            T2 = np.empty(cap)
            Q2 = np.empty((cap, J))
            P2 = np.empty((cap, J, 3, 4))
            T2[:m] = T[:m]
            Q2[:m] = Qk[:m]
            P2[:m] = Pk[:m]
            T, Qk, Pk = T2, Q2, P2
        T[m] = cand
        Qk[m] = cur
        Pk[m] = Pcur
        m += 1
        pl[:] = pc
        c_last[:] = cq
        s_last[:] = sq
        now = cand
        k_now = k
        while e < extra.size and extra[e] <= now:
            e += 1
        dt = step * min(2.0, 0.97 / max(r, 1e-12))
    return T, Qk, Pk, m


class SampleBuffers:
    """Memory for the samples, kept between sweeps (fresh memory is slow to touch)."""

    def __init__(self, dof: int, size: int = 4096) -> None:
        self.T = np.empty(size)
        self.Q = np.empty((size, dof))
        self.P = np.empty((size, dof, 3, 4))

    def keep(self, T: NDArray[np.float64], Q: NDArray[np.float64], P: NDArray[np.float64]) -> None:
        """Take over buffers a sweep grew."""
        if T.size > self.T.size:
            self.T, self.Q, self.P = T, Q, P


def sweep_samples(
    trajectory: Trajectory,
    screws: Screws,
    max_joint_step: float,
    max_tcp_step: float,
    extra: Sequence[float] = (),
    buffers: SampleBuffers | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sample times (N,), positions (N, dof) and joint products (N, dof, 3, 4).

    Args:
        trajectory: The motion (joint names as the screws' arm).
        screws: The arm's screws (:func:`planners.poe.screws_of`).
        max_joint_step: Largest joint step between samples [rad or m].
        max_tcp_step: Largest TCP travel between samples [m].
        extra: Times sampled as well (tool events), within the trajectory.
        buffers: Memory to put the samples in (the results are views of it, valid until
            the next call with the same buffers).
    """
    t0, t1 = trajectory.start_time, trajectory.end_time
    tr = trajectory
    tcp0 = np.ascontiguousarray(screws.T0_tcp[:3, 3])
    args = (*screws_args(screws), tcp0, max_joint_step, max_tcp_step)
    kin = screws_args(screws)
    if t1 <= t0:
        times = np.array([t0])
        Q = tr.sample(times)
        return times, Q, joint_products(*kin, Q)
    inside = np.unique(np.asarray(extra, dtype=np.float64))
    room = buffers if buffers is not None else SampleBuffers(tr.dof, 1024)
    T, Q, P, m = _stepped(tr.t, tr.q, tr.qd, tr.qdd, *args, inside, room.T, room.Q, room.P)
    room.keep(T, Q, P)
    return T[:m], Q[:m], P[:m]
