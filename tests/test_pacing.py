"""wait_until: returns at the deadline, or early when a socket or pipe is readable."""

from __future__ import annotations

import os

import zmq

from cells.pacing import clock_ns, request_realtime, wait_until


def test_deadline_is_reached_not_missed() -> None:
    start = clock_ns()
    assert wait_until(start + 3_000_000) is False
    assert clock_ns() >= start + 3_000_000


def test_socket_and_pipe_wake_early() -> None:
    with zmq.Context() as ctx:
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        a.bind("inproc://p")
        b.connect("inproc://p")
        b.send(b"x")
        assert wait_until(clock_ns() + 2_000_000_000, (a,)) is True
        a.close()
        b.close()
    r, w = os.pipe()
    os.write(w, b"x")
    start = clock_ns()
    assert wait_until(start + 2_000_000_000, fds=(r,)) is True
    assert clock_ns() - start < 1_000_000_000
    os.close(r)
    os.close(w)


def test_realtime_request_reports_refusal_as_a_value() -> None:
    assert request_realtime(0) is False  # SCHED_FIFO needs a priority >= 1: refused, no raise
