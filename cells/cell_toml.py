"""Reading a cell file's TOML tables with key-path errors.

A :class:`TomlTable` wraps one table of a parsed TOML document and the key path that
leads to it; its typed getters check type, range and finiteness and record which keys
were read, so that a table can refuse the keys nobody read (typos). Every problem is a
:class:`CellFileError`: ``file:key.path: what is wrong, what is expected``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from planners.errors import InputError

__all__ = ["MISSING", "CellFileError", "TomlTable", "kind_of"]

#: Default of a getter whose key is required.
MISSING: Any = object()


class CellFileError(InputError):
    """A cell file is malformed: ``file:key.path: what is wrong, what is expected``.

    Attributes:
        file: The cell file as given.
        key: Key path inside it (``holes[3].axis``), or ``""`` for the whole file.
        problem: What is wrong and what is expected.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}:{key}: {problem}" if key else f"{file}: {problem}")


def kind_of(v: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(v), type(v).__name__)  # fmt: skip


class TomlTable:
    """One TOML table being read: typed getters that record the keys they accept."""

    def __init__(self, file: str, data: Mapping[str, Any], path: str) -> None:
        self.file, self.data, self.path = file, data, path
        self.known: list[str] = []

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str | None, problem: str) -> CellFileError:
        return CellFileError(self.file, self.key(key) if key else self.path, problem)

    def has(self, key: str) -> bool:
        self.known.append(key)
        return key in self.data

    def raw(self, key: str, expected: str, default: Any = MISSING) -> Any:
        self.known.append(key)
        if key not in self.data:
            if default is MISSING:
                raise self.fail(key, f"missing, expected {expected}")
            return default
        return self.data[key]

    def string(self, key: str, default: Any = MISSING) -> str:
        v = self.raw(key, "a non-empty string", default)
        if v is default and default is not MISSING:
            return v
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, f"got {kind_of(v)} {v!r}, expected a non-empty string")
        return v

    def boolean(self, key: str, default: Any = MISSING) -> bool:
        v = self.raw(key, "true or false", default)
        if not isinstance(v, bool):
            raise self.fail(key, f"got {kind_of(v)} {v!r}, expected true or false")
        return v

    def number(
        self,
        key: str,
        unit: str,
        lo: float = -math.inf,
        hi: float = math.inf,
        *,
        lo_open: bool = False,
        default: Any = MISSING,
    ) -> float:
        v = self.raw(key, f"a number [{unit}]", default)
        return self.check_number(key, v, unit, lo, hi, lo_open=lo_open)

    def check_number(
        self, key: str, v: object, unit: str, lo: float, hi: float, *, lo_open: bool = False
    ) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(key, f"got {kind_of(v)} {v!r}, expected a number [{unit}]")
        x = float(v)
        if not math.isfinite(x):
            raise self.fail(key, f"got {x}, expected a finite number [{unit}]")
        below = x <= lo if lo_open else x < lo
        if below or x > hi:
            left = "(" if lo_open else "["
            if lo == 0 and lo_open and hi == math.inf:
                want = f"a positive number [{unit}]"
            else:
                want = f"a number in {left}{lo:g}, {hi:g}] [{unit}]"
            raise self.fail(key, f"got {x:g}, expected {want}")
        return x

    def integer(self, key: str, lo: int, hi: int, default: Any = MISSING) -> int:
        v = self.raw(key, f"an integer in [{lo}, {hi}]", default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(key, f"got {kind_of(v)} {v!r}, expected an integer in [{lo}, {hi}]")
        return v

    def vector(
        self, key: str, n: int, unit: str, *, bound: float = math.inf, nonzero: bool = False
    ) -> NDArray[np.float64]:
        v = self.raw(key, f"an array of {n} numbers [{unit}]")
        if not isinstance(v, list) or len(v) != n:
            got = f"{len(v)} values" if isinstance(v, list) else f"{kind_of(v)} {v!r}"
            raise self.fail(key, f"got {got}, expected an array of {n} numbers [{unit}]")
        out = np.array(
            [self.check_number(f"{key}[{i}]", x, unit, -bound, bound) for i, x in enumerate(v)]
        )
        if nonzero and float(np.linalg.norm(out)) < 1e-9:
            raise self.fail(key, "zero vector, expected a non-zero direction")
        return out

    def table(self, key: str, required: bool = True) -> TomlTable | None:
        v = self.raw(key, "a table", None if not required else MISSING)
        if v is None:
            return None
        if not isinstance(v, dict):
            raise self.fail(key, f"got {kind_of(v)}, expected a table")
        return TomlTable(self.file, v, self.key(key))

    def tables(self, key: str) -> list[TomlTable]:
        v = self.raw(key, "an array of tables", [])
        if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
            raise self.fail(key, f"got {kind_of(v)}, expected an array of tables [[{key}]]")
        return [TomlTable(self.file, t, f"{self.key(key)}[{i}]") for i, t in enumerate(v)]

    def finish(self) -> None:
        unknown = [k for k in self.data if k not in self.known]
        if unknown:
            valid = ", ".join(sorted(set(self.known)))
            raise self.fail(unknown[0], f"unknown key, expected one of: {valid}")
