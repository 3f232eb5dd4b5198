"""The fast collision model: link spheres against scene primitives, batched.

:class:`CollisionModel` covers every link with collision geometry (arm, tool, fingers at
the arm's ``finger_opening``) and every attachment with spheres (:mod:`planners.spheres`)
and checks, in one compiled kernel per batch of configurations (N, dof):

* joint position limits;
* robot and attachment spheres against the scene's obstacles, keeping ``scene.padding``;
* self-collision between sphere groups that are not adjacent (padding 0: the spheres
  already over-cover);
* attachments against the arm's links except the attachment's link and ``touch_links``.

**Pairs** (:mod:`planners.collision_pairs`): adjacent links, pairs touching at the
arm's ``home`` configuration, an attachment and its link and ``touch_links``, and the
pairs the scene allows are never checked (:attr:`CollisionModel.ignored`); pairs that a
sweep of the one or two joints between them proves apart are dropped
(:attr:`CollisionModel.never`). :class:`sim.exact.ExactChecker` checks the same pairs
(:attr:`CollisionModel.self_pairs`).

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
core.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners import collision_packed as packed
from planners.arm import Arm
from planners.collision_fk import link_poses, sphere_centres
from planners.collision_links import compile_links, fold, tool_links
from planners.collision_pairs import adjacent_pairs, never_colliding
from planners.errors import InputError, UnknownNameError
from planners.scene import Box, Capsule, Cylinder, Scene, Sphere
from planners.spheres import LinkSpheres, robot_spheres, shape_spheres

__all__ = ["CollisionModel", "Contact"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

PARALLEL_FROM = 1024
"""Configurations (or segment samples) per call from which the kernels run on every core:
below, a parallel call gains nothing on a busy 2-core machine (see
:mod:`planners.collision_packed`; 256 configurations: 0.51 ms parallel, 0.48 serial)."""
CLUSTER_RADIUS = 0.25  # m, largest bounding sphere of a run of obstacles


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
        self._links = compile_links(arm)
        links = self._links
        index = {n: i for i, n in enumerate(links.names)}
        groups: list[LinkSpheres] = [
            s for s in robot_spheres(arm.urdf_text, self._tool_links()) if s.link in index
        ]
        group_link = [index[s.link] for s in groups]
        frame_of, T_fl, frames = fold(links)
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
        ignored = adjacent_pairs(
            links, self.groups, group_link, arm, self.scene, self._fk_args, self._group_args
        )
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
        never = never_colliding(pairs, arm, self._fk_args, self._group_args, self._sweep_key)
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
        return tool_links(self._links, self.arm.flange_link)

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
        parallel = len(n) > 1 and int(n.sum()) >= PARALLEL_FROM
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
