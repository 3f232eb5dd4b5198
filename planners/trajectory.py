"""The joint trajectory value: knots of position, velocity and acceleration over time.

Between two knots the trajectory is the **quintic Hermite polynomial** that matches
position, velocity and acceleration at both knots. That one function is what
:meth:`Trajectory.sample` returns, what :func:`planners.limit_check.check_limits` checks
and what a streamer sends, so all three see the same motion. Position, velocity and
acceleration are continuous everywhere; jerk (the third derivative) is a quadratic
inside each interval and may jump at a knot, where :meth:`Trajectory.sample` returns
the value of the interval that starts at that knot (the last knot takes the last
interval's value).

A time parameterization that produces a trajectory places knots where its own jerk
jumps, so that the quintic between knots reproduces what it computed (exactly when the
computed motion is itself a polynomial of degree five or less between knots).
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.errors import InputError

__all__ = ["FORMAT", "VERSION", "Trajectory"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

FORMAT = "robotcell.trajectory"
VERSION = 1


def _array(values: object, field: str, ndim: int) -> NDArray[np.float64]:
    try:
        out = np.array(values, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"trajectory.{field}: expected numbers, got {type(values).__name__}"
        ) from exc
    if out.ndim != ndim:
        raise InputError(f"trajectory.{field}: expected a {ndim}-D array, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"trajectory.{field}: every value must be finite")
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Trajectory:
    """A joint trajectory: knots ``t`` with ``q``, ``qd``, ``qdd``; quintic between knots.

    Attributes:
        joint_names: Joint names, the column order of every array.
        t: (N,) knot times [s], strictly increasing, N >= 1 (one knot: a trajectory
            that holds one configuration, duration 0).
        q: (N, dof) positions [rad or m].
        qd: (N, dof) velocities [rad/s or m/s].
        qdd: (N, dof) accelerations [rad/s^2 or m/s^2].

    Raises:
        InputError: a field has the wrong shape, a non-finite value, or ``t`` is not
            strictly increasing; the message names the field.
    """

    joint_names: tuple[str, ...]
    t: NDArray[np.float64]
    q: NDArray[np.float64]
    qd: NDArray[np.float64]
    qdd: NDArray[np.float64]

    def __post_init__(self) -> None:
        names = self.joint_names
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise InputError("trajectory.joint_names: expected a sequence of joint names (str)")
        names = tuple(names)
        if len(set(names)) != len(names) or not names:
            raise InputError(f"trajectory.joint_names: expected unique names, got {list(names)}")
        object.__setattr__(self, "joint_names", names)
        t = _array(self.t, "t", 1)
        if t.size < 1:
            raise InputError("trajectory.t: expected at least one knot")
        if np.any(np.diff(t) <= 0):
            raise InputError("trajectory.t: knot times must be strictly increasing")
        object.__setattr__(self, "t", t)
        for field in ("q", "qd", "qdd"):
            value = _array(getattr(self, field), field, 2)
            if value.shape != (t.size, len(names)):
                raise InputError(
                    f"trajectory.{field}: expected shape {(t.size, len(names))}, got {value.shape}"
                )
            object.__setattr__(self, field, value)

    # ------------------------------------------------------------------ properties
    @property
    def dof(self) -> int:
        """Number of joints."""
        return len(self.joint_names)

    @property
    def duration(self) -> float:
        """Time from the first knot to the last [s]."""
        return float(self.t[-1] - self.t[0])

    @property
    def start_time(self) -> float:
        """Time of the first knot [s]."""
        return float(self.t[0])

    @property
    def end_time(self) -> float:
        """Time of the last knot [s]."""
        return float(self.t[-1])

    # ------------------------------------------------------------------ sampling
    def sample(self, times: npt.ArrayLike, order: int = 0) -> NDArray[np.float64]:
        """Evaluate the trajectory or one of its derivatives.

        Times before the first knot or after the last are clamped to the ends (the
        trajectory holds its end states; velocity and higher orders are those of the
        end knot, so a trajectory that ends at rest holds still).

        Args:
            times: (M,) times [s] (a scalar gives (1, dof)).
            order: 0 position, 1 velocity, 2 acceleration, 3 jerk.

        Returns:
            (M, dof) values in joint units per second**order.

        Raises:
            InputError: ``order`` outside 0..3 or non-finite times.
        """
        if order not in (0, 1, 2, 3):
            raise InputError(f"order: expected 0, 1, 2 or 3, got {order!r}")
        tt = np.atleast_1d(np.asarray(times, dtype=np.float64)).reshape(-1)
        if not np.all(np.isfinite(tt)):
            raise InputError("times: every value must be finite")
        t = self.t
        if t.size == 1:
            base = (self.q, self.qd, self.qdd, np.zeros_like(self.q))[order]
            return np.repeat(base, tt.size, axis=0)
        tt = np.clip(tt, t[0], t[-1])
        k = np.clip(np.searchsorted(t, tt, side="right") - 1, 0, t.size - 2)
        h = (t[k + 1] - t[k])[:, None]
        x = ((tt - t[k])[:, None]) / h
        return _quintic(
            self.q[k], self.qd[k], self.qdd[k], self.q[k + 1], self.qd[k + 1], self.qdd[k + 1],
            h, x, order,
        )  # fmt: skip

    def sample_intervals(self, fractions: npt.ArrayLike, order: int = 0) -> NDArray[np.float64]:
        """Evaluate every interval at fractions of its length, ends included.

        Unlike :meth:`sample`, fraction 1 gives the value at the end of an interval from
        the inside (the left limit of a jerk that jumps at the knot).

        Args:
            fractions: (F,) fractions in [0, 1].
            order: 0 position, 1 velocity, 2 acceleration, 3 jerk.

        Returns:
            (N - 1, F, dof) values (empty for a one-knot trajectory).
        """
        if order not in (0, 1, 2, 3):
            raise InputError(f"order: expected 0, 1, 2 or 3, got {order!r}")
        f = np.asarray(fractions, dtype=np.float64).reshape(-1)
        n = self.t.size - 1
        if n == 0:
            return np.zeros((0, f.size, self.dof))
        k = np.repeat(np.arange(n), f.size)
        h = (self.t[k + 1] - self.t[k])[:, None]
        x = np.tile(f, n)[:, None]
        out = _quintic(
            self.q[k], self.qd[k], self.qdd[k], self.q[k + 1], self.qd[k + 1], self.qdd[k + 1],
            h, x, order,
        )  # fmt: skip
        return out.reshape(n, f.size, self.dof)

    def at(self, time: float) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """State at one time: ``(q, qd, qdd, qddd)``, each (dof,)."""
        return (
            self.sample(time, 0)[0],
            self.sample(time, 1)[0],
            self.sample(time, 2)[0],
            self.sample(time, 3)[0],
        )

    def resample(self, rate_hz: float) -> Trajectory:
        """A trajectory with knots at a fixed rate.

        Knots at ``t0 + k / rate_hz`` for every such time within the trajectory, plus the
        last knot if it does not fall on that grid. Values come from :meth:`sample`;
        between the new knots the quintic is that of the new knots, which equals the
        original wherever the original is a quintic across the new interval and is a
        close approximation elsewhere.

        Args:
            rate_hz: Knot rate [Hz], > 0.
        """
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise InputError(f"rate_hz: expected a positive number, got {rate_hz!r}")
        n = int(np.floor(self.duration * rate_hz + 1e-9))
        times = self.t[0] + np.arange(n + 1) / rate_hz
        if self.t[-1] - times[-1] > 1e-9:
            times = np.append(times, self.t[-1])
        else:
            times[-1] = min(times[-1], self.t[-1])
        return Trajectory(
            self.joint_names, times, self.sample(times, 0), self.sample(times, 1),
            self.sample(times, 2),
        )  # fmt: skip

    def shifted(self, dt: float) -> Trajectory:
        """The same motion with every knot time shifted by ``dt`` [s]."""
        return Trajectory(self.joint_names, self.t + float(dt), self.q, self.qd, self.qdd)

    # ------------------------------------------------------------------ combining
    @classmethod
    def concatenate(cls, trajs: Sequence[Trajectory], *, atol: float = 1e-6) -> Trajectory:
        """Join trajectories end to start, each shifted to begin where the previous ends.

        The joined knots are shared: the first knot of each following trajectory
        replaces the last of the one before.

        Args:
            trajs: One or more trajectories with the same joint names.
            atol: Largest difference of position [rad], velocity [rad/s] and acceleration
                [rad/s^2] allowed at a join.

        Raises:
            InputError: no trajectories, different joint names, or a discontinuity at a
                join (the message gives the join index and the quantity).
        """
        trajs = list(trajs)
        if not trajs:
            raise InputError("trajs: expected at least one trajectory")
        names = trajs[0].joint_names
        t_parts = [trajs[0].t - trajs[0].t[0]]
        q_parts, qd_parts, qdd_parts = [trajs[0].q], [trajs[0].qd], [trajs[0].qdd]
        for i, tr in enumerate(trajs[1:], start=1):
            if tr.joint_names != names:
                raise InputError(
                    f"trajs[{i}].joint_names: {list(tr.joint_names)} differ from {list(names)}"
                )
            for field in ("q", "qd", "qdd"):
                gap = float(
                    np.max(np.abs(getattr(tr, field)[0] - getattr(trajs[i - 1], field)[-1]))
                )
                if gap > atol:
                    raise InputError(
                        f"trajs[{i}].{field}: starts {gap:.3g} away from the end of trajs[{i - 1}]"
                        f" (allowed {atol:g})"
                    )
            offset = t_parts[-1][-1]
            t_parts.append(tr.t[1:] - tr.t[0] + offset)
            q_parts.append(tr.q[1:])
            qd_parts.append(tr.qd[1:])
            qdd_parts.append(tr.qdd[1:])
        t = np.concatenate(t_parts) + trajs[0].t[0]
        return cls(
            names, t, np.concatenate(q_parts), np.concatenate(qd_parts),
            np.concatenate(qdd_parts),
        )  # fmt: skip

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``format``, ``version``, ``joint_names``, ``t``, ``q``, ``qd``, ``qdd``.

        Every array is a nested list of floats.
        """
        return {
            "format": FORMAT,
            "version": VERSION,
            "joint_names": list(self.joint_names),
            "t": self.t.tolist(),
            "q": self.q.tolist(),
            "qd": self.qd.tolist(),
            "qdd": self.qdd.tolist(),
        }

    @classmethod
    def from_dict(cls, data: object, source: str = "trajectory") -> Trajectory:
        """Build from the JSON form of :meth:`to_dict`; InputError names the bad key."""
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object")
        if data.get("format") != FORMAT:
            raise InputError(f"{source}:format: expected {FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != VERSION:
            raise InputError(f"{source}:version: expected {VERSION}, got {data.get('version')!r}")
        for key in ("joint_names", "t", "q", "qd", "qdd"):
            if key not in data:
                raise InputError(f"{source}:{key}: missing")
        try:
            return cls(tuple(data["joint_names"]), data["t"], data["q"], data["qd"], data["qdd"])
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write to ``path``: ``.npz`` (numpy arrays) or ``.json`` (see :meth:`to_dict`).

        Raises:
            InputError: any other suffix.
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".json":
            p.write_text(json.dumps(self.to_dict()))
        elif suffix == ".npz":
            with p.open("wb") as f:
                np.savez(
                    f, format=np.array(FORMAT), version=np.array(VERSION),
                    joint_names=np.array(self.joint_names, dtype=str),
                    t=self.t, q=self.q, qd=self.qd, qdd=self.qdd,
                )  # fmt: skip
        else:
            raise InputError(f"path: {p.name!r} must end in .npz or .json")
        logger.debug("saved trajectory of %d knots to %s", self.t.size, p)

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        """Read a trajectory written by :meth:`save` (by suffix ``.npz`` or ``.json``).

        Raises:
            InputError: unknown suffix, or the file is not a valid trajectory (the
                message names the file and key).
        """
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".json", ".npz"):
            raise InputError(f"path: {p.name!r} must end in .npz or .json")
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        if suffix == ".json":
            try:
                data = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"{p}: not valid JSON: {exc}") from None
            return cls.from_dict(data, str(p))
        if suffix == ".npz":
            try:
                with np.load(p, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise InputError(f"{p}: not a readable .npz archive: {exc}") from None
            doc: dict[str, Any] = {
                "format": str(data["format"]) if "format" in data else None,
                "version": int(data["version"]) if "version" in data else None,
            }
            for key in ("t", "q", "qd", "qdd"):
                if key in data:
                    doc[key] = data[key]
            if "joint_names" in data:
                doc["joint_names"] = [str(n) for n in data["joint_names"]]
            return cls.from_dict(doc, str(p))
        raise InputError(f"path: {p.name!r} must end in .npz or .json")


def _quintic(
    q0: NDArray, v0: NDArray, a0: NDArray, q1: NDArray, v1: NDArray, a1: NDArray,
    h: NDArray, x: NDArray, order: int,
) -> NDArray[np.float64]:  # fmt: skip
    """Quintic Hermite on rows: (M, dof) end states, h (M, 1) [s], x (M, 1) in [0, 1]."""
    # Power-basis coefficients in the normalised variable x (derivatives wrt x).
    d = q1 - q0
    V0 = v0 * h
    V1 = v1 * h
    A0 = a0 * h * h
    A1 = a1 * h * h
    c0 = q0
    c1 = V0
    c2 = 0.5 * A0
    c3 = 10.0 * d - 6.0 * V0 - 4.0 * V1 - 1.5 * A0 + 0.5 * A1
    c4 = -15.0 * d + 8.0 * V0 + 7.0 * V1 + 1.5 * A0 - A1
    c5 = 6.0 * d - 3.0 * V0 - 3.0 * V1 - 0.5 * A0 + 0.5 * A1
    if order == 0:
        return c0 + x * (c1 + x * (c2 + x * (c3 + x * (c4 + x * c5))))
    if order == 1:
        return (c1 + x * (2 * c2 + x * (3 * c3 + x * (4 * c4 + x * 5 * c5)))) / h
    if order == 2:
        return (2 * c2 + x * (6 * c3 + x * (12 * c4 + x * 20 * c5))) / (h * h)
    return (6 * c3 + x * (24 * c4 + x * 60 * c5)) / (h * h * h)
