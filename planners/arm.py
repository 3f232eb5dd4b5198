"""Arms loaded from the project's URDF folders, with a tool on the flange.

An arm folder under ``urdf/`` holds ``<name>.urdf`` and ``arm.toml`` (base and flange
link, acceleration and jerk limits, named configurations); a tool folder holds
``<name>.urdf`` and ``tool.toml`` (mount and TCP link, finger joints). :func:`load_arm`
merges the tool into the arm's URDF at the flange, resolves every mesh path, and loads
the result into roboticstoolbox; the same merged text is what PyBullet loads in
``sim/``, so both see one model.
"""

from __future__ import annotations

import io
import logging
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from spatialmath import SE3

from planners.arrays import as_matrix4, as_vector, frozen
from planners.chain import KinematicChain
from planners.errors import InputError, ModelError, UnknownNameError
from planners.ik_kernel import fk_batch as kernel_fk_batch
from planners.ik_kernel import serial_chain
from planners.limits import JointLimits
from planners.urdf import model_dir, model_names, parse_urdf

__all__ = ["Arm", "Tool", "arm_names", "default_tool", "load_arm", "load_tool", "tool_names"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def arm_names() -> list[str]:
    """Model folders that describe an arm (hold an ``arm.toml``)."""
    return [n for n in model_names() if (model_dir(n) / "arm.toml").is_file()]


def tool_names() -> list[str]:
    """Model folders that describe a tool (hold a ``tool.toml``)."""
    return [n for n in model_names() if (model_dir(n) / "tool.toml").is_file()]


def default_tool(name: str) -> str | None:
    """The tool arm ``name`` usually carries (``default_tool`` in its ``arm.toml``), if any.

    Raises:
        UnknownNameError: no such arm; the message lists the valid ones.
        ModelError: the named tool is not a tool model.
    """
    if name not in arm_names():
        raise UnknownNameError("arm", name, arm_names())
    path = model_dir(name) / "arm.toml"
    tool = _read_toml(path).get("default_tool")
    if tool is not None and tool not in tool_names():
        raise ModelError(f"{path}:default_tool: {tool!r} is not a tool; expected one of "
                         f"{', '.join(tool_names())}")  # fmt: skip
    return tool


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path}: not valid TOML: {exc}") from exc


def _require(data: Mapping[str, Any], key: str, path: Path, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise ModelError(f"{path}:{key}: missing")
    if not isinstance(data[key], kind):
        raise ModelError(f"{path}:{key}: expected {getattr(kind, '__name__', kind)}")
    return data[key]


@dataclass(frozen=True)
class Tool:
    """A tool bolted to an arm's flange.

    Attributes:
        name: Model folder name.
        kind: ``"gripper"`` or ``"screwdriver"``.
        urdf: Path of the tool's URDF.
        mount_link: Root link, placed at the flange.
        tcp_link: Link whose frame is the tool centre point (+z: approach direction).
        finger_joints: Prismatic finger joints of a gripper (empty otherwise).
        open: Finger joint value when open [m].
        closed: Finger joint value when closed [m].
        spindle_joint: Continuous joint of a screwdriver's bit, or ``None``.
    """

    name: str
    kind: str
    urdf: Path
    mount_link: str
    tcp_link: str
    finger_joints: tuple[str, ...] = ()
    open: float = 0.0
    closed: float = 0.0
    spindle_joint: str | None = None


def load_tool(name: str) -> Tool:
    """Load tool ``name`` from its folder; UnknownNameError lists the tools."""
    if name not in tool_names():
        raise UnknownNameError("tool", name, tool_names())
    folder = model_dir(name)
    path = folder / "tool.toml"
    data = _read_toml(path)
    kind = _require(data, "kind", path, str)
    if kind not in ("gripper", "screwdriver"):
        raise ModelError(
            f"{path}:kind: {kind!r} is not a tool kind; expected gripper or screwdriver"
        )
    return Tool(
        name=name,
        kind=kind,
        urdf=folder / _require(data, "urdf", path, str),
        mount_link=_require(data, "mount_link", path, str),
        tcp_link=_require(data, "tcp_link", path, str),
        finger_joints=tuple(data.get("finger_joints", ())),
        open=float(data.get("open", 0.0)),
        closed=float(data.get("closed", 0.0)),
        spindle_joint=data.get("spindle_joint"),
    )


def _merge_tool(robot: ET.Element, flange: str, tool: Tool, prefix: str) -> None:
    """Append the tool's links and joints to the arm's URDF, fixed at the flange."""
    tool_root = parse_urdf(tool.urdf)
    links = {el.get("name") for el in robot.iter("link")}
    materials = {el.get("name") for el in robot.findall("material")}
    for child in tool_root:
        if child.tag == "material" and child.get("name") in materials:
            continue
        if child.tag == "link" and child.get("name") in links:
            raise ModelError(
                f"{tool.urdf}: link {child.get('name')!r} clashes with a link of the arm"
            )
        robot.append(child)
    mount = ET.SubElement(robot, "joint", name=f"{prefix}_tool_mount", type="fixed")
    ET.SubElement(mount, "parent", link=flange)
    ET.SubElement(mount, "child", link=tool.mount_link)
    ET.SubElement(mount, "origin", xyz="0 0 0", rpy="0 0 0")


def _load_rtb(text: str, source: str) -> Any:
    import roboticstoolbox as rtb
    from roboticstoolbox.models.URDF.URDFRobot import URDF_file

    try:
        elinks, name, *_ = URDF_file(io.StringIO(text))
    except Exception as exc:  # rtb raises several kinds for a bad description
        raise ModelError(f"{source}: roboticstoolbox cannot load it: {exc}") from exc
    return rtb.Robot(elinks, name=name)


@dataclass(frozen=True, eq=False)
class Arm:
    """An arm with its tool: kinematics, limits and named configurations.

    Build one with :func:`load_arm`. Poses are world poses: ``base`` places the arm's
    base link in the world. Forward kinematics is exact to the URDF.

    Attributes:
        name: Model folder name.
        base_link: Root link of the chain.
        flange_link: Last link of the arm proper; the tool mounts here.
        tcp_link: Frame the arm's pose functions report (the tool's TCP, or the flange).
        limits: Limits of the actuated joints, in chain order.
        configurations: Named configurations (``home``, ``ready`` ...), each (dof,).
        tool: The mounted tool, or ``None``.
        base: 4x4 pose of the base link in the world (read-only).
        urdf_text: Merged, resolved URDF that PyBullet and roboticstoolbox both load.
        robot: The roboticstoolbox ``Robot`` of the merged URDF.
        chain: Vectorised forward kinematics of every link.
        finger_opening: Finger joint value used for kinematics and collision [m].
    """

    name: str
    base_link: str
    flange_link: str
    tcp_link: str
    limits: JointLimits
    configurations: Mapping[str, NDArray[np.float64]]
    tool: Tool | None
    base: NDArray[np.float64]
    urdf_text: str = field(repr=False)
    robot: Any = field(repr=False)
    chain: KinematicChain = field(repr=False)
    finger_opening: float = 0.0
    revolute: NDArray[np.bool_] = field(repr=False, default_factory=lambda: np.zeros(0, bool))
    _ets: Any = field(repr=False, default=None)

    @property
    def dof(self) -> int:
        """Number of actuated joints."""
        return self.limits.dof

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Actuated joint names, base to flange."""
        return self.limits.names

    @property
    def ets(self) -> Any:
        """roboticstoolbox ETS from the base link to the TCP (for its C++ solvers)."""
        return self._ets

    def configuration(self, name: str) -> NDArray[np.float64]:
        """Named configuration ``name`` (dof,); UnknownNameError lists the names."""
        try:
            return self.configurations[name]
        except KeyError:
            raise UnknownNameError("configuration", name, self.configurations) from None

    def check_q(self, q: npt.ArrayLike, field: str = "q") -> NDArray[np.float64]:
        """``q`` as a finite (dof,) vector; InputError naming ``field`` otherwise."""
        return as_vector(q, self.dof, field)

    def fk(self, q: npt.ArrayLike) -> SE3:
        """World pose of the TCP, ``T_world_tcp``, for one configuration (dof,)."""
        q = self.check_q(q)
        return SE3(self.base @ self._ets.eval(q), check=False)

    def fk_batch(self, q: npt.ArrayLike) -> NDArray[np.float64]:
        """World poses of the TCP for a batch (N, dof): (N, 4, 4). Compiled; ~1 us each."""
        Q = np.atleast_2d(np.asarray(q, dtype=np.float64))
        if Q.ndim != 2 or Q.shape[1] != self.dof:
            raise InputError(
                f"q: expected shape (N, {self.dof}) or ({self.dof},), got {np.shape(q)}"
            )
        if not np.isfinite(Q).all():
            raise InputError("q: every joint value must be finite")
        consts, axis, rot, sign = self._serial
        return self.base @ kernel_fk_batch(consts, axis, rot, sign, np.ascontiguousarray(Q))

    @property
    def _serial(self) -> tuple:
        """The base-to-TCP chain compiled for the numba kernels (cached per model)."""
        return cached_per_object(_SERIAL, self._ets, serial_chain)

    def link_poses(
        self, q: npt.ArrayLike, links: Sequence[str] | None = None
    ) -> NDArray[np.float64]:
        """World poses of links for (N, dof) configurations: (N, L, 4, 4).

        Args:
            q: (N, dof) or (dof,) configurations.
            links: Link names (default: every link of the merged model, ``chain.names``).
        """
        return self.chain.poses(q, links, self.base)

    def jacobian(self, q: npt.ArrayLike) -> NDArray[np.float64]:
        """Geometric Jacobian of the TCP in the world frame, (6, dof): rows vx vy vz wx wy wz."""
        q = self.check_q(q)
        J = self._ets.jacob0(q)
        R = self.base[:3, :3]
        return np.vstack((R @ J[:3], R @ J[3:]))

    def with_base(self, T_world_base: object) -> Arm:
        """A copy of this arm placed at ``T_world_base`` (SE3 or 4x4)."""
        base = frozen(as_matrix4(T_world_base, "base"))
        return Arm(
            self.name, self.base_link, self.flange_link, self.tcp_link, self.limits,
            self.configurations, self.tool, base, self.urdf_text, self.robot, self.chain,
            self.finger_opening, self.revolute, self._ets,
        )  # fmt: skip


def _link_of(joint: ET.Element, tag: str) -> str:
    """The link named by a joint's <parent> or <child>; ModelError when absent."""
    el = joint.find(tag)
    link = el.get("link") if el is not None else None
    if link is None:
        raise ModelError(f"joint {joint.get('name')!r} has no <{tag} link=...>")
    return link


_SERIAL: dict[int, tuple[Any, Any]] = {}
_CACHE_SIZE = 64


def cached_per_object(cache: dict[int, tuple[Any, Any]], obj: Any, make: Any) -> Any:
    """``make(obj)``, cached in ``cache`` while ``obj`` is the same object.

    Keyed by ``id(obj)``, each entry keeps ``obj`` alive and is used only for that very
    object (an id is reused once its object is freed: a bare id key could hand one
    model's arrays to another). The oldest entries go beyond 64 models.
    """
    entry = cache.get(id(obj))
    if entry is None or entry[0] is not obj:
        entry = cache[id(obj)] = (obj, make(obj))
        while len(cache) > _CACHE_SIZE:
            del cache[next(iter(cache))]
    return entry[1]


def _movable_chain(robot: ET.Element, base: str, tip: str, path: Path) -> list[ET.Element]:
    """URDF joints on the path from ``base`` to ``tip``, base first."""
    by_child = {_link_of(j, "child"): j for j in robot.iter("joint")}
    links = {el.get("name") for el in robot.iter("link")}
    for name, role in ((base, "base_link"), (tip, "flange_link")):
        if name not in links:
            raise UnknownNameError(f"link for {path}:{role}", name, {n for n in links if n})
    chain: list[ET.Element] = []
    link = tip
    while link != base:
        joint = by_child.get(link)
        if joint is None:
            raise ModelError(f"{path}: no chain of joints from {base!r} to {tip!r}")
        chain.append(joint)
        link = _link_of(joint, "parent")
    return chain[::-1]


def load_arm(
    name: str,
    tool: str | None = None,
    base: object = None,
    finger_opening: float | None = None,
) -> Arm:
    """Load arm ``name`` from ``urdf/<name>/``, optionally with ``tool`` on its flange.

    Args:
        name: Arm model folder (see :func:`arm_names`).
        tool: Tool model folder (see :func:`tool_names`), or ``None``.
        base: Pose of the base link in the world (SE3 or 4x4); identity by default.
        finger_opening: Finger joint value a gripper is held at for kinematics and
            collision [m]; the tool's ``open`` value by default.

    Raises:
        UnknownNameError: no such arm or tool; the message lists the valid ones.
        ModelError: the model's files are missing or malformed.
    """
    if name not in arm_names():
        raise UnknownNameError("arm", name, arm_names())
    folder = model_dir(name)
    meta_path = folder / "arm.toml"
    meta = _read_toml(meta_path)
    urdf_path = folder / _require(meta, "urdf", meta_path, str)
    tree = parse_urdf(urdf_path)  # the <robot> element
    base_link = _require(meta, "base_link", meta_path, str)
    flange_link = _require(meta, "flange_link", meta_path, str)
    joints = [j for j in _movable_chain(tree, base_link, flange_link, meta_path)
              if j.get("type") in ("revolute", "prismatic", "continuous")]  # fmt: skip
    joint_names = tuple(j.get("name") or "" for j in joints)
    dof = len(joint_names)
    lower, upper, velocity, effort = [], [], [], []
    for j in joints:
        lim = j.find("limit")
        if lim is None:
            raise ModelError(f"{urdf_path}: joint {j.get('name')!r} has no <limit>")
        continuous = j.get("type") == "continuous"
        lower.append(-2 * np.pi if continuous else float(lim.get("lower", "nan")))
        upper.append(2 * np.pi if continuous else float(lim.get("upper", "nan")))
        velocity.append(float(lim.get("velocity", "nan")))
        effort.append(float(lim.get("effort", "nan")))
    try:
        limits = JointLimits(
            joint_names, np.array(lower), np.array(upper), np.array(velocity),
            np.array(_require(meta, "acceleration", meta_path, list), dtype=float),
            np.array(_require(meta, "jerk", meta_path, list), dtype=float),
            np.array(effort),
        )  # fmt: skip
    except InputError as exc:
        raise ModelError(f"{name}: {exc}") from None
    configurations: dict[str, NDArray[np.float64]] = {}
    for cname, values in dict(meta.get("configurations", {})).items():
        try:
            q = as_vector(values, dof, f"{meta_path}:configurations.{cname}")
        except InputError as exc:
            raise ModelError(str(exc)) from None
        if not limits.within(q):
            raise ModelError(f"{meta_path}:configurations.{cname}: outside the joint limits")
        configurations[cname] = frozen(q)

    tool_model = load_tool(tool) if tool is not None else None
    tcp_link = flange_link
    opening = 0.0
    if tool_model is not None:
        _merge_tool(tree, flange_link, tool_model, name)
        tcp_link = tool_model.tcp_link
        opening = tool_model.open if finger_opening is None else float(finger_opening)
    text = ET.tostring(tree, encoding="unicode")
    robot = _load_rtb(text, str(urdf_path))
    rtb_joints = {link.name: link.jindex for link in robot.links if link.isjoint}
    child_of = {j.get("name"): _link_of(j, "child") for j in tree.iter("joint")}
    columns = {rtb_joints[child_of[jn]]: col for col, jn in enumerate(joint_names)}
    fixed = {}
    if tool_model is not None:
        for fj in tool_model.finger_joints:
            fixed[rtb_joints[child_of[fj]]] = opening
    chain = KinematicChain(robot, columns, fixed)
    chain.index(tcp_link)
    ets = robot.ets(start=base_link, end=tcp_link)
    if ets.n != dof:
        raise ModelError(f"{name}: the chain to {tcp_link!r} has {ets.n} joints, expected {dof}")
    T_base = np.eye(4) if base is None else as_matrix4(base, "base")
    return Arm(
        name=name, base_link=base_link, flange_link=flange_link, tcp_link=tcp_link, limits=limits,
        configurations=configurations, tool=tool_model, base=frozen(T_base), urdf_text=text,
        robot=robot, chain=chain, finger_opening=opening,
        revolute=frozen([j.get("type") != "prismatic" for j in joints], bool), _ets=ets,
    )  # fmt: skip
