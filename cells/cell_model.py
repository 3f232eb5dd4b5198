"""A loaded cell: frozen values keyed by names, SI units, world poses as 4x4 arrays.

:func:`cells.cell_file.load_cell` builds a :class:`Cell` from a TOML file; nothing here
reads files. Every pose is a read-only 4x4 array in the cell's world frame (the frame
the robots' bases, fixtures and parts are placed in), named ``T_world_<thing>`` in
docstrings. Tool poses follow the tools' convention: the TCP's +z is the approach
direction (into the part, along the screw).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cells.tightening import ReactionPolicy, TighteningSpec
from planners.arm import Arm
from planners.arrays import frozen
from planners.errors import InputError, UnknownNameError
from sim.spindle import ScrewJoint
from sim.world import BodySpec, WorldSpec

__all__ = [
    "Cell",
    "Fixture",
    "Hole",
    "Part",
    "Robot",
    "Screw",
    "ScrewFeed",
    "ScrewOrder",
    "SegmentKind",
    "SpeedLimits",
    "axis_pose",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class ScrewOrder(Enum):
    """How a cell orders its screws."""

    SHORTEST = "shortest"  # the order with the shortest estimated cycle
    FILE = "file"  # the file's order (a pattern, e.g. crosswise to keep a part flat)


def axis_pose(
    position: NDArray[np.float64], z: NDArray[np.float64], roll: float = 0.0
) -> NDArray[np.float64]:
    """A 4x4 pose at ``position`` whose +z is the unit vector ``z``.

    The x axis is the world x axis projected onto the plane normal to ``z`` (world y
    when ``z`` is within about 25 deg of world x), then turned by ``roll`` [rad] about z:
    one deterministic choice for a symmetric tool such as a screwdriver bit.
    """
    z = np.asarray(z, dtype=np.float64)
    z = z / np.linalg.norm(z)
    ref = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = ref - (ref @ z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = math.cos(roll), math.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, position
    return T


def _back_off(T: NDArray[np.float64], distance: float) -> NDArray[np.float64]:
    """``T`` moved ``distance`` [m] against its own +z (away from what it approaches)."""
    out = np.array(T, dtype=np.float64)
    out[:3, 3] -= distance * out[:3, 2]
    return out


def _get(mapping: Mapping[str, object], kind: str, name: str) -> object:
    try:
        return mapping[name]
    except KeyError:
        raise UnknownNameError(kind, name, mapping) from None


@dataclass(frozen=True, eq=False)
class Robot:
    """An arm of the cell with its tool, placed at its base pose.

    Attributes:
        name: Name in the cell (and in the world).
        arm: The loaded arm: ``arm.base`` is ``T_world_base``, ``arm.tool`` the tool,
            ``arm.configurations`` the model's named configurations merged with the
            cell's overrides.
    """

    name: str
    arm: Arm

    @property
    def model(self) -> str:
        """Arm model folder."""
        return self.arm.name

    @property
    def tool(self) -> str | None:
        """Tool model folder, or ``None``."""
        return self.arm.tool.name if self.arm.tool is not None else None


@dataclass(frozen=True)
class Fixture:
    """A static (or held) body loaded from a model folder, with its named sites.

    Attributes:
        name: Name in the cell.
        model: Model folder under ``urdf/``.
        pose: ``T_world_fixture`` (4, 4), read-only.
        fixed: True when bolted to the world.
        sites: World pose (4, 4) of every site its ``part.toml`` declares (pockets,
            slots, holes, pickup, ``*_pose`` keys), by site name.
        site_parts: Part model each pocket or slot site is for, by site name.
    """

    name: str
    model: str
    pose: NDArray[np.float64]
    fixed: bool = True
    sites: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)
    site_parts: Mapping[str, str] = field(default_factory=dict)

    def site(self, name: str) -> NDArray[np.float64]:
        """``T_world_site`` of site ``name``; UnknownNameError lists the sites."""
        return _get(self.sites, f"site of {self.name}", name)  # type: ignore[return-value]


@dataclass(frozen=True)
class Screw:
    """A screw model (from ``urdf/<model>/part.toml``).

    Attributes:
        model: Model folder, e.g. ``screw_m1_4``.
        thread: Thread designation, e.g. ``M1.4``.
        pitch: Thread pitch [m].
        length: Thread length under the head [m].
        head_height: Head height [m]; the model's origin is the head's top centre.
    """

    model: str
    thread: str
    pitch: float
    length: float
    head_height: float

    def joint(self) -> ScrewJoint:
        """The spindle model's physics of this screw (default friction and stiffness)."""
        return ScrewJoint(pitch=self.pitch, length=self.length)

    @property
    def seat_angle(self) -> float:
        """Nominal run-down angle until the head seats [deg]: ``360 * length / pitch``."""
        return 360.0 * self.length / self.pitch


@dataclass(frozen=True)
class ScrewFeed:
    """Where the screwdriver picks screws: a screw presenter's nest.

    Attributes:
        name: The presenter fixture's name.
        pose: ``T_world_screw`` (4, 4) of a presented screw: origin at the head top,
            +z along the screw axis out of the nest.
        screw: The screw it presents.
    """

    name: str
    pose: NDArray[np.float64]
    screw: Screw

    def tcp_pose(self, offset: float = 0.0, roll: float = 0.0) -> NDArray[np.float64]:
        """``T_world_tcp`` of the bit: tip on the head (``offset`` 0) or ``offset`` [m] above.

        The TCP's +z points into the screw (against the screw axis).
        """
        z = self.pose[:3, 2]
        return axis_pose(self.pose[:3, 3] + offset * z, -z, roll)


@dataclass(frozen=True)
class Part:
    """A part the cell moves.

    Attributes:
        name: Name in the cell (and in the world).
        model: Model folder under ``urdf/``.
        pose: ``T_world_part`` where it waits to be picked (4, 4).
        target: ``T_world_part`` where it must end up (4, 4).
        grasp: ``T_part_tcp`` of the gripper's TCP when holding it (4, 4).
        tolerance_position: Largest accepted placement position error [m].
        tolerance_rotation: Largest accepted placement rotation error [rad].
    """

    name: str
    model: str
    pose: NDArray[np.float64]
    target: NDArray[np.float64]
    grasp: NDArray[np.float64]
    tolerance_position: float
    tolerance_rotation: float

    def pick_tcp(self, offset: float = 0.0) -> NDArray[np.float64]:
        """``T_world_tcp`` to grasp the part, backed off ``offset`` [m] along the approach."""
        return _back_off(self.pose @ self.grasp, offset)

    def place_tcp(self, offset: float = 0.0) -> NDArray[np.float64]:
        """``T_world_tcp`` that puts the part at its target, backed off ``offset`` [m]."""
        return _back_off(self.target @ self.grasp, offset)

    def placement_error(self, T_world_part: NDArray[np.float64]) -> tuple[float, float]:
        """Position [m] and rotation [rad] error of a placed pose against the target."""
        T = np.asarray(T_world_part, dtype=np.float64)
        dp = float(np.linalg.norm(T[:3, 3] - self.target[:3, 3]))
        c = (np.trace(T[:3, :3].T @ self.target[:3, :3]) - 1.0) / 2.0
        return dp, float(np.arccos(np.clip(c, -1.0, 1.0)))

    def placed_within_tolerance(self, T_world_part: NDArray[np.float64]) -> bool:
        """True when a placed pose is within the position and rotation tolerance."""
        dp, dr = self.placement_error(T_world_part)
        return dp <= self.tolerance_position and dr <= self.tolerance_rotation


@dataclass(frozen=True)
class Hole:
    """A screw hole, in the world frame.

    Attributes:
        name: Name in the cell; holes are driven in file order.
        position: (3,) top centre of the hole (where the screw head seats) [m].
        axis: (3,) unit vector pointing out of the hole; the screw goes in along -axis.
        screw: Thread designation (``M1.4``); a feed of the cell presents it.
        tightening: Target torque, angle window and thresholds.
    """

    name: str
    position: NDArray[np.float64]
    axis: NDArray[np.float64]
    screw: str
    tightening: TighteningSpec

    def __post_init__(self) -> None:
        p = frozen(self.position)
        a = np.asarray(self.axis, dtype=np.float64)
        n = float(np.linalg.norm(a))
        if p.shape != (3,) or a.shape != (3,) or not np.isfinite(n) or n < 1e-9:
            raise InputError(f"hole {self.name}: expected a (3,) position and non-zero (3,) axis")
        object.__setattr__(self, "position", p)
        object.__setattr__(self, "axis", frozen(a / n))

    def tcp_pose(self, offset: float = 0.0, roll: float = 0.0) -> NDArray[np.float64]:
        """``T_world_tcp`` of the bit tip ``offset`` [m] out along the axis, +z into the hole.

        ``offset`` = the screw's head height is the bit on a seated screw; add the
        screw's length for the start of the run-down, more for the approach.
        ``roll`` [rad] turns the tool about the axis (the bit is symmetric).
        """
        return axis_pose(self.position + offset * self.axis, -self.axis, roll)


class SegmentKind(Enum):
    """Kinds of motion segments that have their own TCP speed cap."""

    TRANSFER = "transfer"
    APPROACH = "approach"
    INSERT = "insert"
    ENGAGE = "engage"
    RETRACT = "retract"


@dataclass(frozen=True)
class SpeedLimits:
    """TCP speed caps per segment kind [m/s].

    Attributes:
        caps: Cap by kind; a kind without a cap is not used by the cell.
    """

    caps: Mapping[SegmentKind, float]

    def cap(self, kind: SegmentKind) -> float:
        """The cap of ``kind`` [m/s]; UnknownNameError lists the kinds the cell caps."""
        try:
            return self.caps[kind]
        except KeyError:
            raise UnknownNameError(
                "segment kind", kind.value, [k.value for k in self.caps]
            ) from None


@dataclass(frozen=True, eq=False)
class Cell:
    """A validated cell.

    Attributes:
        path: The cell file it was loaded from.
        name: Cell name.
        takt: Time the cell has per product [s].
        robots: Robots by name.
        fixtures: Fixtures by name (trays, presenters, nests, held mid-frames).
        parts: Parts by name, in file order (the pick-and-place order).
        holes: Holes by name, in file order (the screw order).
        screws: Screw models by thread designation.
        feeds: Screw feeds (presenters) by fixture name.
        speeds: TCP speed caps per segment kind.
        reaction: What to do after each NOK tightening reason.
        screw_order: The order of the holes: the shortest cycle, or the file's.
        validation_workers: Processes that run the physics replays of a cycle's
            validation (1: in the controller's own process, one after the other).
    """

    path: Path
    name: str
    takt: float
    robots: Mapping[str, Robot]
    fixtures: Mapping[str, Fixture]
    parts: Mapping[str, Part]
    holes: Mapping[str, Hole]
    screws: Mapping[str, Screw]
    feeds: Mapping[str, ScrewFeed]
    speeds: SpeedLimits
    reaction: ReactionPolicy
    screw_order: ScrewOrder = ScrewOrder.SHORTEST
    validation_workers: int = 1

    def robot(self, name: str) -> Robot:
        """Robot ``name``; UnknownNameError lists the robots."""
        return _get(self.robots, "robot", name)  # type: ignore[return-value]

    def fixture(self, name: str) -> Fixture:
        """Fixture ``name``; UnknownNameError lists the fixtures."""
        return _get(self.fixtures, "fixture", name)  # type: ignore[return-value]

    def part(self, name: str) -> Part:
        """Part ``name``; UnknownNameError lists the parts."""
        return _get(self.parts, "part", name)  # type: ignore[return-value]

    def hole(self, name: str) -> Hole:
        """Hole ``name``; UnknownNameError lists the holes."""
        return _get(self.holes, "hole", name)  # type: ignore[return-value]

    def feed_for(self, thread: str) -> ScrewFeed:
        """The first feed presenting screws of ``thread``; UnknownNameError lists threads."""
        for feed in self.feeds.values():
            if feed.screw.thread == thread:
                return feed
        raise UnknownNameError("screw thread", thread, self.screws)

    def world_spec(self, gravity: float = -9.81, timestep: float = 1e-3) -> WorldSpec:
        """A :class:`sim.world.WorldSpec`: the robots, fixtures and parts (at their start)."""
        bodies = [BodySpec(f.name, f.model, f.pose, f.fixed) for f in self.fixtures.values()]
        bodies += [BodySpec(p.name, p.model, p.pose, fixed=False) for p in self.parts.values()]
        return WorldSpec(
            arms={name: r.arm for name, r in self.robots.items()},
            bodies=tuple(bodies),
            gravity=gravity,
            timestep=timestep,
        )
