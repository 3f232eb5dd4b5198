"""Scene obstacles from a static URDF (fixtures, trays, parts): its collision primitives.

Boxes, cylinders and spheres become :class:`~planners.scene.Box`,
:class:`~planners.scene.Cylinder` and :class:`~planners.scene.Sphere`; a mesh becomes its
bounding box in the mesh frame (conservative: the mesh lies inside). Joints are taken at
their zero position; the model is meant to be static.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from planners.arrays import as_matrix4
from planners.errors import ModelError
from planners.obj import read_obj
from planners.scene import Box, Cylinder, Obstacle, Scene, Sphere, mesh_box
from planners.urdf import parse_urdf
from planners.urdf_pose import origin_pose

__all__ = ["obstacles_from_urdf", "scene_from_urdf"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def obstacles_from_urdf(
    path: str | os.PathLike[str], pose: object = None, prefix: str | None = None
) -> tuple[Obstacle, ...]:
    """The collision geometry of a static URDF as scene obstacles.

    Args:
        path: URDF file (``package://`` and relative mesh paths are resolved).
        pose: 4x4 pose (or SE3) of the URDF's root link in the world; identity by default.
        prefix: Name prefix (the robot's name by default); obstacles are named
            ``<prefix>/<link>/<k>``, k counting the link's collision elements.

    Raises:
        ModelError: the file is missing or malformed, or holds an unsupported geometry.
    """
    parsed = parse_urdf(path)
    robot = (
        parsed.getroot() if hasattr(parsed, "getroot") else parsed
    )  # an Element or an ElementTree
    name = prefix if prefix is not None else robot.get("name", Path(path).stem)
    T_world = np.eye(4) if pose is None else as_matrix4(pose, "pose")
    parent_of: dict[str, tuple[str, NDArray[np.float64]]] = {}
    for j in robot.iter("joint"):
        p, c = j.find("parent"), j.find("child")
        if p is None or c is None:
            raise ModelError(f"{path}: joint {j.get('name')!r} without <parent> or <child>")
        parent_of[c.get("link", "")] = (p.get("link", ""), origin_pose(j.find("origin")))

    def world(link: str, depth: int = 0) -> NDArray[np.float64]:
        if depth > 1000:
            raise ModelError(f"{path}: the joints form a loop")
        if link not in parent_of:
            return T_world
        parent, T = parent_of[link]
        return world(parent, depth + 1) @ T

    out: list[Obstacle] = []
    for link in robot.iter("link"):
        lname = link.get("name", "")
        T_link = world(lname)
        for k, col in enumerate(link.findall("collision")):
            T = T_link @ origin_pose(col.find("origin"))
            geom = col.find("geometry")
            shape = None if geom is None or len(geom) == 0 else geom[0]
            oname = f"{name}/{lname}/{k}"
            where = f"{path}: link {lname!r} collision {k}"
            try:
                if shape is None:
                    raise ModelError(f"{where}: no geometry")
                if shape.tag == "box":
                    size = np.array([float(v) for v in shape.get("size", "").split()])
                    out.append(Box(oname, T, size / 2))
                elif shape.tag == "cylinder":
                    out.append(
                        Cylinder(
                            oname,
                            T,
                            float(shape.get("radius", "nan")),
                            float(shape.get("length", "nan")),
                        )
                    )
                elif shape.tag == "sphere":
                    out.append(Sphere(oname, T, float(shape.get("radius", "nan"))))
                elif shape.tag == "mesh":
                    scale = np.array([float(v) for v in shape.get("scale", "1 1 1").split()])
                    out.append(
                        mesh_box(oname, read_obj(shape.get("filename", ""), scale).vertices, T)
                    )
                else:
                    raise ModelError(f"{where}: unsupported geometry <{shape.tag}>")
            except ValueError as exc:  # InputError is a ValueError too
                raise ModelError(f"{where}: {exc}") from exc
    return tuple(out)


def scene_from_urdf(
    path: str | os.PathLike[str], pose: object = None, padding: float = 0.0
) -> Scene:
    """A scene holding the obstacles of one static URDF (see :func:`obstacles_from_urdf`)."""
    return Scene(obstacles_from_urdf(path, pose), padding=padding)
