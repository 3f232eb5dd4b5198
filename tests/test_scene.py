"""Scene values: obstacles, attachments, copies, dict input, bad input, URDF fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from spatialmath import SE3

from planners import InputError, UnknownNameError
from planners.scene import (
    Attachment,
    Box,
    Capsule,
    Cylinder,
    Scene,
    Sphere,
    mesh_box,
    obstacle_from_dict,
    pose_from_position_quat,
)
from planners.scene_urdf import obstacles_from_urdf
from planners.urdf import model_dir


def T(x: float, y: float, z: float) -> np.ndarray:
    M = np.eye(4)
    M[:3, 3] = (x, y, z)
    return M


def test_obstacles_are_frozen_with_read_only_arrays() -> None:
    box = Box("b", SE3(0.1, 0.2, 0.3), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(box.pose[:3, 3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        box.half_extents[0] = 1.0
    with pytest.raises(AttributeError):
        box.name = "c"  # type: ignore[misc]
    assert Cylinder("c", T(0, 0, 0), 0.1, 0.2).length == 0.2
    assert Capsule("k", T(0, 0, 0), 0.1, 0.2).radius == 0.1


def test_with_methods_return_copies() -> None:
    s0 = Scene()
    s1 = s0.with_obstacle(Sphere("s", T(0, 0, 1), 0.1))
    s2 = s1.with_padding(0.003).with_allowed([("panda_link7", "s")])
    att = Attachment(
        "part", "panda_link8", T(0, 0, 0.1), (Box("p", T(0, 0, 0), [0.01, 0.01, 0.01]),)
    )
    s3 = s2.with_attachment(att)
    assert s0.obstacles == () and len(s1.obstacles) == 1
    assert s2.padding == 0.003 and s2.is_allowed("s", "panda_link7")
    assert s3.names == ("s", "part")
    assert s3.without_attachment("part").attachments == ()
    assert s3.without_obstacle("s").obstacles == ()
    with pytest.raises(UnknownNameError, match="valid: s"):
        s3.obstacle("nope")


def test_from_dicts_reads_the_mbm_layout() -> None:
    scene = Scene.from_dicts(
        [
            {
                "name": "t",
                "type": "box",
                "position": [1, 0, 0],
                "quat_xyzw": [0, 0, 0, 1],
                "half_extents": [1, 2, 3],
            },
            {
                "name": "c",
                "type": "cylinder",
                "position": [0, 0, 0],
                "quat_xyzw": [0, 0, 0.7071068, 0.7071068],
                "radius": 0.1,
                "length": 0.5,
            },
            {"name": "s", "type": "sphere", "position": [0, 1, 0], "radius": 0.2},
        ],
        padding=0.002,
    )
    assert [type(o).__name__ for o in scene.obstacles] == ["Box", "Cylinder", "Sphere"]
    np.testing.assert_allclose(scene.obstacles[1].pose[:3, 0], [0, 1, 0], atol=1e-6)


def test_bad_obstacle_dicts_name_the_field() -> None:
    with pytest.raises(
        InputError, match=r"obstacles\[0\]\.type: 'cone'.*box, capsule, cylinder, sphere"
    ):
        Scene.from_dicts([{"name": "x", "type": "cone", "position": [0, 0, 0]}])
    with pytest.raises(InputError, match="radius: missing"):
        obstacle_from_dict({"name": "x", "type": "sphere", "position": [0, 0, 0]})
    with pytest.raises(InputError, match="position"):
        obstacle_from_dict(
            {"name": "x", "type": "sphere", "position": [0, float("nan"), 0], "radius": 1}
        )
    with pytest.raises(InputError, match="half_extents"):
        obstacle_from_dict(
            {
                "name": "x",
                "type": "box",
                "position": [0, 0, 0],
                "half_extents": [1, float("nan"), 1],
            }
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda: Box("b", T(0, 0, 0), [0.1, -0.1, 0.1]),
        lambda: Sphere("s", T(0, 0, 0), 0.0),
        lambda: Cylinder("c", T(0, 0, float("nan")), 0.1, 0.1),
        lambda: Capsule("k", np.eye(3), 0.1, 0.1),
        lambda: Scene((Sphere("a", T(0, 0, 0), 0.1), Sphere("a", T(1, 0, 0), 0.1))),
        lambda: Scene(padding=-0.01),
        lambda: Attachment("a", "l", T(0, 0, 0), ()),
        lambda: pose_from_position_quat([0, 0, 0], [0, 0, 0, 0], "p"),
    ],
)
def test_misuse_raises_input_error(make: object) -> None:
    with pytest.raises(InputError):
        make()  # type: ignore[operator]


def test_mesh_box_holds_the_mesh() -> None:
    V = np.random.default_rng(0).normal(size=(50, 3))
    box = mesh_box("m", V, T(1, 0, 0))
    local = V - box.pose[:3, 3] + [1, 0, 0]
    assert np.all(np.abs(local) <= box.half_extents + 1e-12)


def test_fixture_urdf_becomes_boxes() -> None:
    obstacles = obstacles_from_urdf(
        model_dir("midframe_fixture") / "midframe_fixture.urdf", T(0.5, 0, 0)
    )
    assert len(obstacles) == 5 and all(isinstance(o, Box) for o in obstacles)
    plate = obstacles[0]
    assert isinstance(plate, Box)
    np.testing.assert_allclose(plate.half_extents, [0.12, 0.07, 0.01])
    np.testing.assert_allclose(plate.pose[:3, 3], [0.5, 0, 0.01])
