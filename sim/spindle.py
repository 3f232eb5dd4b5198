"""The simulated screw spindle: torque-angle traces of small screws in an aluminium frame.

A tightening has three phases, all functions of the spindle angle [deg] from the moment
the screw's first thread catches the hole:

* **run-down**: the thread forms its way into the boss; the torque builds up over the
  first turns to a small, noisy thread-forming/friction level (about a fifth of the
  target) and creeps up with the engaged length;
* **seating**: after ``length / pitch`` turns the head touches the boss and the torque
  rises steeply (a joint stiffness of a few mN m per degree);
* **final tightening**: the spindle shuts off at the first sample at or above the target
  torque (with a small dynamic overshoot), or when it has turned ``max_angle`` without
  reaching it.

:func:`tighten` produces a :class:`TighteningTrace` for a good joint or for one of the
:class:`Fault` kinds. Every random choice comes from the generator passed in, so one seed
gives one trace. Judging a trace is not this module's business (``cells.tightening``
does it from the trace alone).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import frozen
from planners.errors import InputError

__all__ = ["Fault", "ScrewJoint", "SpindleProgram", "TighteningTrace", "tighten"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class Fault(Enum):
    """What goes wrong in a simulated tightening (``NONE``: a good joint)."""

    NONE = "none"
    MISSING_SCREW = "missing_screw"
    CROSS_THREAD = "cross_thread"
    STRIPPED = "stripped"
    NO_SEAT = "no_seat"
    HIGH_TORQUE = "high_torque"
    HOLE_POSITION = "hole_position"


def _positive(value: float, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"{name}: expected a positive finite number, got {value!r}")
    return v


@dataclass(frozen=True)
class ScrewJoint:
    """The physics of one screw in one hole (an M1.2-M1.6 thread-forming screw in aluminium).

    Attributes:
        pitch: Thread pitch [m] (0.3 mm for M1.4).
        length: Thread length under the head that runs into the hole [m] (3 mm).
        rundown_torque: Mean thread-forming/friction torque once fully engaged [N m].
        rundown_spread: Relative spread of ``rundown_torque`` between joints (uniform +-).
        noise: Standard deviation of the sample-to-sample torque noise [N m].
        seat_stiffness: Torque rise per degree once the head is seated [N m/deg].
        stiffness_spread: Relative spread of ``seat_stiffness`` between joints (uniform +-).
        seat_angle_sd: Standard deviation of where the head seats around the nominal
            ``360 * length / pitch`` [deg] (where the first thread catches).
    """

    pitch: float = 0.0003
    length: float = 0.003
    rundown_torque: float = 0.018
    rundown_spread: float = 0.3
    noise: float = 0.0012
    seat_stiffness: float = 0.004
    stiffness_spread: float = 0.25
    seat_angle_sd: float = 30.0

    def __post_init__(self) -> None:
        for name in ("pitch", "length", "rundown_torque", "noise", "seat_stiffness"):
            _positive(getattr(self, name), f"ScrewJoint.{name}")
        for name in ("rundown_spread", "stiffness_spread"):
            v = float(getattr(self, name))
            if not (0.0 <= v < 1.0):
                raise InputError(f"ScrewJoint.{name}: expected 0 <= value < 1, got {v!r}")
        if not (math.isfinite(self.seat_angle_sd) and self.seat_angle_sd >= 0):
            raise InputError(f"ScrewJoint.seat_angle_sd: expected >= 0, got {self.seat_angle_sd}")

    @property
    def seat_angle(self) -> float:
        """Nominal spindle angle at which the head seats [deg]: ``360 * length / pitch``."""
        return 360.0 * self.length / self.pitch


@dataclass(frozen=True)
class SpindleProgram:
    """What the spindle controller is told for one tightening.

    Attributes:
        target_torque: Shut-off torque [N m].
        max_angle: Angle after which the spindle gives up [deg].
        step: Sampling interval of the trace [deg].
        overshoot: Largest dynamic overshoot past the target at shut-off, relative.
    """

    target_torque: float
    max_angle: float
    step: float = 0.5
    overshoot: float = 0.03

    def __post_init__(self) -> None:
        _positive(self.target_torque, "SpindleProgram.target_torque")
        _positive(self.max_angle, "SpindleProgram.max_angle")
        _positive(self.step, "SpindleProgram.step")
        if not (0.0 <= self.overshoot < 0.5):
            raise InputError(
                f"SpindleProgram.overshoot: expected 0 <= value < 0.5, got {self.overshoot}"
            )
        if self.max_angle / self.step > 1e6:
            raise InputError("SpindleProgram: max_angle / step gives more than 1e6 samples")


@dataclass(frozen=True)
class TighteningTrace:
    """A torque-angle trace as the spindle records it.

    Attributes:
        angle: (N,) spindle angle from thread engagement [deg], increasing (read-only).
        torque: (N,) torque at each angle [N m] (read-only).
    """

    angle: NDArray[np.float64]
    torque: NDArray[np.float64]

    def __post_init__(self) -> None:
        a = np.asarray(self.angle, dtype=np.float64).reshape(-1)
        t = np.asarray(self.torque, dtype=np.float64).reshape(-1)
        if a.shape != t.shape or a.size == 0:
            raise InputError(
                f"TighteningTrace: angle and torque must be non-empty and of one length, "
                f"got {a.shape} and {t.shape}"
            )
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(t))):
            raise InputError("TighteningTrace: every angle and torque must be finite")
        if a.size > 1 and np.any(np.diff(a) <= 0):
            raise InputError("TighteningTrace: angle must increase strictly")
        object.__setattr__(self, "angle", frozen(a))
        object.__setattr__(self, "torque", frozen(t))

    @classmethod
    def from_arrays(cls, angle: npt.ArrayLike, torque: npt.ArrayLike) -> TighteningTrace:
        """A trace from (N,) angles [deg] and torques [N m] (checked)."""
        return cls(np.asarray(angle, dtype=np.float64), np.asarray(torque, dtype=np.float64))

    @property
    def final_torque(self) -> float:
        """Torque at the last sample [N m]."""
        return float(self.torque[-1])

    @property
    def final_angle(self) -> float:
        """Angle at the last sample [deg]."""
        return float(self.angle[-1])

    @property
    def peak_torque(self) -> float:
        """Largest torque in the trace [N m]."""
        return float(self.torque.max())


def _rundown(
    theta: NDArray[np.float64], level: float, seat: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Thread-forming torque: builds over the first two turns, creeps with engaged length."""
    build = np.clip(theta / 720.0, 0.0, 1.0)
    creep = 0.75 + 0.25 * np.clip(theta / seat, 0.0, 1.0)
    wobble = 1.0 + 0.08 * np.sin(np.deg2rad(theta) + rng.uniform(0, 2 * np.pi))
    return level * build * creep * wobble


def _shut_off(
    theta: NDArray[np.float64],
    torque: NDArray[np.float64],
    program: SpindleProgram,
    rng: np.random.Generator,
) -> TighteningTrace:
    """Stop at the first sample at or above the target (with overshoot), or at max angle."""
    torque = np.maximum(torque, 0.0)
    hit = np.flatnonzero(torque >= program.target_torque)
    if hit.size:
        i = int(hit[0])
        torque = torque[: i + 1].copy()
        over = program.target_torque * (1.0 + rng.uniform(0.0, program.overshoot))
        torque[i] = max(torque[i], over)
        theta = theta[: i + 1]
    return TighteningTrace(theta, torque)


def tighten(
    joint: ScrewJoint,
    program: SpindleProgram,
    rng: np.random.Generator,
    fault: Fault = Fault.NONE,
) -> TighteningTrace:
    """Simulate one tightening and return the spindle's torque-angle trace.

    Args:
        joint: Screw and hole physics.
        program: Target torque, angle limit and sampling.
        rng: Source of every random choice (joint-to-joint spread, noise, fault details).
        fault: What goes wrong; ``Fault.NONE`` for a good joint.

    Returns:
        The trace from thread engagement to shut-off (or to ``program.max_angle``).

    Raises:
        InputError: ``fault`` is not a :class:`Fault`.
    """
    if not isinstance(fault, Fault):
        raise InputError(
            f"fault: expected a Fault ({', '.join(f.name for f in Fault)}), got {fault!r}"
        )
    n = math.floor(program.max_angle / program.step) + 1
    theta = np.arange(n, dtype=np.float64) * program.step
    target = program.target_torque
    noise = rng.normal(0.0, joint.noise, n)
    level = joint.rundown_torque * (1.0 + rng.uniform(-joint.rundown_spread, joint.rundown_spread))
    stiffness = joint.seat_stiffness * (
        1.0 + rng.uniform(-joint.stiffness_spread, joint.stiffness_spread)
    )
    seat = joint.seat_angle + float(
        np.clip(
            rng.normal(0.0, joint.seat_angle_sd), -3 * joint.seat_angle_sd, 3 * joint.seat_angle_sd
        )
    )
    rundown = _rundown(theta, level, seat, rng)
    rise = stiffness * np.maximum(theta - seat, 0.0)

    if fault is Fault.NONE:
        torque = rundown + rise + noise
    elif fault is Fault.MISSING_SCREW:
        # An empty bit turns in air: bearing friction only.
        torque = np.abs(rng.normal(0.0004, 0.0002, n))
    elif fault is Fault.HOLE_POSITION:
        # The screw tip skids on the boss beside the hole: near-zero torque with short
        # spikes where the bit catches the screw recess and slips (cam-out).
        torque = np.abs(rng.normal(0.0008, 0.0004, n))
        pos = rng.uniform(20.0, 120.0)
        while pos < theta[-1]:
            i = int(pos / program.step)
            width = int(rng.integers(1, 4))
            torque[i : i + width] += rng.uniform(0.012, 0.06)
            pos += rng.uniform(20.0, 200.0)
    elif fault is Fault.CROSS_THREAD:
        # The thread goes in askew: high binding torque early, rising until the target is
        # reached long before the head could seat.
        bind_at = seat * rng.uniform(0.12, 0.6)
        high = rng.uniform(2.0, 3.5) * level
        early = high * np.clip(theta / 360.0, 0.0, 1.0)
        climb = (target - high) * np.clip(theta / bind_at, 0.0, None) ** 2
        torque = early + np.maximum(climb, 0.0) + noise
    elif fault is Fault.STRIPPED:
        # The head seats, the torque rises, then the thread in the boss shears: the torque
        # collapses and the screw spins without clamping.
        strip_torque = target * rng.uniform(0.55, 0.9)
        torque = rundown + rise + noise
        i_strip = int(np.argmax(rundown + rise >= strip_torque))
        drop_len = int(rng.integers(6, 40))
        residual = strip_torque * rng.uniform(0.1, 0.35)
        after = np.arange(n - i_strip, dtype=np.float64)
        fall = residual + (strip_torque - residual) * np.exp(-after / max(drop_len / 3, 1.0))
        torque[i_strip:] = fall + noise[i_strip:]
    elif fault is Fault.NO_SEAT:
        # No seat (floating screw, hole too deep): the run-down continues past the angle
        # at which the head should have seated.
        torque = _rundown(theta, level, theta[-1], rng) + noise
    else:  # Fault.HIGH_TORQUE
        # Something jams (chip, burr, bottoming in a blind hole): the torque jumps past
        # the spindle's maximum in a sample or two, before the angle window.
        jam = seat * rng.uniform(0.3, 0.9)
        torque = rundown + noise
        torque = np.where(theta >= jam, rng.uniform(1.4, 2.5) * target, torque)
    return _shut_off(theta, torque, program, rng)
