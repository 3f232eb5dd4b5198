"""The arm's merged URDF as arrays for the collision kernels: links, joints, moving frames.

:func:`compile_links` reads every link of the arm's URDF (arm, tool, fingers) in
topological order, with the joints of the arm's configuration as actuated joints and every
other joint (fingers at the arm's ``finger_opening``, mimic joints) folded into its origin.
:func:`fold` merges links on fixed joints into the nearest moving frame above them, so the
kinematics per configuration is one rotation per actuated joint.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planners.arm import Arm
from planners.errors import ModelError
from planners.urdf_pose import origin_pose

__all__ = ["Links", "compile_links", "fold", "tool_links"]


@dataclass(frozen=True)
class Links:
    """Links (or moving frames) as arrays, in topological order (the root first).

    Attributes:
        names: (L,) names.
        parent: (L,) index of the parent (-1: the root).
        jtype: (L,) joint type: 0 fixed, 1 revolute, 2 prismatic.
        jcol: (L,) column of the joint in a configuration.
        origin: (L, 4, 4) joint origin in the parent frame.
        axis: (L, 3) unit joint axis.
    """

    names: tuple[str, ...]
    parent: NDArray[np.int64]
    jtype: NDArray[np.int64]
    jcol: NDArray[np.int64]
    origin: NDArray[np.float64]
    axis: NDArray[np.float64]


def compile_links(arm: Arm) -> Links:
    """The arm's merged URDF as arrays for the kernel, links in topological order."""
    robot = ET.fromstring(arm.urdf_text)
    joints = {}
    for j in robot.iter("joint"):
        child_el = j.find("child")
        parent_el = j.find("parent")
        if child_el is None or parent_el is None:
            raise ModelError(f"joint {j.get('name')!r}: missing <parent> or <child>")
        joints[child_el.get("link", "")] = j
    children: dict[str, list[str]] = {}
    for child, j in joints.items():
        children.setdefault(j.find("parent").get("link", ""), []).append(child)  # type: ignore[union-attr]
    order = [arm.base_link]
    for name in order:
        order.extend(children.get(name, []))
    index = {n: i for i, n in enumerate(order)}
    fingers = set(arm.tool.finger_joints) if arm.tool is not None else set()
    cols = {n: i for i, n in enumerate(arm.joint_names)}
    values: dict[str, float] = {}

    def value(j: ET.Element) -> float:
        name = j.get("name", "")
        if name in fingers:
            return float(arm.finger_opening)
        mimic = j.find("mimic")
        if mimic is not None:
            src = next((x for x in joints.values() if x.get("name") == mimic.get("joint")), None)
            if src is not None:
                return float(mimic.get("multiplier", "1")) * value(src) + float(
                    mimic.get("offset", "0")
                )
        return values.get(name, 0.0)

    L = len(order)
    parent = np.full(L, -1, np.int64)
    jtype = np.zeros(L, np.int64)
    jcol = np.zeros(L, np.int64)
    origin = np.tile(np.eye(4), (L, 1, 1))
    axis = np.zeros((L, 3))
    for i, name in enumerate(order[1:], 1):
        j = joints[name]
        parent[i] = index[j.find("parent").get("link", "")]  # type: ignore[union-attr]
        origin[i] = origin_pose(j.find("origin"))
        ax_el = j.find("axis")
        ax = np.array(
            [
                float(v)
                for v in (ax_el.get("xyz", "1 0 0") if ax_el is not None else "1 0 0").split()
            ]
        )
        ax = ax / max(float(np.linalg.norm(ax)), 1e-12)
        kind = j.get("type", "fixed")
        jn = j.get("name", "")
        if kind in ("revolute", "continuous", "prismatic") and jn in cols:
            jtype[i] = 2 if kind == "prismatic" else 1
            jcol[i] = cols[jn]
            axis[i] = ax
        elif kind in ("revolute", "continuous", "prismatic"):
            v = value(j)
            motion = np.eye(4)
            if kind == "prismatic":
                motion[:3, 3] = v * ax
            else:
                K = np.array([[0, -ax[2], ax[1]], [ax[2], 0, -ax[0]], [-ax[1], ax[0], 0]])
                motion[:3, :3] = np.eye(3) + math.sin(v) * K + (1 - math.cos(v)) * K @ K
            origin[i] = origin[i] @ motion
    return Links(tuple(order), parent, jtype, jcol, origin, axis)


def fold(links: Links) -> tuple[NDArray[np.int64], NDArray[np.float64], Links]:
    """Merge links on fixed joints into the nearest moving frame above them.

    Returns:
        The frame of each link (L,), each link's pose in its frame (L, 4, 4), and the
        moving frames (the root first) as :class:`Links` for the kernel.
    """
    L = len(links.names)
    frame_of = np.zeros(L, np.int64)
    T_fl = np.tile(np.eye(4), (L, 1, 1))
    names, parent, jtype, jcol, origin, axis = (
        [links.names[0]],
        [-1],
        [0],
        [0],
        [np.eye(4)],
        [np.zeros(3)],
    )
    for i in range(1, L):
        p = int(links.parent[i])
        if links.jtype[i] == 0:
            frame_of[i] = frame_of[p]
            T_fl[i] = T_fl[p] @ links.origin[i]
            continue
        frame_of[i] = len(names)
        names.append(links.names[i])
        parent.append(int(frame_of[p]))
        jtype.append(int(links.jtype[i]))
        jcol.append(int(links.jcol[i]))
        origin.append(T_fl[p] @ links.origin[i])
        axis.append(links.axis[i])
    frames = Links(
        tuple(names),
        np.asarray(parent, np.int64),
        np.asarray(jtype, np.int64),
        np.asarray(jcol, np.int64),
        np.ascontiguousarray(origin),
        np.ascontiguousarray(axis),
    )
    return frame_of, T_fl, frames


def tool_links(links: Links, flange: str) -> frozenset[str]:
    """Links beyond the flange (tool, fingers)."""
    index = {n: i for i, n in enumerate(links.names)}
    f = index.get(flange, -1)
    out = set()
    for i, name in enumerate(links.names):
        j = int(links.parent[i])
        while j >= 0 and j != f:
            j = int(links.parent[j])
        if j == f and i != f:
            out.add(name)
    return frozenset(out)
