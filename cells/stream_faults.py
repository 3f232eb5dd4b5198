"""Fault injection on an outgoing setpoint stream: drop, delay, duplicate, reorder.

A :class:`FaultyLink` sits between a streamer and its socket. For each setpoint the
streamer hands it (:meth:`FaultyLink.push`), it returns the payloads to send now,
having dropped, duplicated, held back (delayed) or swapped (reordered) some of them as
its :class:`FaultPlan` says. Randomness comes from the plan's seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planners.errors import InputError

__all__ = ["FaultPlan", "FaultyLink"]


@dataclass(frozen=True)
class FaultPlan:
    """Probabilities (per setpoint) of each fault.

    Attributes:
        drop: Never sent.
        delay: Sent ``delay_s`` later than due.
        duplicate: Sent twice.
        reorder: Swapped with the next setpoint.
        delay_s: The delay of a delayed setpoint [s].
        seed: Seed of the generator that picks the victims.
    """

    drop: float = 0.0
    delay: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.030
    seed: int = 0

    def __post_init__(self) -> None:
        total = 0.0
        for name in ("drop", "delay", "duplicate", "reorder"):
            p = getattr(self, name)
            if not (math.isfinite(p) and 0.0 <= p <= 1.0):
                raise InputError(f"{name}: expected a probability in [0, 1], got {p!r}")
            total += p
        if total > 1.0:
            raise InputError(f"fault probabilities add up to {total} > 1")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise InputError(f"delay_s: expected a number >= 0, got {self.delay_s!r}")

    @property
    def any(self) -> bool:
        """Whether any fault is possible."""
        return self.drop + self.delay + self.duplicate + self.reorder > 0


class FaultyLink:
    """Applies a :class:`FaultPlan` to a stream of payloads; counts what it did."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = np.random.default_rng(plan.seed)
        self._held: bytes | None = None
        self._delayed: list[tuple[int, bytes]] = []
        self.counts = {"drop": 0, "delay": 0, "duplicate": 0, "reorder": 0}

    def push(self, payload: bytes, now_ns: int) -> list[bytes]:
        """The payloads to send now, given the next setpoint ``payload``."""
        out = self.due(now_ns)
        p = self.plan
        u = float(self._rng.random())
        if u < p.drop:
            self.counts["drop"] += 1
            kind = "drop"
        elif u < p.drop + p.delay:
            self.counts["delay"] += 1
            self._delayed.append((now_ns + round(p.delay_s * 1e9), payload))
            kind = "delay"
        elif u < p.drop + p.delay + p.duplicate:
            self.counts["duplicate"] += 1
            out += [payload, payload]
            kind = "duplicate"
        elif u < p.drop + p.delay + p.duplicate + p.reorder and self._held is None:
            self.counts["reorder"] += 1
            self._held = payload
            return out
        else:
            out.append(payload)
            kind = "none"
        if self._held is not None and kind != "drop":
            out.append(self._held)  # the held one goes after the next
            self._held = None
        return out

    def due(self, now_ns: int) -> list[bytes]:
        """Delayed payloads whose time has come."""
        if not self._delayed:
            return []
        ready = [pl for t, pl in self._delayed if t <= now_ns]
        self._delayed = [(t, pl) for t, pl in self._delayed if t > now_ns]
        return ready
