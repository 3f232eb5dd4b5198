"""Conservative sphere covers of link collision geometry, for the fast collision model.

Every ``<collision>`` of a link (box, cylinder, sphere, PyBullet's ``<capsule>``, OBJ
mesh) becomes convex pieces in the link frame:

* a box: itself;
* a cylinder: the circumscribed 24-sided prism (at most 0.9 % of the radius larger);
* a mesh: the convex hull of its vertices (what PyBullet's collision uses too);
* a sphere: itself, kept as an exact sphere; a capsule: its prism plus two end spheres.

The surface of the pieces is cut into triangles no longer than ``max_edge``. Sphere
centres are picked among points sampled inside the pieces (farthest-point start, k-means,
then each centre moved to the sample that minimises ``radius - depth``, its bulge); each
triangle goes to the centre that holds it with the least bulge, and each radius reaches
the farthest vertex of its triangles. A ball that holds a triangle's three vertices holds
the whole triangle, so **every point of every piece's surface lies inside some sphere**:
the cover is conservative by construction, not only at sample points. The number of
spheres per link grows (1, 2, 3, 4, 6, 8, ...) until the cover bulges at most ``tol``
beyond the geometry, or reaches ``max_spheres``.

Over-coverage measured on the shipped models (arm links: ``max_edge`` 6 mm, ``tol``
12 mm, at most 10 spheres; tool and finger links, the ``fine`` ones: 3 mm, 2 mm, at most
32). "Bulge" is the largest distance from the boundary of the union of spheres to the
geometry's surface; "volume" is the union's volume over the geometry's (Monte Carlo):

* Panda + Franka Hand, 172 spheres: links 0-7 bulge 19-40 mm (median 25 mm), volume
  1.6-2.1; hand body 31 spheres, 14.5 mm, 1.6; fingers 31-32 spheres each, 4.7-6.2 mm,
  1.7-1.8.
* UR5e + screwdriver, 130 spheres: links bulge 15-62 mm (the flat base and the long
  multi-cylinder upper arm and forearm are the worst), volume 1.9-2.9; screwdriver body
  31 spheres, 11 mm, 1.7; bit 30 spheres, 2.4 mm, 2.0.

The bulge is largest at a link's flat ends and sharp edges, where a sphere must reach
the corner. Recompute with :func:`cover_quality`.

**PyBullet's margin.** Bullet gives a mesh's convex hull a collision margin: the shape it
checks is the hull grown by 1 mm (a probe 2.000 mm from a face of ``panda_link3``,
``franka_hand_body`` and ``franka_hand_leftfinger`` reads 1.012, 1.004 and 1.001 mm in
``getClosestPoints``). Boxes, spheres and implicit cylinders keep their size. So that the
cover also contains what PyBullet checks, the spheres of a link with a mesh collision get
:data:`MESH_MARGIN` more radius (:func:`robot_spheres`; the numbers above exclude it).

Covers are cached in memory and on disk (``<tmp>/robotcell-spheres/<hash>.json``, keyed
by the collision geometry and the parameters), so loading an arm does not refit them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import ConvexHull, cKDTree
from scipy.spatial.distance import cdist

from planners.arrays import frozen
from planners.errors import ModelError
from planners.obj import read_obj
from planners.scene import Box, Capsule, Cylinder, Obstacle, Sphere
from planners.urdf_pose import origin_pose

__all__ = [
    "ConvexPiece",
    "LinkGeometry",
    "LinkSpheres",
    "cover_quality",
    "link_geometry",
    "robot_spheres",
    "shape_geometry",
    "shape_spheres",
    "surface_samples",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_VERSION = 6  # bump when the fitting changes: invalidates the disk cache
MAX_EDGE = 0.006  # m
TOL = 0.012  # m
MAX_SPHERES = 10
PRISM_SIDES = 24
FINE_MAX_EDGE = 0.003  # m
FINE_TOL = 0.002  # m
FINE_MAX_SPHERES = 32
MESH_MARGIN = 0.0012
"""Radius added to the spheres of links with a mesh collision [m]: Bullet's 1 mm hull
margin and 0.2 mm for its hull and distance tolerances (see the module doc)."""


@dataclass(frozen=True)
class ConvexPiece:
    """A convex polyhedron in a link frame.

    Attributes:
        vertices: (V, 3) [m].
        triangles: (F, 3) vertex indices of the boundary triangles.
        equations: (K, 4) outward half-spaces ``n . x + d <= 0`` of the inside.
    """

    vertices: NDArray[np.float64]
    triangles: NDArray[np.int64]
    equations: NDArray[np.float64]

    @classmethod
    def hull(cls, points: NDArray[np.float64]) -> ConvexPiece:
        """The convex hull of ``points`` (P, 3)."""
        h = ConvexHull(points)
        return cls(frozen(h.points), frozen(h.simplices, np.int64), frozen(h.equations))

    def contains(self, points: NDArray[np.float64], tol: float = 1e-9) -> NDArray[np.bool_]:
        """Whether each of ``points`` (P, 3) is inside: (P,) bool."""
        return np.all(points @ self.equations[:, :3].T + self.equations[:, 3] <= tol, axis=1)


@dataclass(frozen=True)
class LinkGeometry:
    """The collision geometry of one link (or attachment) in its frame.

    Attributes:
        name: Link name.
        pieces: Convex pieces.
        balls: (B, 4) exact spheres ``x, y, z, r`` [m] (URDF spheres, capsule ends).
    """

    name: str
    pieces: tuple[ConvexPiece, ...]
    balls: NDArray[np.float64]

    def contains(self, points: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Whether each of ``points`` (P, 3) lies in the geometry: (P,) bool."""
        inside = np.zeros(len(points), dtype=bool)
        for p in self.pieces:
            inside |= p.contains(points)
        for x, y, z, r in self.balls:
            inside |= np.linalg.norm(points - (x, y, z), axis=1) <= r + 1e-9
        return inside


@dataclass(frozen=True)
class LinkSpheres:
    """Spheres covering one link's geometry, in the link frame.

    Attributes:
        link: Link (or attachment) name.
        centers: (S, 3) sphere centres [m], read-only.
        radii: (S,) radii [m], read-only.
    """

    link: str
    centers: NDArray[np.float64]
    radii: NDArray[np.float64]


def _apply(T: NDArray[np.float64], P: NDArray[np.float64]) -> NDArray[np.float64]:
    return P @ T[:3, :3].T + T[:3, 3]


def _box_points(half: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half


def _prism_points(radius: float, length: float) -> NDArray[np.float64]:
    a = np.linspace(0, 2 * np.pi, PRISM_SIDES, endpoint=False)
    rr = radius / np.cos(np.pi / PRISM_SIDES)
    ring = np.stack([rr * np.cos(a), rr * np.sin(a)], axis=1)
    return np.concatenate([np.c_[ring, np.full(len(a), z)] for z in (-length / 2, length / 2)])


def _pieces(
    kind: str, T: NDArray[np.float64], params: dict[str, Any]
) -> tuple[list[ConvexPiece], list[list[float]]]:
    if kind == "box":
        return [ConvexPiece.hull(_apply(T, _box_points(np.asarray(params["half"]))))], []
    if kind == "sphere":
        c = T[:3, 3]
        return [], [[c[0], c[1], c[2], params["radius"]]]
    if kind in ("cylinder", "capsule"):
        r, h = params["radius"], params["length"]
        pieces = [ConvexPiece.hull(_apply(T, _prism_points(r, h)))]
        balls = []
        if kind == "capsule":
            for z in (-h / 2, h / 2):
                c = _apply(T, np.array([[0.0, 0.0, z]]))[0]
                balls.append([c[0], c[1], c[2], r])
        return pieces, balls
    raise ModelError(f"unsupported collision geometry {kind!r}")


def _urdf_geometry(
    geom: ET.Element, T: NDArray[np.float64], where: str
) -> tuple[list[ConvexPiece], list[list[float]]]:
    for child in geom:
        tag = child.tag
        try:
            if tag == "box":
                size = np.array([float(v) for v in child.get("size", "").split()])
                return _pieces("box", T, {"half": size / 2})
            if tag == "sphere":
                return _pieces("sphere", T, {"radius": float(child.get("radius", "nan"))})
            if tag in ("cylinder", "capsule"):
                p = {
                    "radius": float(child.get("radius", "nan")),
                    "length": float(child.get("length", "nan")),
                }
                return _pieces(tag, T, p)
            if tag == "mesh":
                scale = np.array([float(v) for v in child.get("scale", "1 1 1").split()])
                mesh = read_obj(child.get("filename", ""), scale)
                return [ConvexPiece.hull(_apply(T, np.asarray(mesh.vertices)))], []
        except ValueError as exc:
            raise ModelError(f"{where}: malformed <{tag}>: {exc}") from exc
    raise ModelError(f"{where}: no supported geometry (box, cylinder, sphere, capsule, mesh)")


def link_geometry(urdf_text: str) -> dict[str, LinkGeometry]:
    """The collision geometry of every link that has some, by link name.

    Args:
        urdf_text: Resolved URDF text (absolute mesh paths), e.g. ``arm.urdf_text``.
    """
    robot = ET.fromstring(urdf_text)
    out: dict[str, LinkGeometry] = {}
    for link in robot.iter("link"):
        name = link.get("name", "")
        pieces: list[ConvexPiece] = []
        balls: list[list[float]] = []
        for k, col in enumerate(link.findall("collision")):
            geom = col.find("geometry")
            if geom is None:
                raise ModelError(f"link {name!r}: <collision> {k} without <geometry>")
            where = f"link {name!r} collision {k}"
            p, b = _urdf_geometry(geom, origin_pose(col.find("origin")), where)
            pieces += p
            balls += b
        if pieces or balls:
            out[name] = LinkGeometry(name, tuple(pieces), frozen(np.reshape(balls, (-1, 4))))
    return out


def shape_geometry(name: str, shapes: tuple[Obstacle, ...]) -> LinkGeometry:
    """The geometry of scene shapes (poses in a common frame) as one :class:`LinkGeometry`."""
    pieces: list[ConvexPiece] = []
    balls: list[list[float]] = []
    for s in shapes:
        T = np.asarray(s.pose)
        if isinstance(s, Box):
            p, b = _pieces("box", T, {"half": np.asarray(s.half_extents)})
        elif isinstance(s, Sphere):
            p, b = _pieces("sphere", T, {"radius": s.radius})
        elif isinstance(s, Cylinder):
            p, b = _pieces("cylinder", T, {"radius": s.radius, "length": s.length})
        else:
            assert isinstance(s, Capsule)
            p, b = _pieces("capsule", T, {"radius": s.radius, "length": s.length})
        pieces += p
        balls += b
    return LinkGeometry(name, tuple(pieces), frozen(np.reshape(balls, (-1, 4))))


def _triangles(geom: LinkGeometry, max_edge: float) -> NDArray[np.float64]:
    """Boundary triangles of every piece, bisected until no edge exceeds ``max_edge``: (T, 3, 3)."""
    tris = [p.vertices[p.triangles] for p in geom.pieces]
    T = np.concatenate(tris) if tris else np.zeros((0, 3, 3))
    for _ in range(60):
        # Edge i runs from vertex i to vertex i+1.
        edges = np.linalg.norm(np.roll(T, -1, axis=1) - T, axis=2)
        longest = edges.argmax(axis=1)
        big = edges.max(axis=1) > max_edge
        if not big.any():
            break
        B = T[big]
        i = longest[big]
        n = np.arange(len(B))
        a, b, c = B[n, i], B[n, (i + 1) % 3], B[n, (i + 2) % 3]
        m = (a + b) / 2
        T = np.concatenate([T[~big], np.stack([a, m, c], axis=1), np.stack([m, b, c], axis=1)])
    return T


def surface_samples(geom: LinkGeometry, spacing: float = 0.003) -> NDArray[np.float64]:
    """Points on the surface of a link's geometry, about ``spacing`` [m] apart: (P, 3)."""
    T = _triangles(geom, spacing * 2)
    w = np.array([[i, j, 2 - i - j] for i in range(3) for j in range(3 - i)], dtype=np.float64) / 2
    pts = [np.einsum("wk,tkd->twd", w, T).reshape(-1, 3)] if len(T) else []
    for x, y, z, r in geom.balls:
        n = max(50, int(4 * np.pi * r * r / spacing**2))
        pts.append(_fibonacci(n) * r + (x, y, z))
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def _fibonacci(n: int) -> NDArray[np.float64]:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def _volume_samples(geom: LinkGeometry, n: int = 4000, seed: int = 0) -> NDArray[np.float64]:
    """About ``n`` points uniformly inside the geometry's pieces: (P, 3)."""
    rng = np.random.default_rng(seed)
    out = []
    for p in geom.pieces:
        lo, hi = p.vertices.min(axis=0), p.vertices.max(axis=0)
        P = rng.uniform(lo, hi, size=(n, 3))
        out.append(P[p.contains(P)])
    P = np.concatenate(out) if out else np.zeros((0, 3))
    if len(P) > n:
        P = P[rng.choice(len(P), n, replace=False)]
    return P


def _mesh(T: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Triangles (T, 3, 3) as unique vertices (U, 3) and indices (T, 3)."""
    key = np.round(T.reshape(-1, 3), 9)
    U, inverse = np.unique(key, axis=0, return_inverse=True)
    return U, inverse.reshape(-1, 3).astype(np.int64)


def _fit(
    mesh: tuple[NDArray[np.float64], NDArray[np.int64]],
    V: NDArray[np.float64],
    depth: NDArray[np.float64],
    k: int,
) -> NDArray[np.float64]:
    """k balls covering the triangles of ``mesh``, centred at volume samples V (P, 3).

    A ball centred at depth ``d`` (distance to the surface) with radius ``r`` sticks
    out of the geometry by about ``r - d``; triangles go to the centre where that bulge
    is smallest, and each centre moves to the sample that minimises it for its
    triangles. A ball holds a triangle when it holds its three vertices.

    Returns:
        (k', 4) rows x, y, z, r.
    """
    U, F = mesh
    k = min(k, len(V))
    idx = [int(np.argmax(depth))]
    dist = np.linalg.norm(V - V[idx[0]], axis=1)
    for _ in range(1, k):
        idx.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(V - V[idx[-1]], axis=1))
    C = V[idx]
    for _ in range(10):
        label = np.argmin(cdist(V, C, "sqeuclidean"), axis=1)
        C = np.array(
            [V[label == j].mean(axis=0) if np.any(label == j) else C[j] for j in range(len(C))]
        )
    nearest = np.argmin(cdist(V, C, "sqeuclidean"), axis=0)
    C, D = V[nearest], depth[nearest]
    best: NDArray[np.float64] | None = None
    best_cost = np.inf
    for _ in range(6):
        vr = cdist(U, C)
        reach = np.maximum(np.maximum(vr[F[:, 0]], vr[F[:, 1]]), vr[F[:, 2]])
        label = np.argmin(reach - D, axis=1)
        balls = []
        newC, newD = C.copy(), D.copy()
        for j in range(len(C)):
            member = label == j
            if not np.any(member):
                continue
            balls.append([*C[j], reach[member, j].max() * (1 + 1e-9) + 1e-9])
            used = np.zeros(len(U), dtype=bool)
            used[F[member].ravel()] = True
            P = U[used]
            if len(P) > 8:
                with contextlib.suppress(Exception):  # flat or degenerate: keep every point
                    P = P[ConvexHull(P).vertices]
            i = int(np.argmin(cdist(V, P).max(axis=1) - depth))
            newC[j], newD[j] = V[i], depth[i]
        B = np.array(balls)
        cost = float(np.max(B[:, 3] - D[np.unique(label)]))
        if cost < best_cost - 1e-6:
            best, best_cost = B, cost
        else:
            break
        C, D = newC, newD
    assert best is not None
    return best


def _bulge(geom: LinkGeometry, balls: NDArray[np.float64], tree: cKDTree) -> float:
    """Largest distance from the union's boundary to the geometry's surface samples [m]."""
    worst = 0.0
    dirs = _fibonacci(80)
    for i, (x, y, z, r) in enumerate(balls):
        P = dirs * r + (x, y, z)
        others = np.delete(balls, i, axis=0)
        if len(others):
            inner = (
                np.linalg.norm(P[:, None, :] - others[None, :, :3], axis=2)
                < others[None, :, 3] - 1e-9
            )
            P = P[~inner.any(axis=1)]
        if len(P) == 0:
            continue
        d, _ = tree.query(P)
        d[geom.contains(P)] = 0.0
        worst = max(worst, float(d.max()))
    return worst


def _cover(
    geom: LinkGeometry, max_edge: float, tol: float, max_spheres: int
) -> NDArray[np.float64]:
    T = _triangles(geom, max_edge)
    exact = np.asarray(geom.balls).reshape(-1, 4)
    if len(T) == 0:
        return exact
    mesh = _mesh(T)
    tree = cKDTree(surface_samples(geom, min(0.003, max_edge / 2)))
    V = _volume_samples(geom, 3000)
    if len(V) == 0:
        V = T.mean(axis=1)
    depth, _ = tree.query(V)
    best: NDArray[np.float64] | None = None
    budget = max(1, max_spheres - len(exact))
    for k in sorted(
        {k for k in (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 56) if k < budget} | {budget}
    ):
        balls = np.concatenate([_fit(mesh, V, depth, k), exact])
        best = balls
        if _bulge(geom, balls, tree) <= tol:
            break
    assert best is not None
    return best


def cover_quality(
    geom: LinkGeometry, spheres: LinkSpheres, n: int = 40_000, seed: int = 0
) -> dict[str, float]:
    """How much a cover over-covers its geometry.

    Returns:
        ``max_outward`` [m]: largest distance from the union's boundary to the
        geometry's surface; ``volume_ratio``: union volume over geometry volume
        (Monte Carlo with ``n`` points); ``covered``: fraction of surface samples inside
        the union (1.0 for a conservative cover).
    """
    balls = np.c_[spheres.centers, spheres.radii]
    samples = surface_samples(geom)
    rng = np.random.default_rng(seed)
    lo = (balls[:, :3] - balls[:, 3:]).min(axis=0)
    hi = (balls[:, :3] + balls[:, 3:]).max(axis=0)
    P = rng.uniform(lo, hi, size=(n, 3))
    in_union = _inside_union(P, balls)
    in_geom = geom.contains(P)
    return {
        "max_outward": _bulge(geom, balls, cKDTree(samples)),
        "volume_ratio": float(in_union.sum() / max(1, in_geom.sum())),
        "covered": float(_inside_union(samples, balls).mean()),
    }


def _inside_union(P: NDArray[np.float64], balls: NDArray[np.float64]) -> NDArray[np.bool_]:
    inside = np.zeros(len(P), dtype=bool)
    for x, y, z, r in balls:
        inside |= np.linalg.norm(P - (x, y, z), axis=1) <= r
    return inside


_MEMORY: dict[str, tuple[LinkSpheres, ...]] = {}


def _cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "robotcell-spheres"


def robot_spheres(
    urdf_text: str,
    fine: frozenset[str] = frozenset(),
    max_edge: float = MAX_EDGE,
    tol: float = TOL,
    max_spheres: int = MAX_SPHERES,
) -> tuple[LinkSpheres, ...]:
    """Spheres covering every link of a resolved URDF that has collision geometry.

    Cached in memory and on disk by the geometry and parameters.

    Args:
        urdf_text: Resolved URDF text, e.g. ``arm.urdf_text``.
        fine: Links covered tighter (:data:`FINE_TOL`, up to :data:`FINE_MAX_SPHERES`
            spheres): the tool and fingers, which come closest to obstacles.
        max_edge: Longest triangle edge before clustering [m].
        tol: Allowed bulge beyond the geometry [m]; more spheres until met.
        max_spheres: Largest number of spheres per link.

    Returns:
        One :class:`LinkSpheres` per link with geometry, in URDF order; the spheres of
        links with a mesh collision are :data:`MESH_MARGIN` larger than the fit.
    """
    geoms = link_geometry(urdf_text)
    h = hashlib.sha256()
    h.update(f"v{_VERSION} {max_edge} {tol} {max_spheres} {FINE_TOL} {FINE_MAX_SPHERES}".encode())
    h.update(" ".join(sorted(fine)).encode())
    for g in geoms.values():
        h.update(g.name.encode())
        for p in g.pieces:
            h.update(np.ascontiguousarray(p.vertices).tobytes())
        h.update(np.ascontiguousarray(g.balls).tobytes())
    key = h.hexdigest()[:24]
    if key in _MEMORY:
        return _MEMORY[key]
    path = _cache_dir() / f"{key}.json"
    result: tuple[LinkSpheres, ...] | None = None
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            result = tuple(
                LinkSpheres(d["link"], frozen(d["centers"]), frozen(d["radii"])) for d in data
            )
            if [s.link for s in result] != list(geoms):
                result = None
        except (OSError, ValueError, KeyError, TypeError):
            result = None
    if result is None:
        logger.info("fitting sphere covers of %d links", len(geoms))
        out = []
        for g in geoms.values():
            if g.name in fine:
                balls = _cover(g, FINE_MAX_EDGE, FINE_TOL, FINE_MAX_SPHERES)
            else:
                balls = _cover(g, max_edge, tol, max_spheres)
            out.append(LinkSpheres(g.name, frozen(balls[:, :3]), frozen(balls[:, 3])))
        result = tuple(out)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            data_out = [
                {"link": s.link, "centers": s.centers.tolist(), "radii": s.radii.tolist()}
                for s in result
            ]
            tmp.write_text(json.dumps(data_out))
            tmp.replace(path)
        except OSError as exc:
            logger.warning("cannot write the sphere cache %s: %s", path, exc)
    meshes = _mesh_links(urdf_text)
    result = tuple(
        LinkSpheres(s.link, s.centers, frozen(s.radii + MESH_MARGIN)) if s.link in meshes else s
        for s in result
    )
    _MEMORY[key] = result
    return result


def _mesh_links(urdf_text: str) -> frozenset[str]:
    """Links with at least one ``<mesh>`` collision."""
    robot = ET.fromstring(urdf_text)
    return frozenset(
        link.get("name", "")
        for link in robot.iter("link")
        if any(col.find("geometry/mesh") is not None for col in link.findall("collision"))
    )


_SHAPES: dict[bytes, NDArray[np.float64]] = {}


def shape_spheres(name: str, shapes: tuple[Obstacle, ...]) -> LinkSpheres:
    """Spheres covering scene shapes (an attachment's), in the shapes' common frame."""
    h = hashlib.sha256()
    for s in shapes:
        h.update(type(s).__name__.encode())
        h.update(np.asarray(s.pose).tobytes())
        for attr in ("half_extents", "radius", "length"):
            if hasattr(s, attr):
                h.update(np.asarray(getattr(s, attr), dtype=np.float64).tobytes())
    key = h.digest()
    if key not in _SHAPES:
        _SHAPES[key] = _cover(shape_geometry(name, shapes), MAX_EDGE, TOL / 2, MAX_SPHERES)
    balls = _SHAPES[key]
    return LinkSpheres(name, frozen(balls[:, :3]), frozen(balls[:, 3]))
