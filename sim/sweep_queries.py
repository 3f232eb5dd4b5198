"""The sweep's exact queries: place the arm and its parts, ask PyBullet, name what it finds.

A sample is placed by setting the arm's joints and teleporting the parts the trajectory
handles (held ones at the TCP, put-down ones where they were released, the others
where they started). Then, against each world body the caller names:

* closest points (``getClosestPoints``) up to a reach: the distances, for the minimum
  clearance, and where one shows an overlap, contacts after
  ``performCollisionDetection``, a point deeper than the touch tolerance being a
  COLLISION (closest points are no substitute for its depth: between two boxes sunk
  10 mm into each other they report 2 mm). PyBullet keeps contact points from one
  detection to the next; what a sample reports must not depend on which samples were
  queried before it, so after a detection that left points the movers are taken far
  away for one more, which drops them;
* self-collision: ``getClosestPoints`` between each pair of the arm's links PyBullet
  checks whose bounding boxes overlap (link pairs of one body keep their contact
  points whatever the arm does);

:meth:`SweepQueries.restored` puts back the joints, the parts and the contact cache.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
from numpy.typing import NDArray

from sim.arm_body import pose_matrix
from sim.verdict import Violation, ViolationKind
from sim.world import World

__all__ = ["SweepQueries", "quaternion_xyzw", "quaternions_xyzw", "rotation_matrix"]


def quaternion_xyzw(R: NDArray[np.float64]) -> list[float]:
    """Unit quaternion x, y, z, w of a 3x3 rotation (Shepperd's method)."""
    m00, m01, m02 = float(R[0, 0]), float(R[0, 1]), float(R[0, 2])
    m10, m11, m12 = float(R[1, 0]), float(R[1, 1]), float(R[1, 2])
    m20, m21, m22 = float(R[2, 0]), float(R[2, 1]), float(R[2, 2])
    trace = m00 + m11 + m22
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        return [(m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, 0.25 * s]
    if m00 > m11 and m00 > m22:
        s = 2.0 * math.sqrt(1.0 + m00 - m11 - m22)
        return [0.25 * s, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s]
    if m11 > m22:
        s = 2.0 * math.sqrt(1.0 + m11 - m00 - m22)
        return [(m01 + m10) / s, 0.25 * s, (m12 + m21) / s, (m02 - m20) / s]
    s = 2.0 * math.sqrt(1.0 + m22 - m00 - m11)
    return [(m02 + m20) / s, (m12 + m21) / s, 0.25 * s, (m10 - m01) / s]


def quaternions_xyzw(R: NDArray[np.float64]) -> NDArray[np.float64]:
    """(K, 4) unit quaternions x, y, z, w of (K, 3, 3) rotations (as :func:`quaternion_xyzw`)."""
    m00, m01, m02 = R[:, 0, 0], R[:, 0, 1], R[:, 0, 2]
    m10, m11, m12 = R[:, 1, 0], R[:, 1, 1], R[:, 1, 2]
    m20, m21, m22 = R[:, 2, 0], R[:, 2, 1], R[:, 2, 2]
    out = np.empty((len(R), 4))
    trace = m00 + m11 + m22
    cases = [
        (trace > 0.0, trace + 1.0,
         lambda h: ((m21 - m12) / h, (m02 - m20) / h, (m10 - m01) / h, h / 4)),
        ((m00 > m11) & (m00 > m22), 1.0 + m00 - m11 - m22,
         lambda h: (h / 4, (m01 + m10) / h, (m02 + m20) / h, (m21 - m12) / h)),
        (m11 > m22, 1.0 + m11 - m00 - m22,
         lambda h: ((m01 + m10) / h, h / 4, (m12 + m21) / h, (m02 - m20) / h)),
        (np.ones(len(R), np.bool_), 1.0 + m22 - m00 - m11,
         lambda h: ((m02 + m20) / h, (m12 + m21) / h, h / 4, (m10 - m01) / h)),
    ]  # fmt: skip
    todo = np.ones(len(R), np.bool_)
    for cond, value, parts in cases:
        pick = todo & cond
        h = 2.0 * np.sqrt(np.where(pick, value, 1.0))
        for c, v in enumerate(parts(h)):
            out[pick, c] = v[pick]
        todo &= ~pick
    return out


def rotation_matrix(q: Sequence[float]) -> NDArray[np.float64]:
    """3x3 rotation of a unit quaternion x, y, z, w."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


class SweepQueries:
    """Exact queries of one arm (and the parts it handles) against a world.

    Args:
        world: The world.
        arm_name: The arm that moves.
        parts: Bodies the trajectory picks up or puts down.
        allowed: Sorted pairs of body names that may touch.
        self_pairs: The arm's link pairs checked for self-collision (PyBullet indices).
        touch_tolerance: Penetration [m] up to which two bodies only touch.

    Attributes:
        others: World bodies and other arms as ``(body id, name, column)``; ``column``
            indexes :attr:`World.bodies` order (-1 for another arm).
        start_poses: World pose (4x4) of each handled part before the sweep.
    """

    def __init__(
        self,
        world: World,
        arm_name: str,
        parts: Sequence[str],
        allowed: set[tuple[str, str]],
        self_pairs: Sequence[tuple[int, int]],
        touch_tolerance: float,
    ) -> None:
        self.world = world
        client = world.client
        self.client = client
        self.body = world.arm(arm_name)
        self.arm_name = arm_name
        self.allowed = allowed
        self.touch = touch_tolerance
        self.others: list[tuple[int, str, int]] = [
            (b, name, col) for col, (name, b) in enumerate(world.bodies.items())
        ]
        self.others += [(a.body, n, -1) for n, a in world.arms.items() if n != arm_name]
        self._parts = {p: world.body(p) for p in dict.fromkeys(parts)}
        self._inertial = {}
        self._inertial_inv = {}
        for p, b in self._parts.items():
            info = client.getDynamicsInfo(b, -1)
            self._inertial[p] = pose_matrix(info[3], info[4], client)
            self._inertial_inv[p] = np.linalg.inv(self._inertial[p])
        self._start: dict[str, NDArray[np.float64]] = {}
        self.start_poses: Mapping[str, NDArray[np.float64]] = self._start
        self._placed: dict[str, object] = {}
        self._names: dict[tuple[int, int], str] = {}
        self._pairs: dict[tuple[str, ...], list[tuple[int, int, int, int]]] = {}
        self._chosen: dict[tuple[object, ...], tuple[list[tuple[int, int]], frozenset]] = {}
        self._movers: dict[tuple[str, ...], tuple[list[tuple[int, str]], set[int]]] = {}
        # PyBullet calls bound once (the client binds its id on every attribute access)
        self._closest = client.getClosestPoints
        self._contacts = client.getContactPoints
        self._detect = client.performCollisionDetection
        self._reset_joints = client.resetJointStatesMultiDof
        self._reset_base = client.resetBasePositionAndOrientation
        self._joints = list(self.body.joint_indices)
        self._detected = False
        self._self_pairs = [(int(a), int(b)) for a, b in self_pairs]
        self._self_links = sorted({i for pair in self._self_pairs for i in pair})
        self._aabb = client.getAABB
        self._base_pose = client.getBasePositionAndOrientation
        self._part_pose: dict[int, tuple[list[float], list[float]]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the world afresh (where the parts and the arm's base are): before a sweep."""
        for p, b in self._parts.items():
            pos, quat = self._base_pose(b)
            T = np.eye(4)
            T[:3, :3] = rotation_matrix(quat)
            T[:3, 3] = pos
            self._start[p] = T @ self._inertial_inv[p]  # the root link frame
        self._arm_pose = self._base_pose(self.body.body)
        self._part_pose.clear()
        self._placed.clear()
        self._detected = False

    # ------------------------------------------------------------------ state

    @contextmanager
    def restored(self) -> Iterator[None]:
        """Put the arm's joints and the handled parts back (poses and velocities) on leaving.

        The sweep moves only those. Its contact detections leave contact points of theirs
        in PyBullet's cache, which a later simulation step would start from: they are
        dropped (the bodies taken far away for one more detection). The cache held none
        of theirs before (a replay restores the whole state it found); saving and
        restoring the whole state (:meth:`sim.world.World.preserved`) costs about 1 ms.
        """
        bodies = [self.body.body, *self._parts.values()]
        c = self.client
        joints = c.getJointStates(self.body.body, self._joints)
        poses = {b: c.getBasePositionAndOrientation(b) for b in bodies}
        speeds = {b: c.getBaseVelocity(b) for b in bodies}
        self._detected = False
        try:
            yield
        finally:
            self._placed.clear()
            if self._detected:
                for b in bodies:
                    self._reset_base(b, [0.0, 0.0, 1e4 + 10.0 * b], [0.0, 0.0, 0.0, 1.0])
                self._detect()
            for b in bodies:
                self._reset_base(b, *poses[b])
                c.resetBaseVelocity(b, *speeds[b])
            self._reset_joints(
                self.body.body,
                self._joints,
                [[s[0]] for s in joints],
                targetVelocities=[[s[1]] for s in joints],
            )

    def _put(self, part: str, T: NDArray[np.float64], key: object | None) -> None:
        """Teleport ``part``'s root link frame to ``T`` (3x4 or 4x4); skipped when ``key``
        (not None) is what it was last put at."""
        if key is not None and self._placed.get(part) is key:
            return
        G = self._inertial[part]
        R = T[:3, :3] @ G[:3, :3]
        p = T[:3, :3] @ G[:3, 3] + T[:3, 3]
        pose = (p.tolist(), quaternion_xyzw(R))
        self._reset_base(self._parts[part], *pose)
        self._part_pose[self._parts[part]] = pose
        self._placed[part] = key

    def held_poses(
        self, T_tcp: NDArray[np.float64], grip: NDArray[np.float64], part: str
    ) -> list[tuple[list[float], list[float]]]:
        """PyBullet base poses (position, x y z w) of ``part`` for (K, 3, 4) TCP poses and
        (K, 4, 4) grips ``T_tcp_part``."""
        G = grip @ self._inertial[part]
        R = T_tcp[:, :, :3] @ G[:, :3, :3]
        p = (T_tcp[:, :, :3] @ G[:, :3, 3:])[:, :, 0] + T_tcp[:, :, 3]
        return list(zip(p.tolist(), quaternions_xyzw(R).tolist(), strict=True))

    def place(
        self,
        q: list[list[float]],
        held: Mapping[str, tuple[list[float], list[float]]],
        moved: Mapping[str, NDArray[np.float64]],
    ) -> tuple[list[tuple[int, str]], set[int]]:
        """Set a sample; returns the movers ``(body id, name)`` (the arm, then the held parts
        by name) and the held parts' ids.

        Args:
            q: The joint positions, one list per joint (PyBullet's form).
            held: Base pose (position, x y z w) of each held part (:meth:`held_poses`).
            moved: Where each part put down elsewhere lies.
        """
        self._reset_joints(self.body.body, self._joints, q)
        for part in self._parts:
            if part in held:
                pose = held[part]
                body = self._parts[part]
                self._reset_base(body, *pose)
                self._part_pose[body] = pose
                self._placed[part] = None
            elif part in moved:
                self._put(part, moved[part], moved[part])
            else:
                self._put(part, self._start[part], self._start[part])
        key = tuple(held)
        out = self._movers.get(key)
        if out is None:
            held_ids = {self._parts[p] for p in held}
            movers = [(self.body.body, self.arm_name)]
            movers += [(self._parts[p], p) for p in sorted(held)]
            out = self._movers[key] = (movers, held_ids)
        return out

    # ------------------------------------------------------------------ queries

    def _place_name(self, body: int, link: int) -> str:
        key = (body, link)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = self.world.place(body, link)
        return name

    def pairs(
        self, movers: list[tuple[int, str]], held_ids: set[int], columns: tuple[int, ...]
    ) -> tuple[list[tuple[int, int]], frozenset[tuple[int, int]]]:
        """(mover, other) body ids to check, as a list and a set.

        ``columns[i]`` picks the world bodies checked against mover i, by bit (bit j: the
        body of column j; -1: all); other arms are always checked.
        """
        names = tuple(name for _, name in movers)
        hit = self._chosen.get((names, columns))
        if hit is not None:
            return hit
        candidates = self._pairs.get(names)
        if candidates is None:
            candidates = []
            for i, (mover, name) in enumerate(movers):
                for other, other_name, col in self.others:
                    if other == mover or other in held_ids:
                        continue
                    if mover in held_ids and other == self.body.body:
                        continue
                    if tuple(sorted((name, other_name))) in self.allowed:
                        continue
                    candidates.append((i, mover, other, col))
            self._pairs[names] = candidates
        chosen = [(m, o) for i, m, o, col in candidates if col < 0 or (columns[i] >> col) & 1]
        hit = self._chosen[names, columns] = (chosen, frozenset(chosen))
        return hit

    def _forget(self, movers: list[tuple[int, str]]) -> None:
        """Drop the movers' contact points: one detection with them far away."""
        far = [0.0, 0.0, 0.0, 1.0]
        for b, _ in movers:
            self._reset_base(b, [0.0, 0.0, 1e4 + 10.0 * b], far)
        self._detect()
        for b, _ in movers:
            pose = self._arm_pose if b == self.body.body else self._part_pose[b]
            self._reset_base(b, *pose)

    def probe(
        self,
        t: float,
        movers: list[tuple[int, str]],
        held_ids: set[int],
        columns: tuple[int, ...],
        reach: float,
        below: float,
        self_check: bool,
    ) -> tuple[list[Violation], float, str | None, list[tuple[float, str]]]:
        """Contacts and distances at the placed sample, against the bodies of ``columns``.

        Closest points up to ``reach`` come first; only where one is deeper than half
        the touch tolerance does the contact detection run (it reports the depth: the
        closest points of two boxes sunk into each other are not their deepest, but
        shallow ones agree, and any overlap shows), so a sample that only touches costs
        one query per pair.

        Args:
            t: The sample's time [s].
            movers, held_ids: As :meth:`place` returns them.
            columns: World bodies to check against each mover, by bit (-1: all).
            reach: Distances are measured up to this [m] (> 0).
            below: Points with ``0 < distance < below`` are returned too.
            self_check: Check the arm's link pairs for self-collision too.

        Returns:
            COLLISION and SELF_COLLISION violations, the smallest distance (``inf`` when
            none) and its places, and the points closer than ``below``.
        """
        out: list[Violation] = []
        best = np.inf
        best_at: tuple[int, int, int, int] | None = None
        close = []
        deep = False
        closest = self._closest
        pairs, checked = self.pairs(movers, held_ids, columns)
        for mover, other in pairs:
            for c in closest(mover, other, reach):
                d = float(c[8])
                if d < best:
                    best, best_at = d, (mover, c[3], other, c[4])
                if 0.0 < d < below:
                    where = f"{self._place_name(mover, c[3])} | {self._place_name(other, c[4])}"
                    close.append((d, where))
                if d < -0.5 * self.touch:
                    deep = True
        if deep:
            self._detect()
            self._detected = True
            cached = False
            for mover, _ in movers:
                for c in self._contacts(bodyA=mover):
                    other = c[2]
                    if other == mover:
                        continue  # the arm's own links: checked below
                    cached = True
                    depth = -float(c[8])
                    if depth > self.touch and (mover, other) in checked:
                        where = f"{self._place_name(mover, c[3])} | {self._place_name(other, c[4])}"
                        out.append(Violation(t, ViolationKind.COLLISION, where, depth, 0.0, "m"))
            if cached:
                self._forget(movers)  # points with the world stay cached otherwise
        if self_check:
            arm = self.body.body
            boxes = {i: self._aabb(arm, i) for i in self._self_links}
            for a, b in self._self_pairs:
                (la, ha), (lb, hb) = boxes[a], boxes[b]
                if any(ha[x] < lb[x] or hb[x] < la[x] for x in range(3)):
                    continue  # bounding boxes apart: no contact
                for c in closest(arm, arm, 0.0, a, b):
                    depth = -float(c[8])
                    if depth > self.touch:
                        where = f"{self._place_name(arm, a)} | {self._place_name(arm, b)}"
                        out.append(
                            Violation(t, ViolationKind.SELF_COLLISION, where, depth, 0.0, "m")
                        )
        if best_at is None:
            return out, best, None, close
        ma, la_, ob, lb_ = best_at
        return out, best, f"{self._place_name(ma, la_)} | {self._place_name(ob, lb_)}", close

    def distances(
        self,
        movers: list[tuple[int, str]],
        held_ids: set[int],
        columns: tuple[int, ...],
        reach: float,
        below: float,
    ) -> tuple[float, str | None, list[tuple[float, str]]]:
        """Closest points up to ``reach`` [m] of every checked pair.

        Returns:
            The smallest distance (``inf`` when none) and its places, and every point
            with ``0 < distance < below`` (distance, places).
        """
        best = np.inf
        best_at: tuple[int, int, int, int] | None = None
        close = []
        closest = self._closest
        for mover, other in self.pairs(movers, held_ids, columns)[0]:
            for c in closest(mover, other, reach):
                d = float(c[8])
                if d < best:
                    best, best_at = d, (mover, c[3], other, c[4])
                if 0.0 < d < below:
                    where = f"{self._place_name(mover, c[3])} | {self._place_name(other, c[4])}"
                    close.append((d, where))
        if best_at is None:
            return best, None, close
        ma, la, ob, lb = best_at
        return best, f"{self._place_name(ma, la)} | {self._place_name(ob, lb)}", close
