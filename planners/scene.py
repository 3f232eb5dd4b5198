"""The world an arm moves in: obstacles, held parts and the rules of contact.

A :class:`Scene` is a value: obstacles (boxes, spheres, cylinders, capsules) with world
poses, objects attached to a link of the arm (a held part, moved with the link), a
padding [m] every robot-to-world distance must keep, and pairs of names allowed to
touch. Every ``with_...`` method returns a new scene.

Meshes are not obstacles here: :func:`mesh_box` turns a mesh into its bounding box in the
mesh's own frame (conservative: the mesh lies inside the box), and
:mod:`planners.scene_urdf` reads a static URDF's collision primitives into obstacles.

Poses are 4x4 homogeneous transforms (spatialmath ``SE3`` accepted on creation), lengths
in metres.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.arrays import as_matrix4, frozen
from planners.errors import InputError, UnknownNameError

__all__ = [
    "OBSTACLE_TYPES",
    "Attachment",
    "Box",
    "Capsule",
    "Cylinder",
    "Obstacle",
    "Scene",
    "Sphere",
    "mesh_box",
    "obstacle_from_dict",
    "pose_from_position_quat",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def _pose(value: object, field_name: str) -> NDArray[np.float64]:
    return frozen(as_matrix4(value, field_name))


def _positive(value: object, field_name: str) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{field_name}: expected a positive number, got {value!r}") from exc
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{field_name}: expected a positive finite number, got {value!r}")
    return x


def _name(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{field_name}: expected a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, init=False)
class Box:
    """A box centred on its pose.

    Attributes:
        name: Unique name in the scene.
        pose: 4x4 pose of the box centre (``T_world_box``, or ``T_object_box`` inside an
            :class:`Attachment`), read-only.
        half_extents: (3,) half sizes along the box's x, y, z [m], read-only.
    """

    name: str
    pose: NDArray[np.float64]
    half_extents: NDArray[np.float64]

    def __init__(self, name: str, pose: object, half_extents: npt.ArrayLike) -> None:
        object.__setattr__(self, "name", _name(name, "box.name"))
        object.__setattr__(self, "pose", _pose(pose, f"{self.name}.pose"))
        try:
            h = np.asarray(half_extents, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.name}.half_extents: expected 3 numbers") from exc
        if h.shape != (3,):
            raise InputError(f"{self.name}.half_extents: expected 3 numbers, got shape {h.shape}")
        for i, v in enumerate(h):
            _positive(v, f"{self.name}.half_extents[{i}]")
        object.__setattr__(self, "half_extents", frozen(h))


@dataclass(frozen=True, init=False)
class Sphere:
    """A sphere centred on its pose's origin; ``radius`` [m]."""

    name: str
    pose: NDArray[np.float64]
    radius: float

    def __init__(self, name: str, pose: object, radius: float) -> None:
        object.__setattr__(self, "name", _name(name, "sphere.name"))
        object.__setattr__(self, "pose", _pose(pose, f"{self.name}.pose"))
        object.__setattr__(self, "radius", _positive(radius, f"{self.name}.radius"))


@dataclass(frozen=True, init=False)
class Cylinder:
    """A solid cylinder along its local z axis, centred on its pose.

    Attributes:
        name: Unique name.
        pose: 4x4 pose of the centre; the axis is the pose's z axis.
        radius: Radius [m].
        length: Length along z [m] (from ``-length/2`` to ``+length/2``).
    """

    name: str
    pose: NDArray[np.float64]
    radius: float
    length: float

    def __init__(self, name: str, pose: object, radius: float, length: float) -> None:
        object.__setattr__(self, "name", _name(name, "cylinder.name"))
        object.__setattr__(self, "pose", _pose(pose, f"{self.name}.pose"))
        object.__setattr__(self, "radius", _positive(radius, f"{self.name}.radius"))
        object.__setattr__(self, "length", _positive(length, f"{self.name}.length"))


@dataclass(frozen=True, init=False)
class Capsule:
    """A capsule: the segment ``z in [-length/2, length/2]`` of the local z axis swept by a
    ball of ``radius`` [m] (total length ``length + 2 radius``), centred on its pose."""

    name: str
    pose: NDArray[np.float64]
    radius: float
    length: float

    def __init__(self, name: str, pose: object, radius: float, length: float) -> None:
        object.__setattr__(self, "name", _name(name, "capsule.name"))
        object.__setattr__(self, "pose", _pose(pose, f"{self.name}.pose"))
        object.__setattr__(self, "radius", _positive(radius, f"{self.name}.radius"))
        object.__setattr__(self, "length", _positive(length, f"{self.name}.length"))


Obstacle = Union[Box, Sphere, Cylinder, Capsule]  # noqa: UP007 (a runtime alias)

#: The ``type`` values :func:`obstacle_from_dict` understands.
OBSTACLE_TYPES: tuple[str, ...] = ("box", "capsule", "cylinder", "sphere")


def pose_from_position_quat(
    position: npt.ArrayLike, quat_xyzw: npt.ArrayLike | None, field_name: str
) -> NDArray[np.float64]:
    """A 4x4 pose from a position (3,) [m] and a unit quaternion x, y, z, w (4,).

    Raises:
        InputError: wrong length, a non-finite value, or a zero quaternion.
    """
    p = np.asarray(position, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"{field_name}.position: expected 3 finite numbers, got {position!r}")
    T = np.eye(4)
    T[:3, 3] = p
    if quat_xyzw is not None:
        quat = np.asarray(quat_xyzw, dtype=np.float64).reshape(-1)
        if quat.shape != (4,) or not np.all(np.isfinite(quat)):
            raise InputError(
                f"{field_name}.quat_xyzw: expected 4 finite numbers, got {quat_xyzw!r}"
            )
        n = float(np.linalg.norm(quat))
        if n < 1e-9:
            raise InputError(f"{field_name}.quat_xyzw: the quaternion is zero")
        x, y, z, w = quat / n
        T[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    return T


def obstacle_from_dict(d: Mapping[str, Any], where: str = "obstacle") -> Obstacle:
    """An obstacle from a plain mapping (the MotionBenchMaker JSON layout).

    Keys: ``name``, ``type`` (one of :data:`OBSTACLE_TYPES`), ``position`` (3,) [m],
    optional ``quat_xyzw`` (4,) or ``pose`` (4x4), and by type: ``half_extents`` (3,)
    for a box, ``radius`` for a sphere, ``radius`` and ``length`` for a cylinder or
    capsule.

    Args:
        d: The mapping.
        where: Prefix for error messages (e.g. ``"problems.box[3].obstacles[2]"``).

    Raises:
        InputError: a missing or bad field; the message names it and, for a bad type,
            lists the valid types.
    """
    if not isinstance(d, Mapping):
        raise InputError(f"{where}: expected a mapping, got {type(d).__name__}")
    kind = d.get("type")
    if kind not in OBSTACLE_TYPES:
        raise InputError(
            f"{where}.type: {kind!r} is not an obstacle type; valid: {', '.join(OBSTACLE_TYPES)}"
        )
    name = _name(d.get("name"), f"{where}.name")
    if "pose" in d:
        pose = as_matrix4(d["pose"], f"{where}.pose")
    elif "position" in d:
        pose = pose_from_position_quat(d["position"], d.get("quat_xyzw"), where)
    else:
        raise InputError(f"{where}: missing position (or pose)")

    def need(key: str) -> Any:
        if key not in d:
            raise InputError(f"{where}.{key}: missing (required for a {kind})")
        return d[key]

    try:
        if kind == "box":
            return Box(name, pose, need("half_extents"))
        if kind == "sphere":
            return Sphere(name, pose, need("radius"))
        if kind == "cylinder":
            return Cylinder(name, pose, need("radius"), need("length"))
        return Capsule(name, pose, need("radius"), need("length"))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def mesh_box(name: str, vertices: npt.ArrayLike, pose: object) -> Box:
    """The bounding box of a mesh, in the mesh's frame: a conservative obstacle.

    Args:
        name: Obstacle name.
        vertices: (V, 3) mesh vertices in the mesh frame [m].
        pose: 4x4 pose (or SE3) of the mesh frame.
    """
    V = np.asarray(vertices, dtype=np.float64)
    if V.ndim != 2 or V.shape[1] != 3 or len(V) == 0 or not np.all(np.isfinite(V)):
        raise InputError(f"{name}.vertices: expected finite (V, 3) vertices, got shape {V.shape}")
    lo, hi = V.min(axis=0), V.max(axis=0)
    T_box = np.eye(4)
    T_box[:3, 3] = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, 1e-6)
    return Box(name, as_matrix4(pose, f"{name}.pose") @ T_box, half)


@dataclass(frozen=True, init=False)
class Attachment:
    """An object fixed to a link of the arm, e.g. a held part.

    Attributes:
        name: Unique name (distinct from the obstacles and the arm's links).
        link: The arm link it moves with.
        T_link_object: 4x4 pose of the object frame in the link frame, read-only.
        shapes: Its geometry: obstacles whose poses are ``T_object_shape``.
        touch_links: Links of the arm it may touch (the fingers that hold it).
    """

    name: str
    link: str
    T_link_object: NDArray[np.float64]
    shapes: tuple[Obstacle, ...]
    touch_links: frozenset[str] = frozenset()

    def __init__(
        self,
        name: str,
        link: str,
        T_link_object: object,
        shapes: Sequence[Obstacle],
        touch_links: Iterable[str] = frozenset(),
    ) -> None:
        object.__setattr__(self, "name", _name(name, "attachment.name"))
        object.__setattr__(self, "link", _name(link, f"{name}.link"))
        object.__setattr__(self, "T_link_object", _pose(T_link_object, f"{name}.T_link_object"))
        shapes = tuple(shapes)
        if not shapes:
            raise InputError(f"{self.name}.shapes: an attachment needs at least one shape")
        for i, s in enumerate(shapes):
            if not isinstance(s, (Box, Sphere, Cylinder, Capsule)):
                raise InputError(
                    f"{self.name}.shapes[{i}]: expected a Box, Sphere, Cylinder or Capsule"
                )
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "touch_links", frozenset(touch_links))


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class Scene:
    """Obstacles, attachments, padding and allowed contacts.

    Attributes:
        obstacles: World obstacles, unique names.
        attachments: Objects moved with arm links, unique names.
        padding: Distance [m] robot and attachments keep from obstacles (and from other
            links) in the fast model; 0 means touching is allowed. Keep it small (a
            few mm): MotionBenchMaker goals sit 1-2 cm from obstacles.
        allowed: Pairs of names (links, obstacles, attachments) never checked against
            each other, stored sorted.
    """

    obstacles: tuple[Obstacle, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    padding: float = 0.0
    allowed: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        obstacles = tuple(self.obstacles)
        attachments = tuple(self.attachments)
        for i, o in enumerate(obstacles):
            if not isinstance(o, (Box, Sphere, Cylinder, Capsule)):
                raise InputError(
                    f"obstacles[{i}]: expected a Box, Sphere, Cylinder or Capsule, "
                    f"got {type(o).__name__}"
                )
        for i, a in enumerate(attachments):
            if not isinstance(a, Attachment):
                raise InputError(
                    f"attachments[{i}]: expected an Attachment, got {type(a).__name__}"
                )
        seen: set[str] = set()
        for n in [o.name for o in obstacles] + [a.name for a in attachments]:
            if n in seen:
                raise InputError(f"scene: the name {n!r} is used twice")
            seen.add(n)
        pad = float(self.padding)
        if not (math.isfinite(pad) and pad >= 0):
            raise InputError(f"padding: expected a finite number >= 0 [m], got {self.padding!r}")
        allowed: set[tuple[str, str]] = set()
        for p in self.allowed:
            if not (isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)):
                raise InputError(f"allowed: expected pairs of names, got {p!r}")
            allowed.add(_pair(*p))
        object.__setattr__(self, "obstacles", obstacles)
        object.__setattr__(self, "attachments", attachments)
        object.__setattr__(self, "padding", pad)
        object.__setattr__(self, "allowed", frozenset(allowed))

    @classmethod
    def from_dicts(
        cls,
        obstacles: Iterable[Mapping[str, Any]],
        padding: float = 0.0,
        where: str = "obstacles",
    ) -> Scene:
        """A scene of obstacles given as mappings (see :func:`obstacle_from_dict`)."""
        return cls(
            tuple(obstacle_from_dict(d, f"{where}[{i}]") for i, d in enumerate(obstacles)),
            padding=padding,
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Obstacle names, then attachment names."""
        return tuple(o.name for o in self.obstacles) + tuple(a.name for a in self.attachments)

    def obstacle(self, name: str) -> Obstacle:
        """Obstacle ``name``; UnknownNameError lists the obstacles."""
        for o in self.obstacles:
            if o.name == name:
                return o
        raise UnknownNameError("obstacle", name, [o.name for o in self.obstacles])

    def attachment(self, name: str) -> Attachment:
        """Attachment ``name``; UnknownNameError lists the attachments."""
        for a in self.attachments:
            if a.name == name:
                return a
        raise UnknownNameError("attachment", name, [a.name for a in self.attachments])

    def is_allowed(self, a: str, b: str) -> bool:
        """Whether names ``a`` and ``b`` may touch."""
        return _pair(a, b) in self.allowed

    def with_obstacle(self, obstacle: Obstacle) -> Scene:
        """A copy with ``obstacle`` added."""
        return replace(self, obstacles=(*self.obstacles, obstacle))

    def with_obstacles(self, obstacles: Sequence[Obstacle]) -> Scene:
        """A copy with ``obstacles`` added."""
        return replace(self, obstacles=(*self.obstacles, *obstacles))

    def without_obstacle(self, name: str) -> Scene:
        """A copy without obstacle ``name``; UnknownNameError lists the obstacles."""
        self.obstacle(name)
        return replace(self, obstacles=tuple(o for o in self.obstacles if o.name != name))

    def with_attachment(self, attachment: Attachment) -> Scene:
        """A copy with ``attachment`` added."""
        return replace(self, attachments=(*self.attachments, attachment))

    def without_attachment(self, name: str) -> Scene:
        """A copy without attachment ``name``; UnknownNameError lists the attachments."""
        self.attachment(name)
        return replace(self, attachments=tuple(a for a in self.attachments if a.name != name))

    def with_padding(self, padding: float) -> Scene:
        """A copy with ``padding`` [m]."""
        return replace(self, padding=padding)

    def with_allowed(self, pairs: Iterable[tuple[str, str]]) -> Scene:
        """A copy in which each pair of names in ``pairs`` may also touch."""
        return replace(self, allowed=self.allowed | {_pair(a, b) for a, b in pairs})
