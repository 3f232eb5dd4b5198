"""Owning a PyBullet physics client: no module-level simulator state.

Every world, test and benchmark creates its own ``BulletClient(pybullet.DIRECT)``
through :func:`bullet_client` and closes it when done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pybullet
from pybullet_utils.bullet_client import BulletClient

__all__ = ["BulletClient", "bullet_client"]


@contextmanager
def bullet_client() -> Iterator[BulletClient]:
    """A headless PyBullet client, disconnected on exit."""
    client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        yield client
    finally:
        client.disconnect()
