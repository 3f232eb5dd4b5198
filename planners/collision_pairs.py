"""Which pairs of sphere groups the fast collision model checks against each other.

**Adjacency** (pairs never checked, :func:`adjacent_pairs`): a link and its nearest
ancestor that has collision geometry (parent-child in the URDF, skipping geometry-less
frames such as a flange), pairs whose spheres overlap at the arm's ``home`` configuration
(zero when it has none, clipped into the limits), an attachment and its link and
``touch_links``, and the pairs the scene allows.

**Never colliding** (:func:`never_colliding`): pairs whose relative pose depends on one
or two revolute joints are swept over those joints' whole range on a grid
(:data:`SWEEP_STEP`); a pair whose smallest sphere distance on the grid exceeds how far a
sphere can move between grid points can never touch and is dropped (cached on disk).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from planners.arm import Arm
from planners.collision_fk import link_poses, sphere_centres
from planners.collision_links import Links
from planners.scene import Scene

__all__ = ["SWEEP_STEP", "adjacent_pairs", "home", "never_colliding"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

SWEEP_STEP = (0.005, 0.04)  # rad, grid steps of the one- and two-joint sweeps
_NEVER_CACHE: dict[tuple[str, int, int], bool] = {}


def home(arm: Arm) -> NDArray[np.float64]:
    """The arm's ``home`` configuration (zero when it has none), clipped into its limits."""
    q0 = arm.configurations.get("home")
    lim = arm.limits
    return np.clip(np.zeros(arm.dof) if q0 is None else np.asarray(q0, float), lim.lower, lim.upper)


def adjacent_pairs(
    links: Links,
    groups: tuple[str, ...],
    group_link: list[int],
    arm: Arm,
    scene: Scene,
    fk_args: tuple,
    group_args: tuple,
) -> set[tuple[str, str]]:
    """Pairs of group names never checked against each other (see the module doc).

    Args:
        links: The arm's links (:func:`planners.collision_links.compile_links`).
        groups: Group names (links with geometry, then attachments).
        group_link: Each group's link index in ``links``.
        arm: The arm (its ``home`` configuration).
        scene: Attachments and allowed pairs.
        fk_args: Kinematics arrays ``(base, jparent, jtype, jcol, jorigin, jaxis)``.
        group_args: Group arrays ``(glink, gstart, spheres, gbound)``.
    """
    has_geometry = {
        gl: name for name, gl in zip(groups, group_link, strict=True) if name in links.names
    }
    ignored: set[tuple[str, str]] = set()
    for name, gl in zip(groups, group_link, strict=True):
        if name not in links.names:
            continue
        p = int(links.parent[gl])
        while p >= 0 and p not in has_geometry:
            p = int(links.parent[p])
        if p >= 0:
            ignored.add((has_geometry[p], name))
    for att in scene.attachments:
        ignored.add((att.link, att.name))
        for t in att.touch_links:
            ignored.add((t, att.name))
    for a, b in scene.allowed:
        ignored.add((a, b))
    # Pairs touching at the home configuration.
    q0 = home(arm)
    W = sphere_centres(np.asarray(q0, dtype=np.float64)[None], (*fk_args, *group_args[:3]))[0]
    gstart = group_args[1]
    for g in range(len(groups)):
        for h in range(g + 1, len(groups)):
            A = W[gstart[g] : gstart[g + 1]]
            B = W[gstart[h] : gstart[h + 1]]
            d = (
                np.linalg.norm(A[:, None, :3] - B[None, :, :3], axis=2)
                - A[:, None, 3]
                - B[None, :, 3]
            )
            if np.any(d < 0):
                ignored.add((groups[g], groups[h]))
    return ignored


def never_colliding(
    pairs: list[tuple[int, int]], arm: Arm, fk_args: tuple, group_args: tuple, digest: str
) -> set[tuple[int, int]]:
    """Pairs whose relative motion is one or two joints and that cannot touch.

    Their spheres are swept over a grid of those joints' whole range (steps
    :data:`SWEEP_STEP`); a pair is dropped when its smallest distance on the grid
    exceeds how far any sphere can move between grid points.
    """
    parent = fk_args[1]
    jtype = fk_args[2]
    jcol = fk_args[3]
    gframe, gstart = group_args[0], group_args[1]
    lim = arm.limits
    q0 = home(arm)

    def chain(f: int) -> list[int]:
        out = [f]
        while parent[out[-1]] >= 0:
            out.append(int(parent[out[-1]]))
        return out

    never: set[tuple[int, int]] = set()
    path = Path(tempfile.gettempdir()) / "robotcell-spheres" / f"never-{digest[:24]}.json"
    if path.is_file():
        try:
            known = json.loads(path.read_text())
            for g, h in pairs:
                _NEVER_CACHE.setdefault((digest, g, h), bool(known.get(f"{g},{h}", False)))
        except (OSError, ValueError):
            pass
    for g, h in pairs:
        a, b = chain(int(gframe[g])), chain(int(gframe[h]))
        common = set(a) & set(b)
        between = [f for f in a + b if f not in common]
        cols = sorted({int(jcol[f]) for f in between})
        if not cols or len(cols) > 2 or any(jtype[f] != 1 for f in between):
            continue  # the margin below holds for revolute joints only
        key = (digest, g, h)
        if key in _NEVER_CACHE:
            if _NEVER_CACHE[key]:
                never.add((g, h))
            continue
        step = SWEEP_STEP[len(cols) - 1]
        axes = [np.append(np.arange(lim.lower[c], lim.upper[c], step), lim.upper[c]) for c in cols]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(cols))
        Q = np.tile(q0, (len(grid), 1))
        Q[:, cols] = grid
        W = sphere_centres(Q, (*fk_args, *group_args[:3]))
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
        P = link_poses(Q, fk_args)
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
