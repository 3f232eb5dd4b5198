"""The fast collision model: link spheres against scene primitives, batched.

:class:`CollisionModel` covers every link with collision geometry (arm, tool, fingers at
the arm's ``finger_opening``) and every attachment with spheres (:mod:`planners.spheres`)
and checks, in one compiled kernel per batch of configurations (N, dof):

* joint position limits;
* robot and attachment spheres against the scene's obstacles, keeping ``scene.padding``;
* self-collision between sphere groups that are not adjacent (padding 0: the spheres
  already over-cover);
* attachments against the arm's links except the attachment's link and ``touch_links``.

**Adjacency** (pairs never checked against each other, :attr:`CollisionModel.ignored`):
a link and its nearest ancestor that has collision geometry (parent-child in the URDF,
skipping geometry-less frames such as a flange), pairs whose spheres overlap at the arm's
``home`` configuration (zero when it has none, clipped into the limits), an attachment
and its link and ``touch_links``, and the pairs the scene allows. Besides, pairs whose
relative pose depends on one or two revolute joints are swept over those joints' whole
range on a grid (:data:`SWEEP_STEP`); a pair whose smallest sphere distance on the grid
exceeds how far a sphere can move between grid points can never touch and is dropped
(:attr:`CollisionModel.never`; cached on disk). :class:`sim.exact.ExactChecker` checks
the same pairs (:attr:`CollisionModel.self_pairs`).

The model is conservative: the spheres contain the links (see :mod:`planners.spheres`),
so a configuration the exact geometry finds colliding is never reported valid. It errs
the other way by up to the spheres' bulge: 2-6 mm at the fingers and the screwdriver bit,
up to 6 cm at the flat ends of the UR5e's long links. MotionBenchMaker grasp goals whose
fingers sit 2 mm from the can are therefore invalid unless the scene allows the fingers
to touch the grasped object.

Broad phase: each group's spheres sit inside one bounding sphere, tested first against
runs of nearby obstacles (each with a bounding sphere), then against single obstacles;
a group's spheres are placed only when needed; ``valid`` stops at the first hit of each
configuration. Links on fixed joints are folded into the frame of the nearest moving
joint, so the kinematics per configuration is one rotation per actuated joint. Batches
of :data:`PARALLEL_FROM` or more run on every core (numba ``prange``); smaller ones on one
core through a cheaper call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners import collision_packed as packed
from planners.arm import Arm
from planners.collision_fk import link_poses, sphere_centres
from planners.errors import InputError, ModelError, UnknownNameError
from planners.scene import Box, Capsule, Cylinder, Scene, Sphere
from planners.spheres import LinkSpheres, _origin, robot_spheres, shape_spheres

__all__ = ["CollisionModel", "Contact"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

PARALLEL_FROM = 128  # batch size from which the kernel runs on every core
SWEEP_STEP = (0.005, 0.04)  # rad, grid steps of the one- and two-joint sweeps
CLUSTER_RADIUS = 0.25  # m, largest bounding sphere of a run of obstacles
_NEVER_CACHE: dict[tuple[str, int, int], bool] = {}


@dataclass(frozen=True)
class Contact:
    """The pair that sets the clearance of one configuration.

    Attributes:
        distance: Signed distance of the sphere model [m] (negative: penetration).
        a: A link or attachment name.
        b: An obstacle, link or attachment name.
    """

    distance: float
    a: str
    b: str


@dataclass(frozen=True)
class _Links:
    names: tuple[str, ...]
    parent: NDArray[np.int64]
    jtype: NDArray[np.int64]
    jcol: NDArray[np.int64]
    origin: NDArray[np.float64]
    axis: NDArray[np.float64]


def _compile_links(arm: Arm) -> _Links:
    """The arm's merged URDF as arrays for the kernel, links in topological order."""
    robot = ET.fromstring(arm.urdf_text)
    joints = {}
    for j in robot.iter("joint"):
        child_el = j.find("child")
        parent_el = j.find("parent")
        if child_el is None or parent_el is None:
            raise ModelError(f"joint {j.get('name')!r}: missing <parent> or <child>")
        joints[child_el.get("link", "")] = j
    children: dict[str, list[str]] = {}
    for child, j in joints.items():
        children.setdefault(j.find("parent").get("link", ""), []).append(child)  # type: ignore[union-attr]
    order = [arm.base_link]
    for name in order:
        order.extend(children.get(name, []))
    index = {n: i for i, n in enumerate(order)}
    fingers = set(arm.tool.finger_joints) if arm.tool is not None else set()
    cols = {n: i for i, n in enumerate(arm.joint_names)}
    values: dict[str, float] = {}

    def value(j: ET.Element) -> float:
        name = j.get("name", "")
        if name in fingers:
            return float(arm.finger_opening)
        mimic = j.find("mimic")
        if mimic is not None:
            src = next((x for x in joints.values() if x.get("name") == mimic.get("joint")), None)
            if src is not None:
                return float(mimic.get("multiplier", "1")) * value(src) + float(
                    mimic.get("offset", "0")
                )
        return values.get(name, 0.0)

    L = len(order)
    parent = np.full(L, -1, np.int64)
    jtype = np.zeros(L, np.int64)
    jcol = np.zeros(L, np.int64)
    origin = np.tile(np.eye(4), (L, 1, 1))
    axis = np.zeros((L, 3))
    for i, name in enumerate(order[1:], 1):
        j = joints[name]
        parent[i] = index[j.find("parent").get("link", "")]  # type: ignore[union-attr]
        origin[i] = _origin(j.find("origin"))
        ax_el = j.find("axis")
        ax = np.array(
            [
                float(v)
                for v in (ax_el.get("xyz", "1 0 0") if ax_el is not None else "1 0 0").split()
            ]
        )
        ax = ax / max(float(np.linalg.norm(ax)), 1e-12)
        kind = j.get("type", "fixed")
        jn = j.get("name", "")
        if kind in ("revolute", "continuous", "prismatic") and jn in cols:
            jtype[i] = 2 if kind == "prismatic" else 1
            jcol[i] = cols[jn]
            axis[i] = ax
        elif kind in ("revolute", "continuous", "prismatic"):
            v = value(j)
            motion = np.eye(4)
            if kind == "prismatic":
                motion[:3, 3] = v * ax
            else:
                K = np.array([[0, -ax[2], ax[1]], [ax[2], 0, -ax[0]], [-ax[1], ax[0], 0]])
                motion[:3, :3] = np.eye(3) + math.sin(v) * K + (1 - math.cos(v)) * K @ K
            origin[i] = origin[i] @ motion
    return _Links(tuple(order), parent, jtype, jcol, origin, axis)


def _fold(links: _Links) -> tuple[NDArray[np.int64], NDArray[np.float64], _Links]:
    """Merge links on fixed joints into the nearest moving frame above them.

    Returns:
        The frame of each link (L,), each link's pose in its frame (L, 4, 4), and the
        moving frames (the root first) as :class:`_Links` for the kernel.
    """
    L = len(links.names)
    frame_of = np.zeros(L, np.int64)
    T_fl = np.tile(np.eye(4), (L, 1, 1))
    names, parent, jtype, jcol, origin, axis = (
        [links.names[0]],
        [-1],
        [0],
        [0],
        [np.eye(4)],
        [np.zeros(3)],
    )
    for i in range(1, L):
        p = int(links.parent[i])
        if links.jtype[i] == 0:
            frame_of[i] = frame_of[p]
            T_fl[i] = T_fl[p] @ links.origin[i]
            continue
        frame_of[i] = len(names)
        names.append(links.names[i])
        parent.append(int(frame_of[p]))
        jtype.append(int(links.jtype[i]))
        jcol.append(int(links.jcol[i]))
        origin.append(T_fl[p] @ links.origin[i])
        axis.append(links.axis[i])
    frames = _Links(
        tuple(names),
        np.asarray(parent, np.int64),
        np.asarray(jtype, np.int64),
        np.asarray(jcol, np.int64),
        np.ascontiguousarray(origin),
        np.ascontiguousarray(axis),
    )
    return frame_of, T_fl, frames


def _bounding_sphere(o: Box | Sphere | Cylinder | Capsule) -> tuple[NDArray[np.float64], float]:
    c = np.asarray(o.pose)[:3, 3]
    if isinstance(o, Box):
        return c, float(np.linalg.norm(o.half_extents))
    if isinstance(o, Sphere):
        return c, o.radius
    if isinstance(o, Cylinder):
        return c, math.hypot(o.radius, o.length / 2)
    return c, o.radius + o.length / 2


def _clusters(
    obstacles: tuple[Box | Sphere | Cylinder | Capsule, ...],
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Runs of consecutive obstacles within :data:`CLUSTER_RADIUS`, each with a bounding
    sphere: (C, 4) ``x y z r`` [m] and (C+1,) start offsets. A fixture read from a URDF
    is one run; the kernel skips a whole run when a link's sphere misses it."""
    spheres = [_bounding_sphere(o) for o in obstacles]
    starts = [0]
    bounds: list[list[float]] = []
    members: list[tuple[NDArray[np.float64], float]] = []

    def enclose(items: list[tuple[NDArray[np.float64], float]]) -> list[float]:
        lo = np.min([c - r for c, r in items], axis=0)
        hi = np.max([c + r for c, r in items], axis=0)
        centre = (lo + hi) / 2
        radius = max(float(np.linalg.norm(c - centre)) + r for c, r in items)
        return [*centre, radius * (1 + 1e-9) + 1e-12]

    for k, item in enumerate(spheres):
        if members and enclose([*members, item])[3] > max(CLUSTER_RADIUS, item[1]):
            bounds.append(enclose(members))
            starts.append(k)
            members = []
        members.append(item)
    if members:
        bounds.append(enclose(members))
        starts.append(len(spheres))
    return np.asarray(bounds, np.float64).reshape(-1, 4), np.asarray(starts, np.int64)


def _params(o: Box | Sphere | Cylinder | Capsule) -> tuple[int, list[float]]:
    if isinstance(o, Box):
        return 0, list(o.half_extents)
    if isinstance(o, Sphere):
        return 1, [o.radius, 0.0, 0.0]
    if isinstance(o, Cylinder):
        return 2, [o.radius, o.length / 2, 0.0]
    return 3, [o.radius, o.length / 2, 0.0]


class CollisionModel:
    """Batched collision checks of an arm (with tool and attachments) in a scene.

    Args:
        arm: The arm, as loaded by :func:`planners.load_arm`.
        scene: Obstacles, attachments, padding and allowed pairs (empty by default).

    Raises:
        UnknownNameError: an attachment names a link the arm does not have.
    """

    def __init__(self, arm: Arm, scene: Scene | None = None) -> None:
        self.arm = arm
        self.scene = Scene() if scene is None else scene
        self._links = _compile_links(arm)
        links = self._links
        index = {n: i for i, n in enumerate(links.names)}
        groups: list[LinkSpheres] = [
            s for s in robot_spheres(arm.urdf_text, self._tool_links()) if s.link in index
        ]
        group_link = [index[s.link] for s in groups]
        frame_of, T_fl, frames = _fold(links)
        self._frame_of, self._T_fl = frame_of, T_fl
        for att in self.scene.attachments:
            if att.link not in index:
                raise UnknownNameError(f"link for attachment {att.name!r}", att.link, links.names)
            local = shape_spheres(att.name, att.shapes)
            T = np.asarray(att.T_link_object)
            centers = np.asarray(local.centers) @ T[:3, :3].T + T[:3, 3]
            groups.append(LinkSpheres(att.name, centers, np.asarray(local.radii)))
            group_link.append(index[att.link])
        self.groups: tuple[str, ...] = tuple(grp.link for grp in groups)
        self.n_spheres = sum(len(grp.radii) for grp in groups)
        # Sphere centres move into the frame of the nearest moving joint above their link.
        groups = [
            LinkSpheres(
                grp.link,
                np.asarray(grp.centers) @ T_fl[gl][:3, :3].T + T_fl[gl][:3, 3],
                np.asarray(grp.radii),
            )
            for grp, gl in zip(groups, group_link, strict=True)
        ]
        spheres = np.concatenate([np.c_[grp.centers, grp.radii] for grp in groups])
        gstart = np.cumsum([0] + [len(grp.radii) for grp in groups]).astype(np.int64)
        gbound = np.zeros((len(groups), 4))
        for k, grp in enumerate(groups):
            C = np.asarray(grp.centers)
            c = (C.min(axis=0) + C.max(axis=0)) / 2
            gbound[k, :3] = c
            gbound[k, 3] = np.max(np.linalg.norm(C - c, axis=1) + grp.radii) * (1 + 1e-9)
        obstacles = self.scene.obstacles
        M = len(obstacles)
        otype = np.zeros(M, np.int64)
        oinv = np.zeros((M, 3, 4))
        oparam = np.zeros((M, 3))
        for m, o in enumerate(obstacles):
            otype[m], oparam[m] = _params(o)
            oinv[m] = np.linalg.inv(np.asarray(o.pose))[:3]
        gmask = np.ones((len(groups), M), np.uint8)
        for g, gname in enumerate(self.groups):
            for m, o in enumerate(obstacles):
                if self.scene.is_allowed(gname, o.name):
                    gmask[g, m] = 0
        self._fk_args = (
            np.ascontiguousarray(arm.base, dtype=np.float64),
            frames.parent,
            frames.jtype,
            frames.jcol,
            frames.origin,
            frames.axis,
        )
        group_frame = np.asarray([frame_of[gl] for gl in group_link], np.int64)
        self._group_args = (group_frame, gstart, spheres, gbound)
        cbound, cstart = _clusters(obstacles)
        self._obstacle_args = (otype, oinv, oparam, cbound, cstart, gmask)
        digest = hashlib.sha256()
        for arr in (
            *self._fk_args,
            *self._group_args,
            self.arm.limits.lower,
            self.arm.limits.upper,
        ):
            digest.update(np.ascontiguousarray(arr).tobytes())
        self._sweep_key = digest.hexdigest()
        ignored = self._adjacent(group_link)
        n_att = len(self.scene.attachments)
        att_names = {a.name: a for a in self.scene.attachments}
        pairs = []
        for g in range(len(groups)):
            for h in range(g + 1, len(groups)):
                a, b = self.groups[g], self.groups[h]
                if (a, b) in ignored or (b, a) in ignored:
                    continue
                if a in att_names and b in att_names:
                    continue  # two held parts: the cell's business, not the arm's
                pairs.append((g, h))
        never = self._never_colliding(pairs)
        pairs = [p for p in pairs if p not in never]
        self.never: frozenset[tuple[str, str]] = frozenset(
            (self.groups[g], self.groups[h]) for g, h in never
        )
        # The group with more spheres goes first: its spheres are screened against the
        # other group's bounding sphere before any sphere pair is tested.
        sizes = np.diff(gstart)
        pairs = [(g, h) if sizes[g] >= sizes[h] else (h, g) for g, h in pairs]
        self._pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        # Self pairs checked with padding 0, world pairs with the scene's padding.
        self._set_pairs(self._pairs)
        self.ignored: frozenset[tuple[str, str]] = frozenset(ignored)
        logger.debug(
            "collision model %s: %d groups, %d spheres, %d self pairs, %d obstacles, %d held",
            arm.name,
            len(groups),
            self.n_spheres,
            len(pairs),
            M,
            n_att,
        )

    def _tool_links(self) -> frozenset[str]:
        """Links beyond the flange (tool, fingers): covered tighter."""
        links = self._links
        index = {n: i for i, n in enumerate(links.names)}
        flange = index.get(self.arm.flange_link, -1)
        out = set()
        for i, name in enumerate(links.names):
            j = int(links.parent[i])
            while j >= 0 and j != flange:
                j = int(links.parent[j])
            if j == flange and i != flange:
                out.add(name)
        return frozenset(out)

    def _set_pairs(self, pairs: NDArray[np.int64]) -> None:
        lim = self.arm.limits
        self._limits = (np.ascontiguousarray(lim.lower), np.ascontiguousarray(lim.upper))
        rest = (*self._fk_args, *self._group_args, *self._obstacle_args, pairs)
        pad = float(self.scene.padding)
        self._packed = packed.pack((*self._limits, *rest, pad))
        free = np.full(self.arm.dof, np.inf)
        self._packed_unlimited = packed.pack((-free, free, *rest, pad))
        for buf in (*self._packed, *self._packed_unlimited):
            buf.flags.writeable = False

    def _never_colliding(self, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
        """Pairs whose relative motion is one or two joints and that cannot touch.

        Their spheres are swept over a grid of those joints' whole range (steps
        :data:`SWEEP_STEP`); a pair is dropped when its smallest distance on the grid
        exceeds how far any sphere can move between grid points.
        """
        parent = self._fk_args[1]
        jtype = self._fk_args[2]
        jcol = self._fk_args[3]
        gframe, gstart = self._group_args[0], self._group_args[1]
        lim = self.arm.limits
        q0 = self.arm.configurations.get("home")
        q0 = np.clip(
            np.zeros(self.arm.dof) if q0 is None else np.asarray(q0, float), lim.lower, lim.upper
        )

        def chain(f: int) -> list[int]:
            out = [f]
            while parent[out[-1]] >= 0:
                out.append(int(parent[out[-1]]))
            return out

        never: set[tuple[int, int]] = set()
        path = (
            Path(tempfile.gettempdir()) / "robotcell-spheres" / f"never-{self._sweep_key[:24]}.json"
        )
        if path.is_file():
            try:
                known = json.loads(path.read_text())
                for g, h in pairs:
                    _NEVER_CACHE.setdefault(
                        (self._sweep_key, g, h), bool(known.get(f"{g},{h}", False))
                    )
            except (OSError, ValueError):
                pass
        for g, h in pairs:
            a, b = chain(int(gframe[g])), chain(int(gframe[h]))
            common = set(a) & set(b)
            between = [f for f in a + b if f not in common]
            cols = sorted({int(jcol[f]) for f in between})
            if not cols or len(cols) > 2 or any(jtype[f] != 1 for f in between):
                continue  # the margin below holds for revolute joints only
            key = (self._sweep_key, g, h)
            if key in _NEVER_CACHE:
                if _NEVER_CACHE[key]:
                    never.add((g, h))
                continue
            step = SWEEP_STEP[len(cols) - 1]
            axes = [
                np.append(np.arange(lim.lower[c], lim.upper[c], step), lim.upper[c]) for c in cols
            ]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(cols))
            Q = np.tile(q0, (len(grid), 1))
            Q[:, cols] = grid
            W = sphere_centres(Q, (*self._fk_args, *self._group_args[:3]))
            A = W[:, gstart[g] : gstart[g + 1]]
            B = W[:, gstart[h] : gstart[h + 1]]
            d_min = np.inf
            for k in range(0, len(Q), 4096):
                a_, b_ = A[k : k + 4096], B[k : k + 4096]
                d = (
                    np.linalg.norm(a_[:, :, None, :3] - b_[:, None, :, :3], axis=3)
                    - a_[:, :, None, 3]
                    - b_[:, None, :, 3]
                )
                d_min = min(d_min, float(d.min()))
            P = link_poses(Q, self._fk_args)
            margin = 0.0
            centres = np.concatenate([A[..., :3], B[..., :3]], axis=1)
            for c in cols:
                frame = next(f for f in between if int(jcol[f]) == c)
                lever = np.linalg.norm(centres - P[:, frame, None, :, 3], axis=2).max()
                margin += step / 2 * lever
            ok = bool(d_min > margin)
            _NEVER_CACHE[key] = ok
            if ok:
                never.add((g, h))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({f"{g},{h}": (g, h) in never for g, h in pairs}))
            tmp.replace(path)
        except OSError as exc:
            logger.warning("cannot write %s: %s", path, exc)
        return never

    def _adjacent(self, group_link: list[int]) -> set[tuple[str, str]]:
        """Pairs of group names never checked against each other (see the module doc)."""
        links = self._links
        has_geometry = {
            gl: name
            for name, gl in zip(self.groups, group_link, strict=True)
            if name in links.names
        }
        ignored: set[tuple[str, str]] = set()
        for name, gl in zip(self.groups, group_link, strict=True):
            if name not in links.names:
                continue
            p = int(links.parent[gl])
            while p >= 0 and p not in has_geometry:
                p = int(links.parent[p])
            if p >= 0:
                ignored.add((has_geometry[p], name))
        for att in self.scene.attachments:
            ignored.add((att.link, att.name))
            for t in att.touch_links:
                ignored.add((t, att.name))
        for a, b in self.scene.allowed:
            ignored.add((a, b))
        # Pairs touching at the home configuration.
        q0 = self.arm.configurations.get("home")
        if q0 is None:
            q0 = np.clip(np.zeros(self.arm.dof), self.arm.limits.lower, self.arm.limits.upper)
        W = sphere_centres(
            np.asarray(q0, dtype=np.float64)[None], (*self._fk_args, *self._group_args[:3])
        )[0]
        gstart = self._group_args[1]
        for g in range(len(self.groups)):
            for h in range(g + 1, len(self.groups)):
                A = W[gstart[g] : gstart[g + 1]]
                B = W[gstart[h] : gstart[h + 1]]
                d = (
                    np.linalg.norm(A[:, None, :3] - B[None, :, :3], axis=2)
                    - A[:, None, 3]
                    - B[None, :, 3]
                )
                if np.any(d < 0):
                    ignored.add((self.groups[g], self.groups[h]))
        return ignored

    # ----------------------------------------------------------------- helpers

    def _batch(
        self, q: npt.ArrayLike, field: str = "Q", finite: bool = True
    ) -> NDArray[np.float64]:
        if type(q) is np.ndarray and q.dtype == np.float64 and q.ndim == 2 and q.flags.c_contiguous:
            Q = q
        else:
            try:
                Q = np.ascontiguousarray(q, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{field}: expected (N, {self.arm.dof}) numbers") from exc
            if Q.ndim == 1:
                Q = Q[None]
        if Q.ndim != 2 or Q.shape[1] != self.arm.dof:
            raise InputError(
                f"{field}: expected shape (N, {self.arm.dof}) or ({self.arm.dof},), "
                f"got {np.shape(q)}"
            )
        if finite and not np.isfinite(Q).all():
            raise InputError(f"{field}: every value must be finite")
        return Q

    def _hits(self, Q: NDArray[np.float64], field: str) -> NDArray[np.int64]:
        """Hit codes of checked (N, dof) configurations; InputError on a non-finite value."""
        codes = packed.first_hits(Q, self._packed, len(Q) >= PARALLEL_FROM)
        if len(codes) and codes.min() == -3:
            raise InputError(f"{field}: every value must be finite")
        return codes

    def _names(self, code: int) -> tuple[str, str]:
        M = len(self.scene.obstacles)
        G = len(self.groups)
        g, rest = divmod(int(code), M + G)
        if rest < M:
            return self.groups[g], self.scene.obstacles[rest].name
        return self.groups[g], self.groups[rest - M]

    # ------------------------------------------------------------------- API

    @property
    def packed(self) -> packed.Packed:
        """The model (joint limits, kinematics, spheres, obstacles, pairs, padding) as two
        flat buffers for compiled code (:mod:`planners.collision_packed`); read-only."""
        return self._packed

    @property
    def self_pairs(self) -> tuple[tuple[str, str], ...]:
        """Pairs of links or attachments checked for self-collision."""
        return tuple((self.groups[g], self.groups[h]) for g, h in self._pairs)

    def valid(self, Q: npt.ArrayLike) -> NDArray[np.bool_]:
        """Whether configurations are within the joint limits and free of collision.

        Args:
            Q: (N, dof) configurations [rad or m]; a single (dof,) one counts as N = 1.

        Returns:
            (N,) bool.

        Raises:
            InputError: wrong shape or a non-finite value.
        """
        Q = self._batch(Q, finite=False)
        return self._hits(Q, "Q") == -1

    def explain(self, q: npt.ArrayLike) -> str | None:
        """Why one configuration (dof,) is invalid, or ``None`` when it is valid."""
        Q = self._batch(q, "q")
        code = int(self._hits(Q[:1], "q")[0])
        if code == -1:
            return None
        if code == -2:
            bad = [
                n
                for n, v, lo, hi in zip(self.arm.joint_names, Q[0], *self._limits, strict=True)
                if not lo <= v <= hi
            ]
            return f"outside the joint limits: {', '.join(bad)}"
        a, b = self._names(code)
        return f"collision: {a} - {b}"

    def colliding_pair(self, q: npt.ArrayLike) -> tuple[str, str] | None:
        """The first colliding pair found for one configuration (dof,), or ``None``.

        Joint limits are not considered.
        """
        Q = self._batch(q, "q")
        code = int(packed.first_hits(Q[:1], self._packed_unlimited)[0])
        return None if code < 0 else self._names(code)

    def clearance(self, Q: npt.ArrayLike) -> NDArray[np.float64]:
        """Smallest signed distance of the sphere model per configuration [m].

        Negative values are penetration depths. Robot-to-obstacle distances do not
        subtract the padding: a configuration within the limits is valid exactly when
        its robot-obstacle distances are at least ``scene.padding`` and its self
        distances at least 0. ``inf`` when nothing is checked.

        Args:
            Q: (N, dof) configurations.

        Returns:
            (N,) distances [m].
        """
        Q = self._batch(Q)
        return packed.min_distances(Q, self._packed, len(Q) >= PARALLEL_FROM)[0]

    def clearance_detail(self, q: npt.ArrayLike) -> Contact:
        """The clearance of one configuration (dof,) and the pair that sets it."""
        Q = self._batch(q, "q")
        d, code = packed.min_distances(Q[:1], self._packed)
        if code[0] < 0:
            return Contact(float(d[0]), "", "")
        a, b = self._names(int(code[0]))
        return Contact(float(d[0]), a, b)

    def _steps(
        self, qa: NDArray[np.float64], qb: NDArray[np.float64], resolution: float
    ) -> NDArray[np.int64]:
        if not (math.isfinite(resolution) and resolution > 0):
            raise InputError(f"resolution: expected a positive number [rad], got {resolution!r}")
        span = np.abs(qb - qa).max(axis=1)
        return (np.ceil(span / resolution).astype(np.int64) + 1).clip(min=2)

    def check_motion(
        self, q_a: npt.ArrayLike, q_b: npt.ArrayLike, resolution: float = 0.01
    ) -> bool:
        """Whether the straight joint-space segment from ``q_a`` to ``q_b`` is valid.

        Checks both ends and evenly spaced configurations no more than ``resolution``
        apart in any joint [rad or m], coarse to fine, stopping at the first hit.
        """
        qa = self._batch(q_a, "q_a")[0]
        qb = self._batch(q_b, "q_b")[0]
        if not (math.isfinite(resolution) and resolution > 0):
            raise InputError(f"resolution: expected a positive number [rad], got {resolution!r}")
        n = max(2, math.ceil(float(np.max(np.abs(qb - qa))) / resolution) + 1)
        return packed.first_hit_motion(qa, qb, n, self._packed) == -1

    def check_motions(
        self, QA: npt.ArrayLike, QB: npt.ArrayLike, resolution: float = 0.01
    ) -> NDArray[np.bool_]:
        """:meth:`check_motion` for E segments ``QA[e] -> QB[e]`` (E, dof) at once: (E,) bool."""
        A = self._batch(QA, "QA")
        B = self._batch(QB, "QB")
        if A.shape != B.shape:
            raise InputError(f"QA, QB: expected equal shapes, got {A.shape} and {B.shape}")
        n = self._steps(A, B, resolution)
        parallel = int(n.sum()) >= PARALLEL_FROM
        return packed.first_hit_motions(A, B, n, self._packed, parallel) == -1

    def spheres(self, q: npt.ArrayLike) -> NDArray[np.float64]:
        """World spheres of the model for configurations (N, dof): (N, S, 4) ``x y z r`` [m]."""
        Q = self._batch(q)
        return sphere_centres(Q, (*self._fk_args, *self._group_args[:3]))

    def sphere_groups(self) -> tuple[tuple[str, int, int], ...]:
        """``(name, start, stop)`` of each group's rows in :meth:`spheres`."""
        gstart = self._group_args[1]
        return tuple((n, int(gstart[i]), int(gstart[i + 1])) for i, n in enumerate(self.groups))

    def link_poses(self, q: npt.ArrayLike) -> dict[str, NDArray[np.float64]]:
        """World poses (N, 4, 4) of every link by name, from the model's own kinematics."""
        Q = self._batch(q)
        P = link_poses(Q, self._fk_args)
        out = {}
        for i, n in enumerate(self._links.names):
            T = np.zeros((len(Q), 4, 4))
            T[:, :3] = P[:, self._frame_of[i]]
            T[:, 3, 3] = 1.0
            out[n] = T @ self._T_fl[i]
        return out

    def with_scene(self, scene: Scene) -> CollisionModel:
        """A model of the same arm in another scene (the spheres are cached)."""
        return CollisionModel(self.arm, scene)
