"""Vectorised forward kinematics over a tree of links, compiled from roboticstoolbox.

roboticstoolbox's ``ETS.eval`` evaluates one configuration in C++; planning and
collision checking need every link of thousands of configurations at once. A
:class:`KinematicChain` compiles the robot's elementary transforms into a short list of
steps (constant 4x4 products and single-axis joint motions) and evaluates them for a
batch (N, dof) with a handful of NumPy operations per link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import frozen
from planners.errors import InputError, UnknownNameError

__all__ = ["KinematicChain"]

# A joint step: (axis index 0..2, is_rotation, sign, column in q).
_AXES = {
    "Rx": (0, True),
    "Ry": (1, True),
    "Rz": (2, True),
    "tx": (0, False),
    "ty": (1, False),
    "tz": (2, False),
}


@dataclass(frozen=True)
class _LinkSteps:
    parent: int  # index into the chain's links, -1 for the root
    # Alternating constants and joints, in order: ("c", 4x4) or ("j", axis, rot, sign, col)
    steps: tuple[tuple, ...]


class KinematicChain:
    """Forward kinematics of the links of a robot for batches of configurations.

    Args:
        robot: A ``roboticstoolbox.Robot``.
        joint_columns: Maps the rtb joint index of each actuated joint to its column in q.
        fixed_values: Values [rad or m] for rtb joints that are not actuated (gripper
            fingers, a spindle), by rtb joint index; missing ones are held at 0.
    """

    def __init__(
        self,
        robot: object,
        joint_columns: Mapping[int, int],
        fixed_values: Mapping[int, float] | None = None,
    ) -> None:
        fixed = dict(fixed_values or {})
        links = list(robot.links)  # type: ignore[attr-defined]
        self.names: tuple[str, ...] = tuple(link.name for link in links)
        self._index = {name: i for i, name in enumerate(self.names)}
        self.dof = len(joint_columns)
        compiled: list[_LinkSteps] = []
        for link in links:
            parent = -1 if link.parent is None else self._index[link.parent.name]
            steps: list[tuple] = []
            const = np.eye(4)
            for et in link.ets:
                if not et.isjoint:
                    const = const @ et.A()
                    continue
                sign = -1.0 if et.isflip else 1.0
                if et.jindex in joint_columns:
                    if not np.allclose(const, np.eye(4)):
                        steps.append(("c", frozen(const)))
                    const = np.eye(4)
                    axis, rot = _AXES[et.kind]
                    steps.append(("j", axis, rot, sign, joint_columns[et.jindex]))
                else:
                    const = const @ et.A(fixed.get(et.jindex, 0.0))  # A() applies the flip
            if not np.allclose(const, np.eye(4)):
                steps.append(("c", frozen(const)))
            compiled.append(_LinkSteps(parent, tuple(steps)))
        self._links = tuple(compiled)

    def index(self, link: str) -> int:
        """Position of ``link`` in :attr:`names`; UnknownNameError lists the links."""
        try:
            return self._index[link]
        except KeyError:
            raise UnknownNameError("link", link, self.names) from None

    def poses(
        self,
        q: npt.ArrayLike,
        links: Sequence[str] | None = None,
        base: npt.ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Poses of links for a batch of configurations.

        Args:
            q: (N, dof) or (dof,) joint positions [rad or m].
            links: Names of the links wanted (default: all, in :attr:`names` order).
            base: Optional 4x4 pose of the root link in the world.

        Returns:
            (N, L, 4, 4) world poses (or (L, 4, 4) for a single configuration).
        """
        Q = np.asarray(q, dtype=np.float64)
        single = Q.ndim == 1
        Q = np.atleast_2d(Q)
        if Q.ndim != 2 or Q.shape[1] != self.dof:
            raise InputError(
                f"q: expected shape (N, {self.dof}) or ({self.dof},), got {np.shape(q)}"
            )
        wanted = range(len(self.names)) if links is None else [self.index(n) for n in links]
        needed = self._ancestors(wanted)
        n = Q.shape[0]
        root = np.eye(4) if base is None else np.asarray(base, dtype=np.float64)
        cache: dict[int, NDArray[np.float64]] = {}
        for i in sorted(needed):
            spec = self._links[i]
            T = (
                np.broadcast_to(root, (n, 4, 4)).copy()
                if spec.parent < 0
                else cache[spec.parent].copy()
            )
            for step in spec.steps:
                if step[0] == "c":
                    T = T @ step[1]
                else:
                    _, axis, rot, sign, col = step
                    _apply_joint(T, axis, rot, sign * Q[:, col])
            cache[i] = T
        out = np.stack([cache[i] for i in wanted], axis=1)
        return out[0] if single else out

    def _ancestors(self, wanted: object) -> set[int]:
        needed: set[int] = set()
        for i in wanted:  # type: ignore[attr-defined]
            j = int(i)
            while j >= 0 and j not in needed:
                needed.add(j)
                j = self._links[j].parent
        return needed


def _apply_joint(T: NDArray[np.float64], axis: int, rot: bool, value: NDArray[np.float64]) -> None:
    """Right-multiply each T[k] in place by a motion of ``value[k]`` along or about ``axis``."""
    if not rot:
        T[:, :3, 3] += value[:, None] * T[:, :3, axis]
        return
    c = np.cos(value)[:, None]
    s = np.sin(value)[:, None]
    # Right-multiplying by a rotation about local axis k mixes the other two columns.
    i, j = {0: (1, 2), 1: (2, 0), 2: (0, 1)}[axis]
    ci = T[:, :3, i].copy()
    cj = T[:, :3, j]
    T[:, :3, i] = c * ci + s * cj
    T[:, :3, j] = c * cj - s * ci
