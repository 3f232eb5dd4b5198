"""An arm model loaded into a PyBullet client, indexed by the planner's names.

PyBullet numbers joints and links by its own indices and uses x, y, z, w quaternions;
:class:`ArmBody` maps the arm's joint and link names onto them, so callers speak the
planner's language (names, (dof,) vectors, 4x4 poses) and never pybullet's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from pybullet_utils.bullet_client import BulletClient

from planners.arm import Arm
from planners.errors import UnknownNameError
from planners.urdf import resolved_urdf_file

__all__ = ["ArmBody", "pose_matrix", "pose_pq"]


def pose_matrix(
    position: Sequence[float], quat_xyzw: Sequence[float], client: BulletClient
) -> NDArray[np.float64]:
    """A 4x4 pose from PyBullet's position and x, y, z, w quaternion."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(client.getMatrixFromQuaternion(quat_xyzw)).reshape(3, 3)
    T[:3, 3] = position
    return T


def pose_pq(T: npt.ArrayLike) -> tuple[list[float], list[float]]:
    """PyBullet's (position, x y z w quaternion) from a 4x4 pose."""
    from scipy.spatial.transform import Rotation

    M = np.asarray(T, dtype=np.float64)
    return M[:3, 3].tolist(), Rotation.from_matrix(M[:3, :3]).as_quat().tolist()


def _child_links(client: BulletClient, body: int, joints: Sequence[str]) -> list[str]:
    out = []
    for j in range(client.getNumJoints(body)):
        info = client.getJointInfo(body, j)
        if info[1].decode() in joints:
            out.append(info[12].decode())
    return out


@dataclass
class ArmBody:
    """An :class:`~planners.arm.Arm` (with its tool) loaded as one PyBullet body.

    Attributes:
        client: The owning client.
        arm: The planner's model.
        body: PyBullet body id.
        joint_indices: PyBullet joint index of each actuated joint, in the arm's order.
        link_indices: PyBullet link index by link name (the base link is -1).
    """

    client: BulletClient
    arm: Arm
    body: int
    joint_indices: tuple[int, ...]
    link_indices: dict[str, int]

    @classmethod
    def load(cls, client: BulletClient, arm: Arm, flags: int = 0) -> ArmBody:
        """Load ``arm.urdf_text`` at ``arm.base`` with a fixed base."""
        path = resolved_urdf_file(arm.urdf_text)
        pos, quat = pose_pq(arm.base)
        body = client.loadURDF(str(path), pos, quat, useFixedBase=True, flags=flags)
        joints: dict[str, int] = {}
        links: dict[str, int] = {arm.base_link: -1}
        for j in range(client.getNumJoints(body)):
            info = client.getJointInfo(body, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
        missing = [n for n in arm.joint_names if n not in joints]
        if missing:
            raise UnknownNameError("joint", missing[0], joints)
        self = cls(client, arm, body, tuple(joints[n] for n in arm.joint_names), links)
        if arm.tool is not None:
            for finger in arm.tool.finger_joints:
                client.resetJointState(body, joints[finger], arm.finger_opening)
        return self

    def exclude_adjacent_pairs(self) -> frozenset[tuple[str, str]]:
        """Turn off self-collision between links that may always touch; return the pairs.

        PyBullet's self-collision skips only a link and its direct parent. Links joined
        by fixed joints (flange, tool mount, tool body) are one rigid group, so this
        also skips: pairs within a group, pairs of groups one movable joint apart, the
        fingers of a gripper against each other, and pairs already in contact at the
        ``home`` configuration (flush faces of a model). What remains is what a
        self-collision means: two links that are not meant to touch.
        """
        client, body = self.client, self.body
        n = client.getNumJoints(body)
        parent = {j: client.getJointInfo(body, j)[16] for j in range(n)}
        fixed = {j: client.getJointInfo(body, j)[2] == 4 for j in range(n)}  # JOINT_FIXED

        def group(link: int) -> int:
            while link >= 0 and fixed[link]:
                link = parent[link]
            return link

        def parent_group(g: int) -> int:
            return -2 if g < 0 else group(parent[g])

        links = [-1, *range(n)]
        pairs: set[tuple[int, int]] = set()
        for a in links:
            for b in links:
                if a >= b:
                    continue
                ga, gb = group(a), group(b)
                if ga == gb or parent_group(ga) == gb or parent_group(gb) == ga:
                    pairs.add((a, b))
        names = {index: name for name, index in self.link_indices.items()}
        if self.arm.tool is not None and len(self.arm.tool.finger_joints) > 1:
            fingers = [
                self.link_indices[link]
                for link in _child_links(client, body, self.arm.tool.finger_joints)
            ]
            pairs.update((min(a, b), max(a, b)) for a in fingers for b in fingers if a != b)
        home = self.arm.configurations.get("home")
        if home is not None:
            saved = [client.getJointState(body, j)[0] for j in self.joint_indices]
            self.set_q(home)
            client.performCollisionDetection()
            for c in client.getContactPoints(bodyA=body, bodyB=body):
                pairs.add((min(c[3], c[4]), max(c[3], c[4])))
            self.set_q(saved)
        for a, b in pairs:
            client.setCollisionFilterPair(body, body, a, b, enableCollision=0)
        named = (sorted((names.get(a, str(a)), names.get(b, str(b)))) for a, b in pairs)
        return frozenset((a, b) for a, b in named)

    def link_index(self, link: str) -> int:
        """PyBullet index of ``link``; UnknownNameError lists the links."""
        try:
            return self.link_indices[link]
        except KeyError:
            raise UnknownNameError("link", link, self.link_indices) from None

    def set_q(self, q: npt.ArrayLike) -> None:
        """Teleport the actuated joints to ``q`` (dof,), zero velocity."""
        values = np.asarray(q, dtype=np.float64).reshape(-1, 1).tolist()
        self.client.resetJointStatesMultiDof(self.body, self.joint_indices, values)

    def link_pose(self, link: str) -> NDArray[np.float64]:
        """World pose (4x4) of ``link``'s URDF frame at the current state."""
        index = self.link_index(link)
        if index < 0:
            # PyBullet reports the base's inertial frame; undo the URDF's inertial offset.
            pos, quat = self.client.getBasePositionAndOrientation(self.body)
            info = self.client.getDynamicsInfo(self.body, -1)
            T_inertial = pose_matrix(info[3], info[4], self.client)
            return pose_matrix(pos, quat, self.client) @ np.linalg.inv(T_inertial)
        state = self.client.getLinkState(self.body, index, computeForwardKinematics=True)
        return pose_matrix(state[4], state[5], self.client)
