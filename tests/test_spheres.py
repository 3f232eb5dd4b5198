"""Sphere covers: every link's collision geometry lies inside the union of its spheres."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from planners import Arm
from planners.collision import CollisionModel
from planners.obj import read_obj
from planners.scene import Box, Capsule, Cylinder, Sphere
from planners.spheres import (
    MESH_MARGIN,
    cover_quality,
    link_geometry,
    robot_spheres,
    shape_geometry,
    shape_spheres,
    surface_samples,
)
from planners.urdf import model_dir


def _inside(points: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(points), dtype=bool)
    for c, r in zip(centers, radii, strict=True):
        inside |= np.einsum("pd,pd->p", points - c, points - c) <= (r + 1e-9) ** 2
    return inside


def test_every_link_surface_is_covered(arm: Arm) -> None:
    model = CollisionModel(arm)
    geoms = link_geometry(arm.urdf_text)
    covers = {s.link: s for s in robot_spheres(arm.urdf_text, model._tool_links())}
    assert set(covers) == set(geoms)
    assert set(model.groups) == set(geoms)
    for name, geom in geoms.items():
        cover = covers[name]
        assert 1 <= len(cover.radii) <= 32
        samples = surface_samples(geom, 0.004)
        inside = _inside(samples, np.asarray(cover.centers), np.asarray(cover.radii))
        assert inside.all(), (
            f"{name}: {np.sum(~inside)} of {len(samples)} surface samples uncovered"
        )


def test_mesh_links_are_covered_with_bullets_margin(arm: Arm) -> None:
    """PyBullet checks a mesh's hull grown by 1 mm: points that far out are covered too."""
    geoms = link_geometry(arm.urdf_text)
    covers = {s.link: s for s in robot_spheres(arm.urdf_text, CollisionModel(arm)._tool_links())}
    robot = ET.fromstring(arm.urdf_text)
    names = {
        link.get("name")
        for link in robot.iter("link")
        if link.find("collision/geometry/mesh") is not None
    }
    meshes = [g for g in geoms.values() if g.name in names]
    assert meshes or arm.name != "panda"
    for geom in meshes[::3]:
        for piece in geom.pieces:
            samples = surface_samples(geom, 0.004)
            on = piece.contains(samples, tol=1e-7)
            pts = samples[on]
            # push each point out along the face it lies on
            dist = pts @ piece.equations[:, :3].T + piece.equations[:, 3]
            normals = piece.equations[np.argmax(dist, axis=1), :3]
            out = pts + normals * (MESH_MARGIN - 1e-4)
            cover = covers[geom.name]
            assert _inside(out, np.asarray(cover.centers), np.asarray(cover.radii)).all(), geom.name


def test_over_coverage_is_bounded(arm: Arm) -> None:
    geoms = link_geometry(arm.urdf_text)
    covers = robot_spheres(arm.urdf_text, CollisionModel(arm)._tool_links())
    for cover in (*covers[::4], covers[-1]):  # a sample of links, the tool's last
        q = cover_quality(geoms[cover.link], cover, n=3000)
        assert q["covered"] == 1.0
        assert 1.0 <= q["volume_ratio"] < 3.5, (cover.link, q)
        assert q["max_outward"] < 0.07, (cover.link, q)


def test_mesh_links_use_the_convex_hull_of_the_obj() -> None:
    mesh = read_obj(model_dir("franka_hand") / "meshes" / "collision" / "finger.obj")
    assert mesh.vertices.shape[1] == 3 and mesh.triangles.shape[1] == 3
    assert mesh.triangles.max() < len(mesh.vertices)


def test_cache_returns_the_same_cover(arm: Arm) -> None:
    a = robot_spheres(arm.urdf_text)
    b = robot_spheres(arm.urdf_text)
    assert a is b


@pytest.mark.parametrize(
    "shape",
    [
        Box("b", np.eye(4), [0.05, 0.02, 0.01]),
        Cylinder("c", np.eye(4), 0.02, 0.1),
        Capsule("k", np.eye(4), 0.01, 0.05),
        Sphere("s", np.eye(4), 0.03),
    ],
)
def test_attachment_shapes_are_covered(shape: object) -> None:
    geom = shape_geometry("part", (shape,))  # type: ignore[arg-type]
    cover = shape_spheres("part", (shape,))  # type: ignore[arg-type]
    samples = surface_samples(geom, 0.002)
    assert _inside(samples, np.asarray(cover.centers), np.asarray(cover.radii)).all()
    # Interior too: random points inside the solid.
    rng = np.random.default_rng(0)
    P = rng.uniform(-0.1, 0.1, size=(20000, 3))
    P = P[geom.contains(P)]
    assert _inside(P, np.asarray(cover.centers), np.asarray(cover.radii)).all()
