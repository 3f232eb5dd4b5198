"""FaultyLink: each fault happens at its rate and is counted; the seed decides."""

from __future__ import annotations

import itertools

import pytest

from cells.stream_faults import FaultPlan, FaultyLink
from planners.errors import InputError


def run(plan: FaultPlan, n: int = 10_000) -> tuple[list[bytes], FaultyLink]:
    link = FaultyLink(plan)
    out: list[bytes] = []
    for k in range(n):
        out += link.push(k.to_bytes(4, "big"), k * 1_000_000)
    out += link.due(10**15)
    return out, link


def test_each_fault_at_one_percent() -> None:
    sent, link = run(FaultPlan(drop=0.01, delay=0.01, duplicate=0.01, reorder=0.01, seed=5))
    for kind, count in link.counts.items():
        assert 50 <= count <= 160, (kind, count)
    seqs = [int.from_bytes(p, "big") for p in sent]
    assert len(seqs) == 10_000 - link.counts["drop"] + link.counts["duplicate"]
    assert any(b < a for a, b in itertools.pairwise(seqs))  # reordered or delayed


def test_no_faults_is_identity_and_seed_is_deterministic() -> None:
    sent, _ = run(FaultPlan(), 100)
    assert [int.from_bytes(p, "big") for p in sent] == list(range(100))
    assert run(FaultPlan(drop=0.1, seed=3))[0] == run(FaultPlan(drop=0.1, seed=3))[0]


def test_plan_is_validated() -> None:
    with pytest.raises(InputError, match="drop"):
        FaultPlan(drop=2.0)
    with pytest.raises(InputError, match="add up"):
        FaultPlan(drop=0.6, delay=0.6)
