"""Judging a screw tightening from its torque-angle trace, and what the cell does about it.

:func:`classify` looks only at the trace (never at how it was made) and returns a
:class:`Judgement`: OK, or NOK with a :class:`Reason`. The features it uses
(:class:`TighteningFeatures`) are the ones a spindle controller's angle monitoring
reports:

* **run-down torque**: median torque before the head seats (thread forming plus friction);
  almost nothing means no screw on the bit or no thread engaged, much more than usual
  means the thread is binding (cross-thread);
* **seat angle**: first angle at which the smoothed torque reaches the seating torque;
* **final torque and angle**: where the spindle stopped, against the target torque
  (+- tolerance) and the angle window;
* **peak torque** and **spikes**: the largest torque (a jam shows above the maximum),
  and short spikes over an otherwise empty trace (a bit skidding beside the hole).

:class:`ReactionPolicy` maps each NOK reason to a :class:`Reaction` (retry, reject the
part, stop the cell), with a bounded number of retries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from planners.errors import InputError
from sim.spindle import SpindleProgram, TighteningTrace

__all__ = [
    "Judgement",
    "Reaction",
    "ReactionPolicy",
    "Reason",
    "TighteningFeatures",
    "TighteningSpec",
    "classify",
    "tightening_features",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_SMOOTH = 5  # samples in the moving average used for seat detection


class Reason(Enum):
    """Verdict of a tightening: ``OK`` or the reason it is NOK."""

    OK = "ok"
    MISSING_SCREW = "missing_screw"
    CROSS_THREAD = "cross_thread"
    STRIPPED = "stripped"
    NO_SEAT = "no_seat"
    HIGH_TORQUE = "high_torque"
    HOLE_POSITION = "hole_position"


class Reaction(Enum):
    """What the cell does after a tightening."""

    CONTINUE = "continue"
    RETRY = "retry"
    REJECT_PART = "reject_part"
    STOP_CELL = "stop_cell"


@dataclass(frozen=True)
class TighteningSpec:
    """Tightening program and acceptance limits of one hole.

    Attributes:
        target_torque: Shut-off torque [N m].
        torque_tolerance: Accepted deviation of the final torque from the target [N m].
        angle_min: Smallest accepted total angle at shut-off [deg].
        angle_max: Largest accepted total angle at shut-off [deg].
        seating_torque: Torque at which the head counts as seated [N m].
        max_torque: Torque that must never be exceeded [N m].
        min_rundown_torque: Below this run-down torque nothing is engaged [N m].
        max_rundown_torque: Above this run-down torque the thread binds [N m].
        spike_torque: A sample at or above this over an empty run-down is a spike [N m].
        overrun: How far past ``angle_max`` the spindle keeps turning before it gives
            up [deg].
    """

    target_torque: float = 0.10
    torque_tolerance: float = 0.01
    angle_min: float = 3450.0
    angle_max: float = 3800.0
    seating_torque: float = 0.04
    max_torque: float = 0.12
    min_rundown_torque: float = 0.005
    max_rundown_torque: float = 0.035
    spike_torque: float = 0.01
    overrun: float = 90.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InputError(f"TighteningSpec.{name}: expected a finite number, got {v!r}")
            if v <= 0:
                raise InputError(f"TighteningSpec.{name}: expected a positive number, got {v!r}")
        problems = []
        if self.angle_min >= self.angle_max:
            problems.append("angle_min must be below angle_max")
        if self.torque_tolerance >= self.target_torque:
            problems.append("torque_tolerance must be below target_torque")
        if not self.min_rundown_torque < self.max_rundown_torque < self.seating_torque:
            problems.append("min_rundown_torque < max_rundown_torque < seating_torque is required")
        if not self.seating_torque < self.target_torque - self.torque_tolerance:
            problems.append("seating_torque must be below target_torque - torque_tolerance")
        if not self.target_torque + self.torque_tolerance <= self.max_torque:
            problems.append("max_torque must be at least target_torque + torque_tolerance")
        if problems:
            raise InputError(f"TighteningSpec: {'; '.join(problems)}")

    @property
    def stop_angle(self) -> float:
        """Angle at which the spindle gives up [deg]: ``angle_max + overrun``."""
        return self.angle_max + self.overrun

    def program(self, step: float = 0.5) -> SpindleProgram:
        """The spindle program for this hole, sampled every ``step`` [deg]."""
        return SpindleProgram(self.target_torque, self.stop_angle, step)


@dataclass(frozen=True)
class TighteningFeatures:
    """What :func:`classify` reads from a trace.

    Attributes:
        rundown_torque: Median torque before the seat (or over the whole trace) [N m].
        seat_angle: First angle where the smoothed torque reaches the seating torque
            [deg], NaN when it never does.
        final_torque: Torque at shut-off [N m].
        final_angle: Total angle at shut-off [deg].
        peak_torque: Largest torque [N m].
        peak_smoothed: Largest torque of the moving average [N m].
        spikes: Samples at or above the spike torque.
    """

    rundown_torque: float
    seat_angle: float
    final_torque: float
    final_angle: float
    peak_torque: float
    peak_smoothed: float
    spikes: int

    @property
    def seated(self) -> bool:
        """True when the torque ever reached the seating torque."""
        return not math.isnan(self.seat_angle)


@dataclass(frozen=True)
class Judgement:
    """Verdict on one tightening.

    Attributes:
        reason: ``Reason.OK`` or why it is NOK.
        detail: One line saying which feature decided, with values.
        features: The features the verdict was drawn from.
    """

    reason: Reason
    detail: str
    features: TighteningFeatures

    @property
    def ok(self) -> bool:
        """True for an OK joint."""
        return self.reason is Reason.OK


def tightening_features(trace: TighteningTrace, spec: TighteningSpec) -> TighteningFeatures:
    """Features of ``trace`` against the thresholds of ``spec``."""
    torque = trace.torque
    angle = trace.angle
    k = min(_SMOOTH, torque.size)
    smooth = np.convolve(torque, np.full(k, 1.0 / k), mode="valid")
    above = np.flatnonzero(smooth >= spec.seating_torque)
    if above.size:
        i_seat = int(above[0])
        seat_angle = float(angle[i_seat + k - 1])
    else:
        i_seat = torque.size
        seat_angle = math.nan
    # Run-down: from the end of the first turn (thread forming has built up) to the seat;
    # for a very early seat, the part of the trace before it.
    before = angle < (seat_angle if above.size else math.inf)
    region = before & (angle >= min(360.0, 0.5 * float(angle[min(i_seat, angle.size - 1)])))
    values = torque[region] if np.any(region) else torque[: max(i_seat, 1)]
    return TighteningFeatures(
        rundown_torque=float(np.median(values)),
        seat_angle=seat_angle,
        final_torque=trace.final_torque,
        final_angle=trace.final_angle,
        peak_torque=trace.peak_torque,
        peak_smoothed=float(smooth.max()),
        spikes=int(np.count_nonzero(torque >= spec.spike_torque)),
    )


def classify(trace: TighteningTrace, spec: TighteningSpec) -> Judgement:
    """Judge a tightening from its trace alone.

    Rules, in order (the first that applies decides):

    1. run-down torque below ``min_rundown_torque``: ``HOLE_POSITION`` when there are
       spikes (the bit catches and slips beside the hole), else ``MISSING_SCREW``;
    2. peak torque above ``max_torque``: ``HIGH_TORQUE``;
    3. final torque within the target's tolerance (target reached):
       angle below the window or run-down torque above ``max_rundown_torque``:
       ``CROSS_THREAD``; angle above the window: ``NO_SEAT`` (seated late);
       otherwise ``OK``;
    4. final torque above the tolerance band: ``HIGH_TORQUE``;
    5. target not reached: ``STRIPPED`` when the head had seated (torque rose, then
       collapsed), else ``NO_SEAT``.

    Args:
        trace: The spindle's torque-angle trace.
        spec: Target, window and thresholds of the hole.

    Returns:
        The :class:`Judgement` with the deciding feature in ``detail``.
    """
    f = tightening_features(trace, spec)
    lo, hi = spec.target_torque - spec.torque_tolerance, spec.target_torque + spec.torque_tolerance

    def verdict(reason: Reason, detail: str) -> Judgement:
        return Judgement(reason, detail, f)

    if f.rundown_torque < spec.min_rundown_torque:
        if f.spikes > 0:
            return verdict(
                Reason.HOLE_POSITION,
                f"no engagement (run-down {f.rundown_torque:.4f} N m) with {f.spikes} torque "
                f"spikes up to {f.peak_torque:.4f} N m",
            )
        return verdict(
            Reason.MISSING_SCREW,
            f"no torque: run-down {f.rundown_torque:.4f} N m, peak {f.peak_torque:.4f} N m",
        )
    if f.peak_torque > spec.max_torque:
        return verdict(
            Reason.HIGH_TORQUE,
            f"peak {f.peak_torque:.4f} N m above the maximum {spec.max_torque:.4f} N m "
            f"at {f.final_angle:.1f} deg",
        )
    if lo <= f.final_torque <= hi:
        if f.final_angle < spec.angle_min:
            return verdict(
                Reason.CROSS_THREAD,
                f"target reached at {f.final_angle:.1f} deg, below the window "
                f"[{spec.angle_min:g}, {spec.angle_max:g}] deg",
            )
        if f.rundown_torque > spec.max_rundown_torque:
            return verdict(
                Reason.CROSS_THREAD,
                f"run-down torque {f.rundown_torque:.4f} N m above {spec.max_rundown_torque:g}",
            )
        if f.final_angle > spec.angle_max:
            return verdict(
                Reason.NO_SEAT,
                f"target reached at {f.final_angle:.1f} deg, above the window "
                f"[{spec.angle_min:g}, {spec.angle_max:g}] deg",
            )
        return verdict(
            Reason.OK, f"{f.final_torque:.4f} N m at {f.final_angle:.1f} deg, in the window"
        )
    if f.final_torque > hi:
        return verdict(
            Reason.HIGH_TORQUE, f"final torque {f.final_torque:.4f} N m above {hi:.4f} N m"
        )
    if f.seated:
        return verdict(
            Reason.STRIPPED,
            f"seated at {f.seat_angle:.1f} deg, torque peaked at {f.peak_smoothed:.4f} N m "
            f"and fell to {f.final_torque:.4f} N m without reaching the target",
        )
    return verdict(
        Reason.NO_SEAT,
        f"no seat up to {f.final_angle:.1f} deg (run-down {f.rundown_torque:.4f} N m, "
        f"peak {f.peak_smoothed:.4f} N m below the seating torque)",
    )


def _default_reactions() -> dict[Reason, Reaction]:
    return {
        Reason.MISSING_SCREW: Reaction.RETRY,
        Reason.CROSS_THREAD: Reaction.REJECT_PART,
        Reason.STRIPPED: Reaction.REJECT_PART,
        Reason.NO_SEAT: Reaction.RETRY,
        Reason.HIGH_TORQUE: Reaction.REJECT_PART,
        Reason.HOLE_POSITION: Reaction.STOP_CELL,
    }


@dataclass(frozen=True)
class ReactionPolicy:
    """What the cell does after each NOK reason.

    Attributes:
        reactions: Reaction per NOK reason (every reason but ``OK``).
        retries: How many times a ``RETRY`` reason may be retried on one hole.
        after_retries: Reaction once the retries are used up (``REJECT_PART`` or
            ``STOP_CELL``).
    """

    reactions: Mapping[Reason, Reaction] = field(default_factory=_default_reactions)
    retries: int = 1
    after_retries: Reaction = Reaction.REJECT_PART

    def __post_init__(self) -> None:
        reactions = dict(self.reactions)
        missing = sorted(r.value for r in Reason if r is not Reason.OK and r not in reactions)
        if missing:
            raise InputError(f"ReactionPolicy.reactions: missing {', '.join(missing)}")
        if Reason.OK in reactions:
            raise InputError("ReactionPolicy.reactions: OK has no reaction")
        if any(r is Reaction.CONTINUE for r in reactions.values()):
            raise InputError("ReactionPolicy.reactions: CONTINUE is not a reaction to a NOK")
        if (
            isinstance(self.retries, bool)
            or not isinstance(self.retries, int)
            or not (0 <= self.retries <= 10)
        ):
            raise InputError(f"ReactionPolicy.retries: expected 0..10, got {self.retries!r}")
        if self.after_retries not in (Reaction.REJECT_PART, Reaction.STOP_CELL):
            raise InputError(
                f"ReactionPolicy.after_retries: expected REJECT_PART or STOP_CELL, "
                f"got {self.after_retries!r}"
            )
        object.__setattr__(self, "reactions", reactions)

    def react(self, reason: Reason, attempt: int = 1) -> Reaction:
        """The reaction to ``reason`` on the ``attempt``-th try (1-based) of one hole.

        ``OK`` gives ``CONTINUE``; a ``RETRY`` reason gives ``RETRY`` while
        ``attempt <= retries`` and ``after_retries`` after that.
        """
        if not isinstance(reason, Reason):
            raise InputError(f"reason: expected a Reason, got {reason!r}")
        if attempt < 1:
            raise InputError(f"attempt: expected >= 1, got {attempt}")
        if reason is Reason.OK:
            return Reaction.CONTINUE
        reaction = self.reactions[reason]
        if reaction is Reaction.RETRY and attempt > self.retries:
            return self.after_retries
        return reaction
