"""The validator's verdict: violations in time order, clearance, statistics."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

__all__ = ["Verdict", "Violation", "ViolationKind", "first_per_place"]


class ViolationKind(Enum):
    """What a violation is about."""

    COLLISION = "collision"  # arm, tool or held part against the world (exact geometry)
    SELF_COLLISION = "self_collision"  # two non-adjacent links of one arm
    CLEARANCE = "clearance"  # closer than the required clearance
    POSITION = "position"
    VELOCITY = "velocity"
    ACCELERATION = "acceleration"
    JERK = "jerk"
    TCP_SPEED = "tcp_speed"
    TRACKING = "tracking"  # replay: the arm did not follow the command
    EFFORT = "effort"  # replay: a joint needed its whole effort limit
    CONTACT = "contact"  # replay: touched a body it must not touch
    PART_POSE = "part_pose"  # replay: a placed part ended off its target


# At one instant, causes before consequences: a replay's contact before the effort and
# tracking error it causes, so a verdict's first violation names what was hit.
_CAUSES_FIRST = (
    ViolationKind.COLLISION, ViolationKind.SELF_COLLISION, ViolationKind.CONTACT,
    ViolationKind.CLEARANCE, ViolationKind.POSITION, ViolationKind.VELOCITY,
    ViolationKind.ACCELERATION, ViolationKind.JERK, ViolationKind.TCP_SPEED,
    ViolationKind.PART_POSE, ViolationKind.EFFORT, ViolationKind.TRACKING,
)  # fmt: skip
_RANK = {kind: i for i, kind in enumerate(_CAUSES_FIRST)}


@dataclass(frozen=True)
class Violation:
    """One violation.

    Attributes:
        time: When it happened [s, trajectory time].
        kind: What it is about.
        where: The joint, or the pair of places ``a | b`` (``body`` or ``body/link``).
        amount: The offending value (penetration [m], speed [rad/s], error [rad] ...).
        limit: The limit it broke, in the same unit, or ``None``.
        unit: Unit of ``amount`` and ``limit``.
    """

    time: float
    kind: ViolationKind
    where: str
    amount: float
    limit: float | None = None
    unit: str = ""

    def __str__(self) -> str:
        limit = "" if self.limit is None else f" (limit {self.limit:.6g} {self.unit})"
        amount = f"{self.amount:.6g} {self.unit}"
        return f"t={self.time:.4f} s {self.kind.value} at {self.where}: {amount}{limit}"


@dataclass(frozen=True)
class Verdict:
    """Whether a trajectory may run, and why not.

    Attributes:
        ok: True when there is no violation.
        violations: Every violation found, in time order (then kind, then place: the
            order does not depend on the order of the queries that found them).
        min_clearance: Smallest exact distance [m] between the arm (tool, held part)
            and the world over the sweep (negative: penetration); ``inf`` if nothing
            came within the query distance.
        clearance_pair: The pair of places that set it, or ``None``.
        clearance_time: When [s], or ``None``.
        stats: Figures of the runs (samples, exact queries, tracking errors, peak
            torque ratios, wall times ...).
    """

    violations: tuple[Violation, ...]
    min_clearance: float = float("inf")
    clearance_pair: str | None = None
    clearance_time: float | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        order = sorted(self.violations, key=lambda v: (v.time, _RANK[v.kind], v.where))
        object.__setattr__(self, "violations", tuple(order))
        object.__setattr__(self, "stats", MappingProxyType(dict(self.stats)))

    @property
    def ok(self) -> bool:
        """True when there is no violation."""
        return not self.violations

    @property
    def first(self) -> Violation | None:
        """The earliest violation: what a user sees first."""
        return self.violations[0] if self.violations else None

    def of_kind(self, *kinds: ViolationKind) -> tuple[Violation, ...]:
        """The violations of the given kinds, in time order."""
        return tuple(v for v in self.violations if v.kind in kinds)

    def merged(self, other: Verdict) -> Verdict:
        """This verdict and ``other`` combined (clearance: the smaller)."""
        mine = self.min_clearance <= other.min_clearance
        return Verdict(
            self.violations + other.violations,
            self.min_clearance if mine else other.min_clearance,
            self.clearance_pair if mine else other.clearance_pair,
            self.clearance_time if mine else other.clearance_time,
            {**self.stats, **other.stats},
        )

    def summary(self) -> str:
        """One line: OK with the clearance, or the first violation."""
        if self.ok:
            return f"OK, min clearance {self.min_clearance * 1e3:.2f} mm at {self.clearance_pair}"
        return f"NOK, {len(self.violations)} violation(s); first: {self.first}"


def first_per_place(violations: Iterable[Violation]) -> list[Violation]:
    """One finding per (kind, where): its first time, with its worst amount.

    A collision lasting a hundred samples is one violation that starts when it starts
    and reports its deepest penetration (the first sample only grazes).
    """
    found: dict[tuple[ViolationKind, str], Violation] = {}
    for v in sorted(violations, key=lambda v: v.time):
        key = (v.kind, v.where)
        prev = found.get(key)
        if prev is None:
            found[key] = v
        elif abs(v.amount) > abs(prev.amount):
            found[key] = Violation(prev.time, v.kind, v.where, v.amount, v.limit, v.unit)
    return list(found.values())
