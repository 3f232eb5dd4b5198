"""bench stream: the JSON shape (a short run; the real runs are in BENCHMARKS)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_short_bench_has_the_documented_shape() -> None:
    from bench.stream import run

    result = run(rate_hz=250.0, seconds=2.0)
    assert set(result) == {
        "rate_hz", "seconds", "sent", "received", "lost", "late", "latency_us", "jitter_us",
    }  # fmt: skip
    assert set(result["latency_us"]) == {"median", "p99", "max"}
    assert set(result["jitter_us"]) == {"p99", "max"}
    assert result["sent"] > 0 and result["lost"] == 0
