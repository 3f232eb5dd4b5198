"""Waiting for an absolute deadline while staying responsive to sockets.

Loops that run at a fixed rate compute every deadline from the start time
(``t0 + k * period``), never from the previous wake-up, so lateness does not
accumulate. :func:`wait_until` sleeps in ``select`` (microsecond timeout, wakes early
when a ZeroMQ socket becomes readable) and spins only for the last ``spin_ns``.

ZeroMQ's file descriptor is edge-triggered: callers must drain a socket until
``zmq.Again`` before waiting again; :func:`wait_until` checks ``zmq.EVENTS`` first so
a message that arrived while the caller was busy is never missed.
"""

from __future__ import annotations

import logging
import os
import select
import time
from collections.abc import Sequence

import zmq

__all__ = ["clock_ns", "request_realtime", "wait_until"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

clock_ns = time.monotonic_ns
"""The clock of every deadline and time stamp: CLOCK_MONOTONIC [ns]."""


def wait_until(
    deadline_ns: int,
    sockets: Sequence[zmq.Socket] = (),
    fds: Sequence[int] = (),
    spin_ns: int = 100_000,
) -> bool:
    """Wait until ``deadline_ns`` or until a socket or file descriptor is readable.

    Args:
        deadline_ns: Absolute time on :data:`clock_ns` [ns].
        sockets: ZeroMQ sockets whose arrival ends the wait.
        fds: Plain file descriptors (pipes) whose readability ends the wait.
        spin_ns: Busy-wait this long before the deadline instead of sleeping [ns]
            (the kernel's wake-up of a sleep is 50-100 us late).

    Returns:
        ``True`` when something became readable before the deadline.
    """
    watch: list[int] = [int(s.getsockopt(zmq.FD)) for s in sockets] + [int(f) for f in fds]
    while True:
        for s in sockets:
            if int(s.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                return True
        remaining = deadline_ns - clock_ns()
        if remaining <= 0:
            return False
        if remaining > spin_ns:
            ready, _, _ = select.select(watch, [], [], (remaining - spin_ns) * 1e-9)
            if ready:
                # zmq's fd signals "check EVENTS", not necessarily a message
                if set(ready) & set(fds):
                    return True
                continue
        else:
            while clock_ns() < deadline_ns:
                pass
            return False


def request_realtime(priority: int) -> bool:
    """Ask for real-time scheduling (SCHED_FIFO at ``priority``) for the calling process.

    Call it first thing in a streaming process, before ZeroMQ starts its I/O threads,
    so they inherit it. On a shared machine this is what keeps a 1 kHz loop on time
    when other processes saturate the cores; it needs CAP_SYS_NICE.

    Args:
        priority: SCHED_FIFO priority, 1..99.

    Returns:
        Whether it was granted (a refusal is logged, not raised).
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(priority)))
    except (OSError, AttributeError, ValueError) as exc:
        logger.warning("real-time priority %s refused: %s", priority, exc)
        return False
    return True
