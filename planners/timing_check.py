"""Shared by the timing candidates: the outcome enum, their failures, the peak check."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from planners.limit_check import LimitKind, peak_ratios, tcp_speeds
from planners.limits import JointLimits
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from planners.arm import Arm

__all__ = ["CandidateError", "NotShorterError", "TimingStatus", "peak_figures"]

_TCP_SPACING = 0.005  # TCP speed checked at least this often [s]
_FRACTIONS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


class TimingStatus(Enum):
    """Outcome of :func:`planners.timing.time_parameterize`."""

    SUCCESS = "success"
    INFEASIBLE = "infeasible"
    LIMITS_NOT_MET = "limits_not_met"


class NotShorterError(Exception):
    """A candidate stopped early: it cannot be shorter than the bound it was given."""


class CandidateError(Exception):
    """A candidate has no trajectory: ``status`` and ``reason`` say why."""

    def __init__(self, status: TimingStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def peak_figures(
    traj: Trajectory, limits: JointLimits, arm: Arm | None, tcp_speed: float | None
) -> dict[str, float]:
    """Largest value / limit over every interval of the trajectory (see ``peak_ratios``)."""
    r = peak_ratios(traj, limits)
    out = {
        "position": r[LimitKind.POSITION] * 1e6,  # any excursion (> 1e-6 of the range) fails
        "velocity": r[LimitKind.VELOCITY],
        "acceleration": r[LimitKind.ACCELERATION],
        "jerk": r[LimitKind.JERK],
        "tcp_speed": 0.0,
    }
    if tcp_speed is not None and arm is not None:
        # every interval at fractions of it, and every _TCP_SPACING (long intervals)
        f = _FRACTIONS[:-1]
        times = traj.t[0] + np.arange(0.0, traj.duration, _TCP_SPACING)
        q = np.concatenate((traj.sample_intervals(f, 0).reshape(-1, traj.dof),
                            traj.sample(times, 0)))  # fmt: skip
        qd = np.concatenate((traj.sample_intervals(f, 1).reshape(-1, traj.dof),
                             traj.sample(times, 1)))  # fmt: skip
        out["tcp_speed"] = float(np.max(tcp_speeds(arm, q, qd)) / tcp_speed) if q.size else 0.0
    return out
