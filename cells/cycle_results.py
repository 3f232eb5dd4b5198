"""What a cell run produces and what it plants: cycle and operation results, fault injections.

:class:`CycleResult` and :class:`OperationResult` are what
:meth:`cells.controller.CellController.run_cycle` returns (and the results store and
``cellctl run`` report); an :class:`Injection` (``--inject FAULT@INDEX``,
:func:`parse_injection`) plants a spindle :class:`~sim.spindle.Fault` or a
:class:`PickFault` at one screw attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cells.tightening import Judgement
from planners.errors import InputError
from sim.spindle import Fault

__all__ = ["CycleResult", "Injection", "OperationResult", "PickFault", "parse_injection"]


class PickFault(Enum):
    """Faults at the screw presenter (the spindle's faults are :class:`sim.spindle.Fault`)."""

    EMPTY_PICK = "empty_pick"  # no screw came up with the bit: the vacuum check fails


@dataclass(frozen=True)
class Injection:
    """A fault planted in a run: ``fault`` at the ``index``-th screw attempt (0-based)."""

    fault: Fault | PickFault
    index: int


def parse_injection(text: str) -> Injection:
    """``FAULT@INDEX`` (e.g. ``cross_thread@3``) as an :class:`Injection`.

    Raises:
        InputError: not of that form, an unknown fault, or a negative index.
    """
    faults = [f.value for f in Fault if f is not Fault.NONE] + [f.value for f in PickFault]
    name, sep, index = str(text).partition("@")
    if not sep or not index.strip().isdigit():
        raise InputError(f"--inject {text!r}: expected FAULT@INDEX, e.g. cross_thread@3")
    key = name.strip()
    if key not in faults:
        raise InputError(
            f"--inject {text!r}: unknown fault {name!r}; expected one of {', '.join(faults)}"
        )
    fault: Fault | PickFault = PickFault(key) if key in PickFault._value2member_map_ else Fault(key)
    return Injection(fault, int(index))


@dataclass
class OperationResult:
    """One executed operation (or attempt).

    Attributes:
        kind: ``pick_place``, ``screw`` or ``home``.
        target: Part or hole.
        attempt: 1 for the first try.
        verdict: ``OK`` or ``NOK``.
        reason: Why NOK (a tightening reason, ``tracking``), else ``None``.
        start: Start [s, cycle time].
        end: End [s, cycle time].
        detail: The deciding value.
        judgement: The tightening's judgement, for screws.
    """

    kind: str
    target: str
    attempt: int
    verdict: str
    reason: str | None
    start: float
    end: float
    detail: str = ""
    judgement: Judgement | None = None


@dataclass
class CycleResult:
    """One product cycle.

    Attributes:
        index: 0-based cycle number in the run.
        serial: Product serial.
        verdict: ``OK``, ``NOK`` (part rejected or cell stopped) or ``ABORTED``
            (validation refused it; nothing moved).
        reason: Why not OK.
        cycle_time: Simulated time from start to back home [s].
        plan_time: Wall time planning [s].
        validate_time: Wall time validating [s].
        min_clearance: Smallest exact clearance of its programs [m].
        operations: What ran, in order.
        stop: The cell must stop after this cycle.
        segments: (label, kind, start, end) of every step, cycle time, for timelines.
    """

    index: int
    serial: str
    verdict: str
    reason: str | None
    cycle_time: float
    plan_time: float
    validate_time: float
    min_clearance: float
    operations: list[OperationResult] = field(default_factory=list)
    stop: bool = False
    segments: list[tuple[str, str, float, float]] = field(default_factory=list)
