"""bench stream: the JSON shape (a short run; the real runs are in BENCHMARKS)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_short_bench_has_the_documented_shape(capfd: pytest.CaptureFixture[str]) -> None:
    from bench.stream import run

    result = run(rate_hz=250.0, seconds=2.0)
    err = capfd.readouterr().err  # the arm's and the streamer's processes write here too
    assert "leaked" not in err and "pybullet build time" not in err, err
    assert set(result) == {
        "rate_hz", "seconds", "outcome", "sent", "received", "lost", "late", "latency_us",
        "jitter_us",
    }  # fmt: skip
    assert result["outcome"] == "OK", result
    assert set(result["latency_us"]) == {"median", "p99", "max"}
    assert set(result["jitter_us"]) == {"p99", "max"}
    assert result["sent"] > 0 and result["lost"] == 0


def test_table_shows_how_the_stream_ended() -> None:
    """A run the watchdog stopped early shows its outcome beside ``lost: 0``."""
    from rich.console import Console

    from bench.stream import print_table

    console = Console(record=True, width=250)
    result = {
        "rate_hz": 1000.0, "seconds": 0.4, "outcome": "WATCHDOG", "sent": 400,
        "received": 400, "lost": 0, "late": 0,
        "latency_us": {"median": 100.0, "p99": 300.0, "max": 900.0},
        "jitter_us": {"p99": 200.0, "max": 800.0},
    }  # fmt: skip
    print_table(console, result)
    text = console.export_text()
    assert "outcome" in text and "WATCHDOG" in text, text
