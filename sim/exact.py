"""Exact collision checks in PyBullet: the ground truth the fast sphere model is judged by.

:class:`ExactChecker` loads the arm (with its tool, fingers at ``finger_opening``, URDF
cylinders as implicit cylinders, meshes as PyBullet's convex hulls) and the scene's
obstacles and attachments as PyBullet bodies in a client it is given, and answers
queries with ``getClosestPoints``. No padding: a configuration collides when some
distance is below zero. Self-collision is checked for the same link pairs as the fast
model (:attr:`planners.collision.CollisionModel.self_pairs`): non-adjacent links, and
attachments against the links other than their own and their ``touch_links``.
Pairs the scene allows are skipped.

The client owns every body: closing the client releases them; :meth:`ExactChecker.close`
(or leaving its ``with`` block) removes just this checker's bodies, for a client that
checks many scenes in turn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pybullet
from numpy.typing import NDArray
from pybullet_utils.bullet_client import BulletClient

from planners.arm import Arm
from planners.collision import CollisionModel
from planners.errors import InputError
from planners.scene import Box, Capsule, Cylinder, Obstacle, Scene, Sphere
from sim.arm_body import ArmBody, pose_pq

__all__ = ["ExactChecker"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def _shape(client: BulletClient, o: Obstacle) -> int:
    if isinstance(o, Box):
        return int(client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=list(o.half_extents)))
    if isinstance(o, Sphere):
        return int(client.createCollisionShape(pybullet.GEOM_SPHERE, radius=o.radius))
    if isinstance(o, Cylinder):
        return int(
            client.createCollisionShape(pybullet.GEOM_CYLINDER, radius=o.radius, height=o.length)
        )
    assert isinstance(o, Capsule)
    return int(client.createCollisionShape(pybullet.GEOM_CAPSULE, radius=o.radius, height=o.length))


class ExactChecker:
    """Exact collision queries of an arm in a scene.

    Args:
        client: A PyBullet client (``sim.client.bullet_client()``); it owns the bodies.
        arm: The arm with its tool.
        scene: Obstacles, attachments and allowed pairs (the padding is ignored).
        model: The fast model whose self-collision pairs to use (built when omitted).
    """

    def __init__(
        self, client: BulletClient, arm: Arm, scene: Scene, model: CollisionModel | None = None
    ) -> None:
        self.client = client
        self.arm = arm
        self.scene = scene
        flags = pybullet.URDF_USE_IMPLICIT_CYLINDER | pybullet.URDF_USE_SELF_COLLISION
        self.body = ArmBody.load(client, arm, flags=flags)
        model = CollisionModel(arm, scene) if model is None else model
        self._obstacles: list[tuple[str, int]] = []
        for o in scene.obstacles:
            pos, quat = pose_pq(o.pose)
            b = client.createMultiBody(
                baseMass=0,
                baseCollisionShapeIndex=_shape(client, o),
                basePosition=pos,
                baseOrientation=quat,
            )
            self._obstacles.append((o.name, int(b)))
        # Attachments: one body per shape, placed at link pose @ T_link_object @ shape pose.
        self._attachments: list[tuple[str, str, list[tuple[int, NDArray[np.float64]]]]] = []
        for att in scene.attachments:
            self.body.link_index(att.link)
            bodies = []
            for s in att.shapes:
                b = client.createMultiBody(baseMass=0, baseCollisionShapeIndex=_shape(client, s))
                bodies.append((int(b), np.asarray(att.T_link_object) @ np.asarray(s.pose)))
            self._attachments.append((att.name, att.link, bodies))
        links_with_geometry = {name for name in model.groups}
        self._links = [
            (n, self.body.link_index(n)) for n in model.groups if n in self.body.link_indices
        ]
        att_names = {a.name for a in scene.attachments}
        self._self_pairs = [
            (a, b) for a, b in model.self_pairs if a not in att_names and b not in att_names
        ]
        self._att_pairs = [(a, b) for a, b in model.self_pairs if a in att_names or b in att_names]
        self._geometry_links = links_with_geometry
        self._att_by_name = {name: bodies for name, _, bodies in self._attachments}

    # ----------------------------------------------------------------- helpers

    def _set(self, q: npt.ArrayLike) -> None:
        q = self.arm.check_q(q)
        self.body.set_q(q)
        for _, link, bodies in self._attachments:
            T_link = self.body.link_pose(link)
            for b, T_rel in bodies:
                pos, quat = pose_pq(T_link @ T_rel)
                self.client.resetBasePositionAndOrientation(b, pos, quat)

    def _pairs(self) -> list[tuple[str, str, int, int, int, int]]:
        """Every checked pair: (name a, name b, body a, link a, body b, link b)."""
        out = []
        arm = self.body.body
        att_links = {name: link for name, link, _ in self._attachments}
        for lname, li in self._links:
            for oname, ob in self._obstacles:
                if not self.scene.is_allowed(lname, oname):
                    out.append((lname, oname, arm, li, ob, -1))
        for aname, bodies in self._att_by_name.items():
            for oname, ob in self._obstacles:
                if not self.scene.is_allowed(aname, oname):
                    out.extend((aname, oname, b, -1, ob, -1) for b, _ in bodies)
        for a, b in self._self_pairs:
            out.append((a, b, arm, self.body.link_index(a), arm, self.body.link_index(b)))
        for a, b in self._att_pairs:
            if a in att_links and b in att_links:
                continue
            aname, lname = (a, b) if a in att_links else (b, a)
            out.extend(
                (aname, lname, ab, -1, arm, self.body.link_index(lname))
                for ab, _ in self._att_by_name[aname]
            )
        return out

    def _closest(self, pair: tuple[str, str, int, int, int, int], max_distance: float) -> float:
        _, _, ba, la, bb, lb = pair
        kwargs = {}
        if la >= -1 and ba == self.body.body:
            kwargs["linkIndexA"] = la
        if lb >= -1 and bb == self.body.body:
            kwargs["linkIndexB"] = lb
        points = self.client.getClosestPoints(ba, bb, max_distance, **kwargs)
        return min((p[8] for p in points), default=math.inf)

    # ------------------------------------------------------------------- API

    def contacts(self, q: npt.ArrayLike, max_distance: float = 0.0) -> list[tuple[str, str, float]]:
        """Pairs closer than ``max_distance`` [m] at ``q`` (dof,), nearest first.

        Returns:
            ``(a, b, distance)`` tuples.
        """
        self._set(q)
        out = []
        for pair in self._pairs():
            d = self._closest(pair, max_distance)
            if d <= max_distance:
                out.append((pair[0], pair[1], d))
        return sorted(out, key=lambda x: x[2])

    def in_collision(self, q: npt.ArrayLike) -> bool:
        """Whether ``q`` (dof,) collides (some distance below zero)."""
        self._set(q)
        return any(self._closest(pair, 0.0) < 0.0 for pair in self._pairs())

    def collision_pair(self, q: npt.ArrayLike) -> tuple[str, str] | None:
        """The deepest colliding pair at ``q`` (dof,), or ``None``."""
        hits = [c for c in self.contacts(q, 0.0) if c[2] < 0.0]
        return (hits[0][0], hits[0][1]) if hits else None

    def distance(self, q: npt.ArrayLike, max_distance: float = 1.0) -> float:
        """Smallest signed distance [m] at ``q`` (dof,) over every checked pair.

        Negative: penetration depth. ``inf`` when nothing is within ``max_distance``.
        """
        self._set(q)
        return min((self._closest(pair, max_distance) for pair in self._pairs()), default=math.inf)

    def first_collision(
        self, path: npt.ArrayLike, resolution: float = 0.01
    ) -> tuple[int, tuple[str, str]] | None:
        """The first collision along a joint-space path, checked densely.

        Each segment ``path[i] -> path[i + 1]`` is sampled so that no joint moves more
        than ``resolution`` [rad or m] between samples, both ends included.

        Args:
            path: (K, dof) waypoints.
            resolution: Largest joint step between checked configurations.

        Returns:
            ``(i, (a, b))``: the segment ``i`` (0 for a single waypoint) and the pair
            colliding at its first colliding sample; ``None`` when the path is free.
        """
        P = np.asarray(path, dtype=np.float64)
        if P.ndim != 2 or P.shape[1] != self.arm.dof or len(P) == 0:
            raise InputError(f"path: expected shape (K, {self.arm.dof}), got {P.shape}")
        if not np.isfinite(P).all():
            raise InputError("path: every value must be finite")
        if not (math.isfinite(resolution) and resolution > 0):
            raise InputError(f"resolution: expected a positive number, got {resolution!r}")
        if len(P) == 1:
            pair = self.collision_pair(P[0])
            return None if pair is None else (0, pair)
        for i in range(len(P) - 1):
            n = max(2, math.ceil(np.abs(P[i + 1] - P[i]).max() / resolution) + 1)
            for t in np.linspace(0.0, 1.0, n)[(1 if i else 0) :]:
                q = P[i] + t * (P[i + 1] - P[i])
                if self.in_collision(q):
                    pair = self.collision_pair(q)
                    assert pair is not None
                    return i, pair
        return None

    def close(self) -> None:
        """Remove this checker's bodies from the client (the client stays open)."""
        bodies = [self.body.body] + [b for _, b in self._obstacles]
        bodies += [b for _, _, shapes in self._attachments for b, _ in shapes]
        for b in bodies:
            self.client.removeBody(b)
        self._obstacles = []
        self._attachments = []
        self._att_by_name = {}

    def __enter__(self) -> ExactChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def link_names(self) -> Sequence[str]:
        """Links with collision geometry, as checked here."""
        return [n for n, _ in self._links]
