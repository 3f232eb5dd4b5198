"""Setpoint rows for the streamer: a saved trajectory resampled, or a test move.

The streamer sends one row of joint positions per period. :func:`rows_from_file`
samples a saved :class:`planners.trajectory.Trajectory` at the stream rate;
:func:`quintic_move` makes a rest-to-rest joint-space move inside a fraction of the
arm's velocity, acceleration and jerk limits (for tests and benchmarks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.errors import InputError
from planners.limits import JointLimits

__all__ = ["back_and_forth", "quintic_move", "rows_from_file"]


def quintic_move(
    q0: npt.ArrayLike,
    q1: npt.ArrayLike,
    limits: JointLimits,
    rate_hz: float,
    scale: float = 0.5,
) -> NDArray[np.float64]:
    """A rest-to-rest quintic from ``q0`` to ``q1``, sampled at ``rate_hz``.

    The duration is the shortest for which the peak velocity (1.875 d/T), acceleration
    (5.774 d/T^2) and jerk (60 d/T^3) of every joint stay within ``scale`` times its
    limits.

    Args:
        q0: (dof,) start [rad].
        q1: (dof,) goal [rad].
        limits: The arm's limits.
        rate_hz: Sample rate [Hz].
        scale: Fraction of the limits to use, in (0, 1].

    Returns:
        (N, dof) positions [rad], first row ``q0``, last row ``q1``.
    """
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    if a.shape != (limits.dof,) or b.shape != (limits.dof,):
        raise InputError(f"q0, q1: expected ({limits.dof},) each")
    if not 0 < scale <= 1:
        raise InputError(f"scale: expected a number in (0, 1], got {scale!r}")
    d = np.abs(b - a)
    T = max(
        float(np.max(1.875 * d / (scale * limits.velocity))),
        float(np.max(np.sqrt(5.7735 * d / (scale * limits.acceleration)))),
        float(np.max(np.cbrt(60.0 * d / (scale * limits.jerk)))),
        1.0 / rate_hz,
    )
    n = int(np.ceil(T * rate_hz))
    u = np.arange(n + 1) / n
    s = u**3 * (10 - 15 * u + 6 * u**2)
    return a + s[:, None] * (b - a)


def back_and_forth(
    q0: npt.ArrayLike,
    amplitude: float,
    limits: JointLimits,
    rate_hz: float,
    seconds: float,
    scale: float = 0.5,
) -> NDArray[np.float64]:
    """Quintic moves between ``q0`` and ``q0 + amplitude`` (every joint) for ``seconds``."""
    a = np.asarray(q0, dtype=np.float64)
    b = np.clip(a + amplitude, limits.lower, limits.upper)
    go = quintic_move(a, b, limits, rate_hz, scale)
    back = go[::-1]
    cycle = np.vstack([go, back[1:]])
    reps = int(np.ceil(seconds * rate_hz / (cycle.shape[0] - 1)))
    rows = np.vstack([cycle] + [cycle[1:]] * (reps - 1)) if reps > 1 else cycle
    end = int(seconds * rate_hz)
    # finish at rest: cut at the end of a whole move
    move = go.shape[0] - 1
    end = max(move, (end // move) * move)
    return rows[: end + 1]


def rows_from_file(
    path: str | Path, rate_hz: float, joint_names: tuple[str, ...]
) -> NDArray[np.float64]:
    """Positions of a saved trajectory (``.npz`` or ``.json``) sampled at ``rate_hz``.

    Raises:
        InputError: not a trajectory, or its joints differ from ``joint_names``.
    """
    from planners.trajectory import Trajectory

    traj = Trajectory.load(path)
    if tuple(traj.joint_names) != tuple(joint_names):
        raise InputError(
            f"{path}: joints {list(traj.joint_names)} differ from the arm's {list(joint_names)}"
        )
    return np.asarray(traj.resample(rate_hz).q, dtype=np.float64)
