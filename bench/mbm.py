"""MotionBenchMaker benchmark: our planner against OMPL's RRTConnect on the same checker.

Every problem of a MotionBenchMaker file (JSON: ``problems`` -> set name -> list of
problems with ``start``, ``goals`` and ``obstacles``; see
``/work/shared/benchmarks/mbm/README.md``) is planned for our Panda model with the Franka
hand, fingers held :data:`FINGER_OPENING` apart from the centre (6.5 cm between them, as the
problems were generated). The file's ``robot`` key must name the Panda and its ``joints``
key the Panda's seven joints (in another order, the start and goals are reordered to the
model's); a file for another robot or other joints is refused with the key named. For each
problem:

* the grasped object: the problems' goals are grasps (the hand around a can, generated
  with the object in the scene); the obstacle nearest the tool centre point at the goals
  (within :data:`GRASP_REACH`) may touch the finger links, as MoveIt's allowed-collision
  matrix lets the gripper touch what it grasps (:func:`grasp_allowance`). Every other
  pair, the hand body included, is checked;
* ``valid``: the start and at least one goal are within the joint limits and collision-free
  under our batched model (:class:`planners.collision.CollisionModel`, padding
  :data:`PADDING`); problems that are not are counted and skipped, and so is a problem whose
  obstacles cannot be read (an unknown type, a pose that is not finite, a missing field):
  ``invalid_reasons`` counts them by what was wrong (``obstacles``, ``start``, ``goals``) and
  the top-level ``invalid`` list says why, problem by problem;
* ours: :func:`planners.plan.plan` (RRT-Connect plus shortcutting, both compiled against
  the packed sphere model) at :data:`RESOLUTION`, seeded with ``seed + problem index``;
  the time is the whole call, smoothing included, with numba warm (one untimed plan runs
  first);
* ``verified``: the solution re-checked densely (every :data:`VERIFY_RESOLUTION` rad)
  with PyBullet's exact geometry (:class:`sim.exact.ExactChecker`);
* OMPL (``ompl`` wheel): ``RRTConnect`` in a ``SimpleSetup`` over a 7-D real vector space
  with the joint limits, its state validity callback our model's ``valid`` on one
  configuration, and a motion validator that checks the same straight-edge configurations
  at the same resolution in one batched ``valid`` call (so both planners see one checker
  and one resolution); after ``solve`` the path is simplified with OMPL's
  ``simplifySolution`` inside the remaining time, and both count in its time. Its
  solutions are verified the same way.

Times are per problem [ms]: median and 95th percentile over the solved problems; path
length is the Euclidean joint-space length [rad].
"""

from __future__ import annotations

import json
import logging
import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from bench.mbm_ompl import OmplPeer
from planners import load_arm
from planners.arm import Arm
from planners.errors import InputError, RobotCellError, UnknownNameError
from planners.plan import plan
from planners.plan_result import path_length
from planners.scene import Box, Cylinder, Obstacle, Scene, Sphere
from planners.space import collision_space

__all__ = [
    "FINGER_OPENING",
    "GRASP_REACH",
    "PADDING",
    "RESOLUTION",
    "VERIFY_RESOLUTION",
    "Problem",
    "grasp_allowance",
    "load_problems",
    "print_table",
    "run",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

FINGER_OPENING = 0.0325
"""Franka hand finger joint value [m]: the inner faces of our finger collision hulls are then
64.7 mm apart (the README's "about 6.5 cm"); at the hand's full opening, 0.04, 79.7 mm."""
PADDING = 0.0
"""Scene padding of the batched model [m]: none, the sphere cover is conservative (it holds
the links' meshes grown by PyBullet's 1 mm margin, :data:`planners.spheres.MESH_MARGIN`)."""
RESOLUTION = 0.02
"""Edge-check resolution of both planners [rad]."""
VERIFY_RESOLUTION = 0.005
"""Largest joint step between the configurations of the exact re-check [rad]."""
GRASP_REACH = 0.03
"""Largest distance from the tool centre point to the surface of the grasped object [m]."""


@dataclass(frozen=True)
class Problem:
    """One MotionBenchMaker problem.

    Attributes:
        set: Set name (``table_pick`` ...).
        index: Problem index in the file.
        start: (dof,) start configuration [rad].
        goals: (M, dof) goal configurations [rad].
        obstacles: Obstacle mappings as in the file.
    """

    set: str
    index: int
    start: NDArray[np.float64]
    goals: NDArray[np.float64]
    obstacles: tuple[Mapping[str, Any], ...]


def load_problems(
    path: Path,
    dof: int = 7,
    *,
    robot: str | None = None,
    joints: Sequence[str] | None = None,
) -> dict[str, list[Problem]]:
    """Read a MotionBenchMaker JSON file into problems per set.

    Args:
        path: The JSON file.
        dof: Joints of the model the problems are for.
        robot: The model's name; a file whose ``robot`` key names another robot is refused
            (``None``: not checked; a file without the key is taken to be for the model).
        joints: The model's joint names in its order; the file's ``joints`` key must name
            the same joints, and when they come in another order the start and goals are
            reordered to the model's (``None``, or a file without the key: the file's order
            is taken to be the model's).

    Raises:
        InputError: the file is missing or malformed, or is for another robot or other
            joints; the message names the file and key.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    sets = data.get("problems") if isinstance(data, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise InputError(f"{path}:problems: expected a mapping of set names to lists of problems")
    order = _check_robot(data, path, robot, joints)
    out: dict[str, list[Problem]] = {}
    for name, items in sets.items():
        if not isinstance(items, list):
            raise InputError(f"{path}:problems.{name}: expected a list of problems")
        problems = []
        for i, p in enumerate(items):
            where = f"{path}:problems.{name}[{i}]"
            if not isinstance(p, dict):
                raise InputError(f"{where}: expected a mapping")
            try:
                start = np.asarray(p["start"], dtype=np.float64)
                goals = np.atleast_2d(np.asarray(p["goals"], dtype=np.float64))
                obstacles = tuple(p.get("obstacles", ()))
            except KeyError as exc:
                raise InputError(f"{where}.{exc.args[0]}: missing") from None
            except (TypeError, ValueError) as exc:
                raise InputError(f"{where}: start and goals must be numbers ({exc})") from None
            if start.shape != (dof,) or goals.ndim != 2 or goals.shape[1] != dof or not len(goals):
                raise InputError(f"{where}: expected start ({dof},) and goals (M, {dof})")
            if order is not None:
                start, goals = start[order], goals[:, order]
            problems.append(Problem(name, int(p.get("index", i + 1)), start, goals, obstacles))
        out[name] = problems
    return out


def _check_robot(
    data: Mapping[str, Any], path: Path, robot: str | None, joints: Sequence[str] | None
) -> NDArray[np.int64] | None:
    """Check the file's ``robot`` and ``joints`` keys against the model.

    Returns:
        The file's column of each of the model's joints when the file lists them in
        another order, else ``None``.

    Raises:
        InputError: another robot, or joints that are not the model's.
    """
    name = data.get("robot")
    if (robot is not None and name is not None) and not (
        isinstance(name, str) and name.strip().lower() == robot.lower()
    ):
        raise InputError(
            f"{path}:robot: the problems are for {name!r}, this benchmark plans for {robot!r}"
        )
    listed = data.get("joints")
    if joints is None or listed is None:
        return None
    ours = list(joints)
    if not (isinstance(listed, list) and all(isinstance(j, str) for j in listed)):
        raise InputError(f"{path}:joints: expected a list of joint names, got {listed!r}")
    if sorted(listed) != sorted(ours):
        missing = [j for j in ours if j not in listed]
        extra = [j for j in listed if j not in ours or listed.count(j) > 1]
        raise InputError(
            f"{path}:joints: expected the {len(ours)} joints {', '.join(ours)} in any order; "
            f"missing: {', '.join(missing) or '(none)'}; not ours or repeated: "
            f"{', '.join(dict.fromkeys(extra)) or '(none)'}"
        )
    if listed == ours:
        return None
    logger.info("%s: joints in the file's order %s, reordered to the model's", path, listed)
    return np.array([listed.index(j) for j in ours], dtype=np.int64)


def _point_distance(o: Obstacle, p: NDArray[np.float64]) -> float:
    """Signed distance [m] from a world point (3,) to an obstacle (negative inside)."""
    T = np.asarray(o.pose)
    x = T[:3, :3].T @ (p - T[:3, 3])
    if isinstance(o, Box):
        q = np.abs(x) - np.asarray(o.half_extents)
        return float(np.linalg.norm(np.maximum(q, 0.0)) + min(float(q.max()), 0.0))
    if isinstance(o, Sphere):
        return float(np.linalg.norm(x)) - o.radius
    if isinstance(o, Cylinder):
        q = np.array([math.hypot(x[0], x[1]) - o.radius, abs(x[2]) - o.length / 2])
        return float(np.linalg.norm(np.maximum(q, 0.0)) + min(float(q.max()), 0.0))
    z = max(abs(float(x[2])) - o.length / 2, 0.0)
    return math.hypot(float(np.linalg.norm(x[:2])), z) - o.radius


def _finger_links(arm: Arm) -> tuple[str, ...]:
    """The links moved by the tool's finger joints."""
    fingers = set(arm.tool.finger_joints) if arm.tool is not None else set()
    out = []
    for j in ET.fromstring(arm.urdf_text).iter("joint"):
        child = j.find("child")
        if j.get("name") in fingers and child is not None:
            out.append(child.get("link", ""))
    return tuple(out)


def grasp_allowance(arm: Arm, scene: Scene, goals: NDArray[np.float64]) -> Scene:
    """``scene`` in which the fingers may touch the object each goal grasps.

    The grasped object of a goal is the obstacle nearest the tool centre point, if that
    point lies within :data:`GRASP_REACH` of its surface (or inside it).

    Args:
        arm: The arm with a gripper (no finger links: the scene comes back unchanged).
        scene: The problem's scene.
        goals: (M, dof) goal configurations [rad].
    """
    fingers = _finger_links(arm)
    if not fingers or not scene.obstacles:
        return scene
    pairs: set[tuple[str, str]] = set()
    for g in np.atleast_2d(goals):
        p = np.asarray(arm.fk(g).t, dtype=np.float64)
        d = [_point_distance(o, p) for o in scene.obstacles]
        k = int(np.argmin(d))
        if d[k] <= GRASP_REACH:
            pairs.update((f, scene.obstacles[k].name) for f in fingers)
    return scene.with_allowed(pairs) if pairs else scene


def _fields(
    valid: int,
    n: int,
    solved: int,
    verified: int,
    times: list[float],
    lengths: list[float],
    invalid_reasons: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    t = np.asarray(times) * 1e3
    return {
        "n": n,
        "valid": valid,
        "solved": solved,
        "verified": verified,
        "median_ms": float(np.median(t)) if t.size else None,
        "p95_ms": float(np.percentile(t, 95)) if t.size else None,
        "max_ms": float(np.max(t)) if t.size else None,
        "median_path_length": float(np.median(lengths)) if lengths else None,
        "invalid_reasons": dict(sorted((invalid_reasons or {}).items())),
    }


class _Tally:
    """Outcomes of one planner over a group of problems."""

    def __init__(self) -> None:
        self.n = self.valid = self.solved = self.verified = 0
        self.times: list[float] = []
        self.lengths: list[float] = []
        self.failures: list[str] = []
        self.invalid_reasons: dict[str, int] = {}

    def add(self, other: _Tally) -> None:
        for k in ("n", "valid", "solved", "verified"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.times += other.times
        self.lengths += other.lengths
        self.failures += other.failures
        for k, v in other.invalid_reasons.items():
            self.invalid_reasons[k] = self.invalid_reasons.get(k, 0) + v

    def not_valid(self, what: str) -> None:
        """Count a problem as not valid because of ``what`` (obstacles, start, goals)."""
        self.invalid_reasons[what] = self.invalid_reasons.get(what, 0) + 1

    def fields(self) -> dict[str, Any]:
        return _fields(self.valid, self.n, self.solved, self.verified, self.times, self.lengths,
                       self.invalid_reasons)  # fmt: skip


class _Exact:
    """The exact checker of one problem, built on first use (loading the arm takes ~0.5 s)."""

    def __init__(self, client: Any, arm: Arm, scene: Any, model: Any) -> None:
        self.args = (client, arm, scene, model)
        self.checker: Any = None
        client.resetSimulation()  # the previous problem's bodies go

    def clear(self, path: NDArray[np.float64]) -> bool:
        from sim.exact import ExactChecker

        if self.checker is None:
            client, arm, scene, model = self.args
            self.checker = ExactChecker(client, arm, scene, model)
        return self.checker.first_collision(path, VERIFY_RESOLUTION) is None


def _warm_up(arm: Arm) -> None:
    """Compile every numba kernel the timed runs use, on a small scene."""
    from planners.collision import CollisionModel

    scene = Scene.from_dicts(
        [
            {
                "name": "wall",
                "type": "box",
                "position": [0.45, 0.0, 0.4],
                "half_extents": [0.02, 0.3, 0.3],
            }
        ],
        padding=PADDING,
    )
    space = collision_space(CollisionModel(arm, scene), arm)
    start = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    goal = np.array([1.2, 0.3, 0.0, -1.8, 0.0, 2.0, 0.785])
    plan(space, start, goal, rng=0, timeout=1.0)


def run(
    problems: Path,
    sets: Sequence[str] | None = None,
    timeout: float = 1.0,
    seed: int = 0,
    progress: Console | None = None,
    *,
    finger_opening: float = FINGER_OPENING,
    peers: bool = True,
) -> dict[str, Any]:
    """Plan every problem of ``problems`` (or of ``sets``) with ours and OMPL's RRTConnect.

    Args:
        problems: MotionBenchMaker problems as JSON.
        sets: Set names to run (default: every set in the file, in file order).
        timeout: Time limit per problem and planner [s].
        seed: Base seed; problem ``k`` of a set plans with ``seed + k``.
        progress: Console for a line per set, or ``None`` for silence.
        finger_opening: Finger joint value of the hand [m].
        peers: Whether to run OMPL's RRTConnect too.

    Returns:
        ``{"sets": {set: fields}, "total": fields, "peers": {"ompl": {"sets": ..., "total":
        ...}}, "ratio_median_ompl_over_ours": float, "setup": {...}, "failures": [...]}``
        with fields ``n, valid, solved, verified, median_ms, p95_ms, max_ms,
        median_path_length, invalid_reasons`` (``invalid_reasons``: problems not valid,
        counted by what was wrong: ``obstacles``, ``start`` or ``goals``).

    Raises:
        InputError: malformed file or settings, or a file for another robot or with other
            joint names than the Panda model's (:func:`load_problems`).
        UnknownNameError: a set not in the file; the message lists the file's sets.
    """
    from planners.collision import CollisionModel
    from sim.client import bullet_client

    if not timeout > 0:
        raise InputError(f"timeout: expected a positive number of seconds, got {timeout}")
    arm = load_arm("panda", "franka_hand", finger_opening=finger_opening)
    by_set = load_problems(problems, arm.dof, robot=arm.name, joints=arm.joint_names)
    chosen = list(by_set) if not sets else list(sets)
    for name in chosen:
        if name not in by_set:
            raise UnknownNameError("problem set", name, by_set)
    _warm_up(arm)
    ompl = OmplPeer(RESOLUTION) if peers else None
    ours_total, ompl_total = _Tally(), _Tally()
    result: dict[str, Any] = {"sets": {}, "peers": {"ompl": {"sets": {}}}}
    invalid: list[str] = []
    with bullet_client() as client:  # one world; emptied before each problem
        for name in chosen:
            ours, theirs = _Tally(), _Tally()
            t_set = time.perf_counter()
            for k, prob in enumerate(by_set[name]):
                label = f"{name}[{prob.index}]"
                ours.n += 1
                theirs.n += 1
                try:  # one problem's bad obstacle must not end the run
                    scene = Scene.from_dicts(
                        prob.obstacles, padding=PADDING, where=f"{label}.obstacles"
                    )
                except RobotCellError as exc:
                    invalid.append(f"{label}: {exc}")
                    ours.not_valid("obstacles")
                    theirs.not_valid("obstacles")
                    continue
                ends = _finite_ends(prob)
                scene = grasp_allowance(arm, scene, prob.goals[ends[1:]])
                model = CollisionModel(arm, scene)
                space = collision_space(model, arm)
                Q = np.vstack((prob.start[None], prob.goals))
                if ends.any():
                    ends[ends] = space.valid(Q[ends])
                if not (ends[0] and ends[1:].any()):
                    invalid.append(f"{label}: {_why(model, prob, ends)}")
                    what = "start" if not ends[0] else "goals"
                    ours.not_valid(what)
                    theirs.not_valid(what)
                    continue
                ours.valid += 1
                theirs.valid += 1
                goals = prob.goals[ends[1:]]
                t0 = time.perf_counter()
                res = plan(
                    space, prob.start, goals, rng=seed + k, timeout=timeout, resolution=RESOLUTION
                )
                dt = time.perf_counter() - t0
                exact = _Exact(client, arm, scene, model)
                _record(ours, label, res.success, res.path, dt, res.reason, exact)
                if ompl is not None:
                    ok, path, dt = ompl.solve(space, prob.start, goals, timeout, seed + k)
                    _record(theirs, label, ok, path, dt, None if ok else "no solution", exact)
            if progress is not None:
                progress.print(
                    f"{name}: {ours.valid}/{ours.n} valid, ours {ours.solved} solved "
                    f"({ours.verified} verified), OMPL {theirs.solved} ({theirs.verified}), "
                    f"{time.perf_counter() - t_set:.1f} s"
                )
            result["sets"][name] = ours.fields()
            result["peers"]["ompl"]["sets"][name] = theirs.fields()
            ours_total.add(ours)
            ompl_total.add(theirs)
    result["total"] = ours_total.fields()
    result["peers"]["ompl"]["total"] = ompl_total.fields()
    m_ours, m_ompl = result["total"]["median_ms"], result["peers"]["ompl"]["total"]["median_ms"]
    result["ratio_median_ompl_over_ours"] = m_ompl / m_ours if m_ours and m_ompl else None
    result["invalid"] = invalid
    result["failures"] = {"ours": ours_total.failures, "ompl": ompl_total.failures}
    result["setup"] = {
        "problems": str(problems), "timeout_s": timeout, "seed": seed,
        "arm": "panda + franka_hand", "finger_opening_m": finger_opening, "padding_m": PADDING,
        "resolution_rad": RESOLUTION, "verify_resolution_rad": VERIFY_RESOLUTION,
        "times": "per problem, planning plus smoothing, numba warm",
    }  # fmt: skip
    return result


def _finite_ends(prob: Problem) -> NDArray[np.bool_]:
    """Whether the start and each goal are finite, (1 + M,): NaN or inf is not valid."""
    Q = np.vstack((prob.start[None], prob.goals))
    return np.asarray(np.isfinite(Q).all(axis=1), dtype=bool)


def _why(model: Any, prob: Problem, ends: NDArray[np.bool_]) -> str:
    parts = []
    named = [("start", prob.start, ends[0])]
    named += [
        (f"goal {i}", g, e) for i, (g, e) in enumerate(zip(prob.goals, ends[1:], strict=True))
    ]
    for what, q, ok in named:
        if not ok and not np.isfinite(q).all():
            parts.append(f"{what} has a value that is not finite: {q.tolist()}")
        elif not ok:
            parts.append(f"{what} {model.explain(q)}")
    return "; ".join(parts)


def _record(
    tally: _Tally, label: str, ok: bool, path: NDArray[np.float64], dt: float,
    reason: str | None, exact: _Exact,
) -> None:  # fmt: skip
    if not ok:
        tally.failures.append(f"{label}: {reason}")
        return
    tally.solved += 1
    tally.times.append(dt)
    tally.lengths.append(path_length(path))
    if exact.clear(path):
        tally.verified += 1
    else:
        tally.failures.append(f"{label}: the exact re-check found a collision")


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(console: Console, result: Mapping[str, Any]) -> None:
    """Print the benchmark result as a table, ours and OMPL per set and in total."""
    table = Table(title="MotionBenchMaker (Panda): ours vs OMPL RRTConnect, same checker")
    for col in (
        "set",
        "planner",
        "n",
        "valid",
        "solved",
        "verified",
        "median ms",
        "p95 ms",
        "max ms",
        "median length",
    ):
        table.add_column(col, justify="left" if col in ("set", "planner") else "right")
    rows: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = [
        (name, f, result["peers"]["ompl"]["sets"][name]) for name, f in result["sets"].items()
    ]
    rows.append(("total", result["total"], result["peers"]["ompl"]["total"]))
    for name, ours, theirs in rows:
        for planner, f in (("ours", ours), ("ompl", theirs)):
            table.add_row(
                name if planner == "ours" else "", planner, str(f["n"]), str(f["valid"]),
                str(f["solved"]), str(f["verified"]), _fmt(f["median_ms"], ".3f"),
                _fmt(f["p95_ms"], ".3f"), _fmt(f.get("max_ms"), ".1f"),
                _fmt(f["median_path_length"], ".2f"),
            )  # fmt: skip
    console.print(table)
    ratio = result.get("ratio_median_ompl_over_ours")
    if ratio is not None:
        console.print(f"median time, OMPL over ours: {ratio:.1f}x")
    for line in result.get("invalid", []):
        console.print(f"invalid: {line}", markup=False, highlight=False)
    for planner, lines in result.get("failures", {}).items():
        for line in lines:
            console.print(f"{planner} failed: {line}", markup=False, highlight=False)
