"""A PyBullet world built from a description: arms with tools, URDF bodies, obstacles.

A :class:`World` owns one ``BulletClient(DIRECT)``; nothing is module-level, several
worlds live side by side in one process, and :meth:`World.close` frees everything.
The world is built once and reused: :meth:`World.reset` restores the state saved right
after building (reloading models on every reset leaks memory in PyBullet), and
:meth:`World.preserved` scopes a temporary change (a replay, a sweep) to a block.

Names: every body has a name (the arm's name, a body spec's name, an obstacle's name),
and every place in the world is named ``body`` or ``body/link``; verdicts and contacts
speak these names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
import pybullet
from numpy.typing import NDArray

from planners.arm import Arm
from planners.arrays import as_matrix4, frozen
from planners.errors import InputError, UnknownNameError
from planners.scene import Box, Capsule, Cylinder, Obstacle, Sphere
from planners.urdf import model_dir, resolve_urdf, resolved_urdf_file
from sim.arm_body import ArmBody, pose_matrix, pose_pq
from sim.client import BulletClient, direct_client

__all__ = ["BodySpec", "World", "WorldSpec", "obstacle_body"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class BodySpec:
    """A body loaded from a model folder under ``urdf/``.

    Attributes:
        name: Unique name in the world.
        model: Model folder name (``urdf/<model>/<model>.urdf``).
        pose: 4x4 world pose of the body's root link frame (read-only).
        fixed: True for a fixture bolted to the world; False for a free part.
    """

    name: str
    model: str
    pose: NDArray[np.float64]
    fixed: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "pose", frozen(as_matrix4(self.pose, f"{self.name}.pose")))


@dataclass(frozen=True)
class WorldSpec:
    """What a world holds.

    Attributes:
        arms: Arms by name, each placed by its ``base`` and carrying its tool.
        bodies: Fixtures and parts loaded from URDF.
        obstacles: Primitive obstacles (fixed).
        gravity: Gravity along world z [m/s^2].
        timestep: Physics step [s].
    """

    arms: Mapping[str, Arm] = field(default_factory=dict)
    bodies: tuple[BodySpec, ...] = ()
    obstacles: tuple[Obstacle, ...] = ()
    gravity: float = -9.81
    timestep: float = 1e-3

    def __post_init__(self) -> None:
        names = [*self.arms, *(b.name for b in self.bodies), *(o.name for o in self.obstacles)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"world: names must be unique, repeated: {', '.join(dupes)}")
        if not (np.isfinite(self.timestep) and self.timestep > 0):
            raise InputError(f"world.timestep: expected a positive number [s], got {self.timestep}")
        object.__setattr__(self, "arms", dict(self.arms))
        object.__setattr__(self, "bodies", tuple(self.bodies))
        object.__setattr__(self, "obstacles", tuple(self.obstacles))


def obstacle_body(client: BulletClient, obstacle: Obstacle, mass: float = 0.0) -> int:
    """Create a PyBullet body (collision and visual shape) for a primitive obstacle."""
    if isinstance(obstacle, Box):
        kw = {"shapeType": pybullet.GEOM_BOX, "halfExtents": obstacle.half_extents.tolist()}
    elif isinstance(obstacle, Sphere):
        kw = {"shapeType": pybullet.GEOM_SPHERE, "radius": float(obstacle.radius)}
    elif isinstance(obstacle, Cylinder):
        kw = {"shapeType": pybullet.GEOM_CYLINDER, "radius": float(obstacle.radius)}
        kw_len = {"height": float(obstacle.length)}
    elif isinstance(obstacle, Capsule):
        kw = {"shapeType": pybullet.GEOM_CAPSULE, "radius": float(obstacle.radius)}
        kw_len = {"height": float(obstacle.length)}
    else:
        raise InputError(f"obstacle {obstacle!r}: expected a Box, Sphere, Cylinder or Capsule")
    if isinstance(obstacle, (Cylinder, Capsule)):
        collision = client.createCollisionShape(**kw, **kw_len)
        visual = client.createVisualShape(**kw, length=kw_len["height"])
    else:
        collision = client.createCollisionShape(**kw)
        visual = client.createVisualShape(**kw)
    pos, quat = pose_pq(obstacle.pose)
    return int(client.createMultiBody(mass, collision, visual, pos, quat))


class World:
    """A PyBullet world built from a :class:`WorldSpec`.

    Use as a context manager, or call :meth:`close`.

    Attributes:
        spec: The description it was built from.
        client: Its own PyBullet client.
        arms: Loaded arms by name.
        bodies: PyBullet body id by name, for every body spec and obstacle.
    """

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.client = direct_client()
        self._closed = False
        try:
            self.client.setGravity(0.0, 0.0, spec.gravity)
            self.client.setTimeStep(spec.timestep)
            self.arms: dict[str, ArmBody] = {}
            self.bodies: dict[str, int] = {}
            # Implicit cylinders: PyBullet otherwise turns a URDF cylinder into a convex
            # hull with a 1 mm collision margin, and two cylinders then "touch" 2 mm apart
            # (measured: a 0.8 mm gap between a screwdriver bit and a boss read as 1.2 mm
            # of penetration). Implicit cylinders give exact distances.
            flags = (
                pybullet.URDF_USE_SELF_COLLISION
                | pybullet.URDF_USE_INERTIA_FROM_FILE
                | pybullet.URDF_USE_IMPLICIT_CYLINDER
            )
            self.adjacent: dict[str, frozenset[tuple[str, str]]] = {}
            for name, arm in spec.arms.items():
                self.arms[name] = ArmBody.load(self.client, arm, flags=flags)
                self.adjacent[name] = self.arms[name].exclude_adjacent_pairs()
            for body in spec.bodies:
                path = model_dir(body.model) / f"{body.model}.urdf"
                file = resolved_urdf_file(resolve_urdf(path))
                pos, quat = pose_pq(body.pose)
                self.bodies[body.name] = int(
                    self.client.loadURDF(str(file), pos, quat, useFixedBase=body.fixed, flags=flags)
                )
            for obstacle in spec.obstacles:
                self.bodies[obstacle.name] = obstacle_body(self.client, obstacle)
            self._names = {ab.body: name for name, ab in self.arms.items()}
            self._names.update({b: name for name, b in self.bodies.items()})
            self._links = {b: self._link_names(b) for b in self._names}
            self._initial = self.client.saveState()
        except BaseException:
            self.client.disconnect()
            self._closed = True
            raise

    def _link_names(self, body: int) -> dict[int, str]:
        names = {-1: self.client.getBodyInfo(body)[0].decode()}
        for j in range(self.client.getNumJoints(body)):
            names[j] = self.client.getJointInfo(body, j)[12].decode()
        return names

    # -- names -------------------------------------------------------------------------
    def arm(self, name: str) -> ArmBody:
        """The arm ``name``; UnknownNameError lists the arms."""
        try:
            return self.arms[name]
        except KeyError:
            raise UnknownNameError("arm", name, self.arms) from None

    def body(self, name: str) -> int:
        """PyBullet id of body or arm ``name``; UnknownNameError lists the names."""
        if name in self.arms:
            return self.arms[name].body
        try:
            return self.bodies[name]
        except KeyError:
            raise UnknownNameError("body", name, [*self.arms, *self.bodies]) from None

    def pairs(self, pairs: Iterable[tuple[str, str]], field: str) -> set[tuple[str, str]]:
        """Body-name pairs, sorted within each pair; a name that is no body or arm of
        this world raises UnknownNameError (a misspelt allowed contact would otherwise
        hide a real one)."""
        out = set()
        for a, b in pairs:
            for name in (a, b):
                if name not in self.arms and name not in self.bodies:
                    raise UnknownNameError(f"body in {field}", name, [*self.arms, *self.bodies])
            out.add((min(a, b), max(a, b)))
        return out

    def place(self, body: int, link: int = -1) -> str:
        """``name`` of a body, or ``name/link`` for a link other than a body's base."""
        name = self._names.get(body, f"body{body}")
        if link < 0 and body not in {a.body for a in self.arms.values()}:
            return name
        return f"{name}/{self._links.get(body, {}).get(link, str(link))}"

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        """Restore the state saved right after the world was built."""
        self.client.restoreState(self._initial)

    @contextmanager
    def preserved(self) -> Iterator[None]:
        """Restore the state (positions, velocities, contacts) on leaving the block.

        Constraints created inside the block are removed too.
        """
        state = self.client.saveState()
        constraints = self.client.getNumConstraints()
        try:
            yield
        finally:
            ids = [
                self.client.getConstraintUniqueId(i) for i in range(self.client.getNumConstraints())
            ]
            for cid in ids[constraints:]:
                self.client.removeConstraint(cid)
            self.client.restoreState(state)
            self.client.removeState(state)

    def body_pose(self, name: str) -> NDArray[np.float64]:
        """World pose (4x4) of body ``name``'s root link frame."""
        body = self.body(name)
        pos, quat = self.client.getBasePositionAndOrientation(body)
        info = self.client.getDynamicsInfo(body, -1)
        return pose_matrix(pos, quat, self.client) @ np.linalg.inv(
            pose_matrix(info[3], info[4], self.client)
        )

    def set_body_pose(self, name: str, T_world_body: NDArray[np.float64]) -> None:
        """Teleport body ``name`` so its root link frame is at ``T_world_body``."""
        body = self.body(name)
        info = self.client.getDynamicsInfo(body, -1)
        T = np.asarray(T_world_body) @ pose_matrix(info[3], info[4], self.client)
        pos, quat = pose_pq(T)
        self.client.resetBasePositionAndOrientation(body, pos, quat)

    # -- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect the client; every body, state and constraint goes with it."""
        if not self._closed:
            self._closed = True
            self.client.disconnect()

    def __enter__(self) -> World:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
