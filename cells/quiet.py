"""Import PyBullet without its build banner.

PyBullet's C code prints ``pybullet build time: ...`` on stderr when it is first
imported. The command line promises one line of error output, and child processes (the
simulated arm of a benchmark) share the parent's stderr, so every entry point imports it
through :func:`import_pybullet_quietly` before anything else of ``sim``.
"""

from __future__ import annotations

import os

__all__ = ["import_pybullet_quietly"]


def import_pybullet_quietly() -> None:
    """Import PyBullet with file descriptor 2 pointed at ``/dev/null`` meanwhile."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import pybullet  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
