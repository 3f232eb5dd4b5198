"""Owning a PyBullet physics client: no module-level simulator state.

Every world, test and benchmark creates its own ``BulletClient(pybullet.DIRECT)``
through :func:`bullet_client` and closes it when done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pybullet
from pybullet_utils.bullet_client import BulletClient

__all__ = ["BulletClient", "bullet_client", "direct_client"]


def direct_client() -> BulletClient:
    """A new headless client; PyBullet's ``argv[0]=`` line on stdout is swallowed.

    PyBullet's C code prints it on every DIRECT connection, into the output of the
    command line's tables and JSON; the file descriptor is redirected around the call.
    """
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (captured): nothing to hide
        return BulletClient(connection_mode=pybullet.DIRECT)
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            return BulletClient(connection_mode=pybullet.DIRECT)
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@contextmanager
def bullet_client() -> Iterator[BulletClient]:
    """A headless PyBullet client, disconnected on exit."""
    client = direct_client()
    try:
        yield client
    finally:
        client.disconnect()
