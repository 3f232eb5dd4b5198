"""Cell files: TOML validated into a frozen :class:`cells.cell_model.Cell`.

Every field is checked where it enters: type, unit range, finiteness, unknown keys
(typos), unique names and references (models, frames, sites, screws). A bad file raises
one :class:`CellFileError` whose message reads ``file:key.path: what is wrong, what is
expected``; nothing is returned half-loaded. The format is described in
``docs/cell_file.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from cells.cell_model import (
    Cell,
    Fixture,
    Hole,
    Part,
    Robot,
    Screw,
    ScrewFeed,
    ScrewOrder,
    SegmentKind,
    SpeedLimits,
    axis_pose,
)
from cells.cell_toml import CellFileError, TomlTable, kind_of
from cells.tightening import Reaction, ReactionPolicy, Reason, TighteningSpec
from planners.arm import arm_names, load_arm, tool_names
from planners.arrays import as_vector, frozen
from planners.errors import InputError, RobotCellError
from planners.urdf import model_dir, model_names

__all__ = ["CellFileError", "load_cell", "part_model_names"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

T = TypeVar("T")
_MAX_TORQUE = 5.0  # N m: far above any M1.2-M1.6 screw; a larger value is a unit mistake
_MAX_SPEED = 5.0  # m/s
_MAX_DISTANCE = 10.0  # m: any coordinate in a cell
_MAX_WORKERS = 64  # validation worker processes: far above any machine this runs on


def part_model_names() -> list[str]:
    """Model folders that describe a part or fixture (hold a ``part.toml``)."""
    return [n for n in model_names() if (model_dir(n) / "part.toml").is_file()]


# ------------------------------------------------------------------------------ poses
def _rpy(rpy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rotation Rz(yaw) Ry(pitch) Rx(roll) (URDF's fixed-axis roll, pitch, yaw)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])  # fmt: skip


def _quat(t: TomlTable, key: str) -> NDArray[np.float64]:
    q = t.vector(key, 4, "x, y, z, w", bound=1e6)
    n = float(np.linalg.norm(q))
    if n < 1e-9:
        raise t.fail(key, "zero quaternion, expected a unit quaternion x, y, z, w")
    if abs(n - 1.0) > 1e-3:
        raise t.fail(key, f"norm {n:.6g}, expected a unit quaternion x, y, z, w")
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def _pose(
    parent: TomlTable, key: str, frames: Mapping[str, NDArray[np.float64]], required: bool = True
) -> NDArray[np.float64] | None:
    """A pose table ``{frame?, xyz?, rpy? | quat?}`` as a world 4x4 (``frame`` first)."""
    t = parent.table(key, required)
    if t is None:
        return None
    T = np.eye(4)
    if t.has("xyz"):
        T[:3, 3] = t.vector("xyz", 3, "m", bound=_MAX_DISTANCE)
    if t.has("rpy") and t.has("quat"):
        raise t.fail("quat", "given together with rpy, expected one of rpy or quat")
    if t.has("rpy"):
        T[:3, :3] = _rpy(t.vector("rpy", 3, "rad", bound=4 * math.pi))
    elif t.has("quat"):
        T[:3, :3] = _quat(t, "quat")
    base = np.eye(4)
    if t.has("frame"):
        name = t.string("frame")
        if name not in frames:
            valid = ", ".join(sorted(frames)) or "(none)"
            raise t.fail("frame", f"unknown frame {name!r}, expected one of: {valid}")
        base = frames[name]
    elif not t.has("xyz"):
        raise t.fail("xyz", "missing, expected an array of 3 numbers [m] (or a frame)")
    t.finish()
    return frozen(base @ T)


# ------------------------------------------------------------------------------ models
def _model_data(t: TomlTable, key: str, valid: list[str], what: str) -> tuple[str, dict[str, Any]]:
    """A model name that must be in ``valid``, and its ``part.toml`` (or empty)."""
    name = t.string(key)
    if name not in valid:
        raise t.fail(key, f"unknown {what} {name!r}, expected one of: {', '.join(sorted(valid))}")
    path = model_dir(name) / "part.toml"
    if not path.is_file():
        return name, {}
    try:
        with path.open("rb") as f:
            return name, tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise t.fail(key, f"model {name!r}: {path} is not valid TOML ({exc})") from None


def _model_vector(data: Mapping[str, Any], key: str, n: int, where: str) -> NDArray[np.float64]:
    try:
        return as_vector(data[key], n, where)
    except (KeyError, InputError) as exc:
        raise InputError(f"{where}: expected {n} numbers ({exc})") from None


def _sites(
    model: str, data: Mapping[str, Any], T_world: NDArray[np.float64]
) -> tuple[dict[str, NDArray[np.float64]], dict[str, str], dict[str, tuple[Any, ...]]]:
    """World poses of a model's sites, the part each pocket/slot takes, and its holes.

    Sites: every entry of ``[[pockets]]``, ``[[slots]]`` and ``[[holes]]`` by name
    (position, optional ``yaw`` [rad] or ``axis``), ``pickup`` (with ``axis``), and
    every ``<name>_pose`` position as site ``<name>``.
    """
    sites: dict[str, NDArray[np.float64]] = {}
    parts: dict[str, str] = {}
    holes: dict[str, tuple[Any, ...]] = {}

    def add(name: str, local: NDArray[np.float64]) -> None:
        if name in sites:
            raise InputError(f"{model}/part.toml: site {name!r} is declared twice")
        sites[name] = frozen(T_world @ local)

    for group in ("pockets", "slots", "holes"):
        for i, entry in enumerate(data.get(group, [])):
            where = f"{model}/part.toml:{group}[{i}]"
            name = str(entry.get("name", ""))
            p = _model_vector(entry, "position", 3, f"{where}.position")
            if "axis" in entry:
                local = axis_pose(p, _model_vector(entry, "axis", 3, f"{where}.axis"))
            else:
                local = np.eye(4)
                local[:3, :3] = _rpy(np.array([0.0, 0.0, float(entry.get("yaw", 0.0))]))
                local[:3, 3] = p
            add(name, local)
            if "part" in entry:
                parts[name] = str(entry["part"])
            if group == "holes":
                axis = np.asarray(entry.get("axis", [0.0, 0.0, 1.0]), dtype=np.float64)
                holes[name] = (T_world[:3, :3] @ p + T_world[:3, 3], T_world[:3, :3] @ axis,
                               str(entry.get("screw", "")))  # fmt: skip
    if "pickup" in data:
        p = _model_vector(data, "pickup", 3, f"{model}/part.toml:pickup")
        axis = _model_vector(data, "axis", 3, f"{model}/part.toml:axis") if "axis" in data else (
            np.array([0.0, 0.0, 1.0]))  # fmt: skip
        add("pickup", axis_pose(p, axis))
    for key, value in data.items():
        if key.endswith("_pose") and isinstance(value, list) and len(value) == 3:
            local = np.eye(4)
            local[:3, 3] = _model_vector(data, key, 3, f"{model}/part.toml:{key}")
            add(key.removesuffix("_pose"), local)
    return sites, parts, holes


def _screw(t: TomlTable, key: str, model: str) -> Screw:
    if model not in part_model_names():
        raise t.fail(key, f"presents unknown screw model {model!r}, expected one of: "
                     f"{', '.join(part_model_names())}")  # fmt: skip
    with (model_dir(model) / "part.toml").open("rb") as f:
        data = tomllib.load(f)
    try:
        return Screw(
            model=model,
            thread=str(data["screw"]),
            pitch=float(data["pitch"]),
            length=float(data["length"]),
            head_height=float(data.get("head_height", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise t.fail(key, f"screw model {model!r} lacks screw/pitch/length ({exc})") from None


# ------------------------------------------------------------------------------ sections
def _robot(t: TomlTable) -> Robot:
    name = t.string("name")
    arm_name = t.string("arm")
    if arm_name not in arm_names():
        raise t.fail("arm", f"unknown arm model {arm_name!r}, expected one of: "
                     f"{', '.join(arm_names())}")  # fmt: skip
    tool = t.string("tool", default=None)
    if tool is not None and tool not in tool_names():
        raise t.fail("tool", f"unknown tool model {tool!r}, expected one of: "
                     f"{', '.join(tool_names())}")  # fmt: skip
    base = _pose(t, "base", {})
    try:
        arm = load_arm(arm_name, tool, base)
    except RobotCellError as exc:
        raise t.fail("arm", f"cannot load {arm_name!r} with tool {tool!r}: {exc}") from None
    configurations = dict(arm.configurations)
    ct = t.table("configurations", required=False)
    if ct is not None:
        for cname in ct.data:
            v = ct.raw(cname, f"an array of {arm.dof} joint values [rad or m]")
            if not isinstance(v, list) or len(v) != arm.dof:
                raise ct.fail(cname, f"got {kind_of(v)} {v!r}, expected an array of {arm.dof} "
                              f"joint values for {', '.join(arm.joint_names)}")  # fmt: skip
            q = np.array([ct.check_number(f"{cname}[{i}]", x, "rad", -1e3, 1e3)
                          for i, x in enumerate(v)])  # fmt: skip
            if not arm.limits.within(q):
                raise ct.fail(cname, "outside the joint limits, expected "
                              f"[{', '.join(f'{a:.4g}..{b:.4g}' for a, b in zip(arm.limits.lower, arm.limits.upper, strict=True))}]")  # fmt: skip  # noqa: E501
            configurations[cname] = frozen(q)
        ct.finish()
    t.finish()
    return Robot(name, dataclasses.replace(arm, configurations=configurations))


_TIGHTENING_KEYS: dict[str, tuple[str, str, float]] = {
    # cell key: (TighteningSpec field, unit, upper bound)
    "target_torque": ("target_torque", "N m", _MAX_TORQUE),
    "torque_tolerance": ("torque_tolerance", "N m", _MAX_TORQUE),
    "seating_torque": ("seating_torque", "N m", _MAX_TORQUE),
    "max_torque": ("max_torque", "N m", _MAX_TORQUE),
    "min_rundown_torque": ("min_rundown_torque", "N m", _MAX_TORQUE),
    "max_rundown_torque": ("max_rundown_torque", "N m", _MAX_TORQUE),
    "spike_torque": ("spike_torque", "N m", _MAX_TORQUE),
    "overrun_deg": ("overrun", "deg", 36_000.0),
}


def _tightening_values(t: TomlTable, required: bool) -> dict[str, float]:
    """TighteningSpec fields given in table ``t`` (target and window required if asked)."""
    out: dict[str, float] = {}
    for key, (fname, unit, hi) in _TIGHTENING_KEYS.items():
        if t.has(key) or (required and key == "target_torque"):
            out[fname] = t.number(key, unit, 0.0, hi, lo_open=True)
    if t.has("angle_window_deg") or required:
        lo, hi = t.vector("angle_window_deg", 2, "deg", bound=36_000.0)
        if not 0 < lo < hi:
            raise t.fail("angle_window_deg", f"got [{lo:g}, {hi:g}], expected [min, max] "
                         "with 0 < min < max [deg]")  # fmt: skip
        out["angle_min"], out["angle_max"] = float(lo), float(hi)
    return out


def _tightening_spec(t: TomlTable, values: dict[str, float], screw: Screw) -> TighteningSpec:
    try:
        spec = TighteningSpec(**values)
    except InputError as exc:
        raise t.fail(None, f"{exc}, expected consistent tightening limits") from None
    if not spec.angle_min <= screw.seat_angle <= spec.angle_max:
        raise t.fail("angle_window_deg", f"[{spec.angle_min:g}, {spec.angle_max:g}] deg does "
                     f"not contain the nominal seat angle {screw.seat_angle:g} deg of "
                     f"{screw.thread} ({screw.model}: 360 * length / pitch), expected a window "
                     "around it")  # fmt: skip
    return spec


def _reaction(t: TomlTable | None) -> ReactionPolicy:
    if t is None:
        return ReactionPolicy()
    names: dict[str, Reaction] = {r.value: r for r in Reaction if r is not Reaction.CONTINUE}

    def reaction(key: str, allowed: dict[str, Reaction], default: Reaction) -> Reaction:
        v = t.raw(key, "a reaction", default.value)
        if v not in allowed:
            raise t.fail(key, f"got {v!r}, expected one of: {', '.join(allowed)}")
        return allowed[v]

    defaults = ReactionPolicy()
    reactions: dict[Reason, Reaction] = {r: reaction(r.value, names, defaults.reactions[r])
                 for r in Reason if r is not Reason.OK}  # fmt: skip
    retries = t.integer("retries", 0, 10, default=defaults.retries)
    final: dict[str, Reaction] = {k: v for k, v in names.items() if v is not Reaction.RETRY}
    after = reaction("after_retries", final, defaults.after_retries)
    t.finish()
    return ReactionPolicy(reactions, retries, after)


def _validation_workers(t: TomlTable | None) -> int:
    """``[validation] workers``: processes for the physics replays (default 1, serial)."""
    if t is None:
        return 1
    workers = t.integer("workers", 1, _MAX_WORKERS, default=1)
    t.finish()
    return workers


def _unique(items: list[tuple[TomlTable, str]], what: str, seen: dict[str, str]) -> None:
    for t, name in items:
        if name in seen:
            raise t.fail("name", f"duplicate name {name!r} (already used by {seen[name]}), "
                         f"expected a unique name")  # fmt: skip
        seen[name] = t.path


def _load(file: str, data: dict[str, Any]) -> Cell:
    root = TomlTable(file, data, "")
    ct = root.table("cell")
    assert ct is not None
    name = ct.string("name")
    takt = ct.number("takt", "s", 0.0, 86_400.0, lo_open=True)
    order_name = ct.string("screw_order", ScrewOrder.SHORTEST.value)
    try:
        screw_order = ScrewOrder(order_name)
    except ValueError:
        valid = ", ".join(o.value for o in ScrewOrder)
        raise ct.fail("screw_order", f"{order_name!r}, expected one of: {valid}") from None
    ct.finish()

    robot_tables = root.tables("robots")
    if not robot_tables:
        raise root.fail("robots", "missing, expected at least one [[robots]] table")
    names: dict[str, str] = {}
    _unique([(t, t.string("name")) for t in robot_tables], "robot", names)
    robots = {r.name: r for r in (_robot(t) for t in robot_tables)}

    frames: dict[str, NDArray[np.float64]] = {}
    fixtures: dict[str, Fixture] = {}
    model_holes: dict[str, tuple[Any, ...]] = {}
    feeds: dict[str, ScrewFeed] = {}
    screws: dict[str, Screw] = {}
    valid_models = part_model_names()
    fixture_tables = root.tables("fixtures")
    _unique([(t, t.string("name")) for t in fixture_tables], "fixture", names)
    for t in fixture_tables:
        fname = t.string("name")
        if "/" in fname:
            raise t.fail("name", f"{fname!r} contains '/', expected a name without it")
        model, mdata = _model_data(t, "model", valid_models, "fixture model")
        pose = _pose(t, "pose", frames)
        assert pose is not None
        fixed = t.boolean("fixed", default=True)
        try:
            sites, site_parts, fixture_holes = _sites(model, mdata, pose)
        except InputError as exc:
            raise t.fail("model", f"{exc}") from None
        t.finish()
        fixtures[fname] = Fixture(fname, model, pose, fixed, sites, site_parts)
        frames[fname] = pose
        for s, T in sites.items():
            frames[f"{fname}/{s}"] = T
        for h, value in fixture_holes.items():
            model_holes[f"{fname}/{h}"] = value
        if "pickup" in sites and "screw" in mdata:
            screw = _screw(t, "model", str(mdata["screw"]))
            screws.setdefault(screw.thread, screw)
            feeds[fname] = ScrewFeed(fname, sites["pickup"], screw)

    part_tables = root.tables("parts")
    _unique([(t, t.string("name")) for t in part_tables], "part", names)
    parts: dict[str, Part] = {}
    for t in part_tables:
        pname = t.string("name")
        model, _ = _model_data(t, "model", valid_models, "part model")
        pose = _pose(t, "pose", frames)
        target = _pose(t, "target", frames)
        grasp = _pose(t, "grasp", {})
        assert pose is not None and target is not None and grasp is not None
        tt = t.table("target")
        assert tt is not None
        site = tt.data.get("frame")
        if isinstance(site, str) and "/" in site:
            fx_name, slot = site.split("/", 1)
            wanted = fixtures[fx_name].site_parts.get(slot) if fx_name in fixtures else None
            if wanted is not None and wanted != model:
                raise tt.fail("frame", f"site {site!r} is for part model {wanted!r}, "
                              f"expected a site for {model!r}")  # fmt: skip
        tol = t.table("tolerance")
        assert tol is not None
        tp = tol.number("position", "m", 0.0, 0.1, lo_open=True)
        tr = tol.number("angle_deg", "deg", 0.0, 180.0, lo_open=True)
        tol.finish()
        t.finish()
        parts[pname] = Part(pname, model, pose, target, grasp, tp, math.radians(tr))

    hole_tables = root.tables("holes")
    holes: dict[str, Hole] = {}
    if hole_tables:
        if not feeds:
            raise root.fail("holes", "no screw presenter among the fixtures, expected a fixture "
                            "whose model presents screws (part.toml pickup and screw)")  # fmt: skip
        tgt = root.table("tightening")
        assert tgt is not None
        defaults = _tightening_values(tgt, required=True)
        tgt.finish()
        seen_holes: dict[str, str] = {}
        _unique([(t, t.string("name")) for t in hole_tables], "hole", seen_holes)
        for t in hole_tables:
            holes[t.string("name")] = _hole(t, frames, model_holes, screws, defaults)
    else:
        root.table("tightening", required=False)

    speeds = _speeds(root, bool(holes))
    reaction = _reaction(root.table("reaction", required=False))
    workers = _validation_workers(root.table("validation", required=False))
    root.finish()
    return Cell(
        path=Path(file), name=name, takt=takt, robots=robots, fixtures=fixtures, parts=parts,
        holes=holes, screws=screws, feeds=feeds, speeds=speeds, reaction=reaction,
        screw_order=screw_order, validation_workers=workers,
    )  # fmt: skip


def _hole(
    t: TomlTable,
    frames: Mapping[str, NDArray[np.float64]],
    model_holes: Mapping[str, tuple[Any, ...]],
    screws: Mapping[str, Screw],
    defaults: dict[str, float],
) -> Hole:
    name = t.string("name")
    if t.has("site"):
        site = t.string("site")
        if site not in model_holes:
            raise t.fail("site", f"unknown hole site {site!r}, expected one of: "
                         f"{', '.join(sorted(model_holes)) or '(none)'}")  # fmt: skip
        for key in ("position", "axis", "frame", "screw"):
            if t.has(key):
                raise t.fail(key, "given together with site, expected either site or "
                             "position/axis/screw")  # fmt: skip
        position, axis, thread = model_holes[site]
        if float(np.linalg.norm(axis)) < 1e-9:
            raise t.fail("site", f"hole site {site!r} has a zero axis, expected a direction")
    else:
        position = t.vector("position", 3, "m", bound=_MAX_DISTANCE)
        axis = t.vector("axis", 3, "unit direction", bound=1e6, nonzero=True)
        thread = t.string("screw")
        if t.has("frame"):
            fname = t.string("frame")
            if fname not in frames:
                raise t.fail("frame", f"unknown frame {fname!r}, expected one of: "
                             f"{', '.join(sorted(frames)) or '(none)'}")  # fmt: skip
            T = frames[fname]
            position, axis = T[:3, :3] @ position + T[:3, 3], T[:3, :3] @ axis
    if thread not in screws:
        raise t.fail("screw" if not t.has("site") else "site",
                     f"screw {thread!r} is presented by no fixture, expected one of: "
                     f"{', '.join(sorted(screws))}")  # fmt: skip
    values = {**defaults, **_tightening_values(t, required=False)}
    spec = _tightening_spec(t, values, screws[thread])
    t.finish()
    return Hole(name, np.asarray(position), np.asarray(axis), thread, spec)


def _speeds(root: TomlTable, screwing: bool) -> SpeedLimits:
    t = root.table("speeds")
    assert t is not None
    required = {SegmentKind.TRANSFER, SegmentKind.APPROACH, SegmentKind.INSERT,
                SegmentKind.RETRACT} | ({SegmentKind.ENGAGE} if screwing else set())  # fmt: skip
    caps = {}
    for kind in SegmentKind:
        if kind in required or t.has(kind.value):
            caps[kind] = t.number(kind.value, "m/s", 0.0, _MAX_SPEED, lo_open=True)
    t.finish()
    return SpeedLimits(caps)


def _guarded(file: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except CellFileError:
        raise
    except RobotCellError as exc:
        raise CellFileError(file, "", str(exc)) from None


def load_cell(path: str | Path) -> Cell:
    """Load and validate a cell file.

    Args:
        path: The TOML file. Model names refer to folders under ``urdf/``.

    Returns:
        The frozen :class:`Cell`.

    Raises:
        CellFileError: the file is missing, not TOML, or any field is wrong; the message
            is ``file:key.path: what is wrong, what is expected``.
    """
    file = str(path)
    p = Path(path)
    if p.is_dir():
        raise CellFileError(file, "", "a directory, expected a cell file (.toml)")
    if not p.is_file():
        raise CellFileError(file, "", "no such file, expected a cell file (.toml)")
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise CellFileError(file, "", f"not valid TOML ({exc}), expected a TOML file") from None
    except UnicodeDecodeError:
        raise CellFileError(file, "", "not valid TOML (not UTF-8), expected a TOML file") from None
    except OSError as exc:
        raise CellFileError(file, "", f"cannot read it ({exc.strerror})") from None
    cell = _guarded(file, lambda: _load(file, data))
    logger.info("loaded cell %s from %s", cell.name, file)
    return cell
