"""The project's exception family.

Expected failures (an unreachable pose, a colliding path) are result values, never
exceptions. Exceptions are for misuse and bad input, and every one of them derives
from :class:`RobotCellError` so a caller can catch the family at the edge (the command
line turns them into one line and exit code 2).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["InputError", "ModelError", "RobotCellError", "UnknownNameError"]


class RobotCellError(Exception):
    """Root of every exception the project raises on purpose."""


class InputError(RobotCellError, ValueError):
    """An argument or a field has the wrong shape, type or value.

    The message names the field and what was expected.
    """


class ModelError(RobotCellError):
    """A robot, tool or fixture model is missing or malformed."""


class UnknownNameError(RobotCellError, KeyError):
    """A name (arm, link, joint, configuration, set ...) that does not exist.

    Args:
        kind: What the name denotes, e.g. ``"joint"``.
        name: The name asked for.
        valid: The names that do exist; the message lists them sorted.
    """

    def __init__(self, kind: str, name: object, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = tuple(sorted(valid))
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])
