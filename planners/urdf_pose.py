"""A URDF ``<origin xyz rpy>`` element as a 4x4 homogeneous transform."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
from numpy.typing import NDArray

__all__ = ["origin_pose"]


def origin_pose(el: ET.Element | None) -> NDArray[np.float64]:
    """The pose (4, 4) an ``<origin>`` element gives (identity when it is missing).

    ``rpy`` are fixed-axis roll, pitch, yaw [rad] (R = Rz(yaw) Ry(pitch) Rx(roll)), ``xyz``
    the translation [m].
    """
    T = np.eye(4)
    if el is None:
        return T
    x, y, z = (float(v) for v in el.get("xyz", "0 0 0").split())
    r, p, w = (float(v) for v in el.get("rpy", "0 0 0").split())
    cr, sr, cp, sp, cw, sw = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(w), np.sin(w)
    T[:3, :3] = [
        [cw * cp, cw * sp * sr - sw * cr, cw * sp * cr + sw * sr],
        [sw * cp, sw * sp * sr + cw * cr, sw * sp * cr - cw * sr],
        [-sp, cp * sr, cp * cr],
    ]
    T[:3, 3] = (x, y, z)
    return T
