"""A tiny Wavefront OBJ reader: vertices and triangles, nothing else.

Collision meshes only need geometry; materials, normals and texture coordinates are
skipped. Polygons are fanned into triangles; negative (relative) indices are honoured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from planners.arrays import frozen
from planners.errors import ModelError

__all__ = ["TriangleMesh", "read_obj"]


@dataclass(frozen=True)
class TriangleMesh:
    """A triangle mesh.

    Attributes:
        vertices: (V, 3) vertex positions [m], read-only.
        triangles: (F, 3) vertex indices of each triangle, read-only.
    """

    vertices: NDArray[np.float64]
    triangles: NDArray[np.int64]


def read_obj(
    path: str | os.PathLike[str], scale: NDArray[np.float64] | None = None
) -> TriangleMesh:
    """Read the vertices and faces of an OBJ file.

    Args:
        path: The file.
        scale: Optional (3,) scale applied to the vertices.

    Raises:
        ModelError: the file is missing, has no vertices, or a face names a missing vertex.
    """
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read mesh: {exc}") from exc
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                vertices.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                idx = [int(p.split("/")[0]) for p in parts[1:]]
                idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
                faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
        except (ValueError, IndexError) as exc:
            raise ModelError(f"{path}:{number}: malformed line {line!r}") from exc
    V = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    F = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(V) == 0:
        raise ModelError(f"{path}: no vertices")
    if F.size and (F.min() < 0 or F.max() >= len(V)):
        raise ModelError(f"{path}: a face names a vertex that does not exist")
    if scale is not None:
        V = V * np.asarray(scale, dtype=np.float64)
    return TriangleMesh(frozen(V), frozen(F, np.int64))
