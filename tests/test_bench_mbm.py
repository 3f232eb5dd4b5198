"""The MotionBenchMaker runner: file checks, set names, and one small run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spatialmath import SE3
from typer.testing import CliRunner

from bench.mbm import grasp_allowance, load_problems, run
from cells.cli import app
from planners import load_arm
from planners.collision import CollisionModel
from planners.errors import InputError, UnknownNameError
from planners.scene import Box, Cylinder, Scene

READY = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
SIDE = [1.2, -0.4, 0.0, -2.2, 0.0, 1.8, 0.785]


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "problems.json"
    path.write_text(json.dumps(data))
    return path


def _problem(obstacles: list[dict]) -> dict:
    return {"index": 1, "start": READY, "goals": [SIDE], "obstacles": obstacles}


def test_unknown_set_lists_the_sets_in_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"problems": {"shelf_x": [_problem([])], "cage_y": [_problem([])]}})
    with pytest.raises(UnknownNameError, match="cage_y, shelf_x"):
        run(path, sets=["table_pick"], timeout=0.1)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"robot": "panda"}, "problems"),
        ({"problems": {"a": [{"start": READY}]}}, "problems.a[0].goals"),
        ({"problems": {"a": [{"start": [0.0], "goals": [SIDE]}]}}, "problems.a[0]"),
        ({"problems": {"a": "x"}}, "problems.a"),
    ],
)
def test_malformed_files_name_the_key(tmp_path: Path, data: object, where: str) -> None:
    with pytest.raises(InputError, match=where.replace("[", r"\[").replace("]", r"\]")):
        load_problems(_write(tmp_path, data))


PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


def test_the_robot_and_joint_names_are_checked(tmp_path: Path) -> None:
    arm = load_arm("panda")
    assert list(arm.joint_names) == PANDA_JOINTS
    problems = {"a": [_problem([])]}
    ours = {"robot": "panda", "joints": PANDA_JOINTS, "problems": problems}
    loaded = load_problems(_write(tmp_path, ours), robot=arm.name, joints=arm.joint_names)
    np.testing.assert_array_equal(loaded["a"][0].start, READY)
    for data, match in [
        ({**ours, "robot": "ur5e"}, r"problems.json:robot: .*'ur5e'.*'panda'"),
        ({**ours, "joints": PANDA_JOINTS[:6]}, r":joints: .*missing: panda_joint7"),
        ({**ours, "joints": [*PANDA_JOINTS[:6], "elbow"]}, r":joints: .*not ours .*: elbow"),
        ({**ours, "joints": [*PANDA_JOINTS[:6], "panda_joint1"]}, r"repeated: panda_joint1"),
        ({**ours, "joints": "panda_joint1"}, r":joints: expected a list"),
    ]:
        with pytest.raises(InputError, match=match):
            load_problems(_write(tmp_path, data), robot=arm.name, joints=arm.joint_names)
    with pytest.raises(InputError, match=":robot: "):
        run(_write(tmp_path, {**ours, "robot": "fr3"}), timeout=0.1, peers=False)


def test_joints_in_another_order_are_reordered_to_the_model(tmp_path: Path) -> None:
    arm = load_arm("panda")
    perm = [6, 0, 5, 1, 4, 2, 3]  # the file's column k holds panda_joint{perm[k] + 1}
    shuffled = {
        "robot": "panda",
        "joints": [PANDA_JOINTS[k] for k in perm],
        "problems": {
            "a": [{"start": [READY[k] for k in perm], "goals": [[SIDE[k] for k in perm]]}]
        },
    }
    loaded = load_problems(_write(tmp_path, shuffled), robot=arm.name, joints=arm.joint_names)
    np.testing.assert_array_equal(loaded["a"][0].start, READY)
    np.testing.assert_array_equal(loaded["a"][0].goals, [SIDE])


def test_a_file_for_another_robot_is_one_typed_error_on_the_command_line(tmp_path: Path) -> None:
    """``cellctl`` turns a RobotCellError into one line and exit code 2 (tests/test_cli.py)."""
    path = _write(tmp_path, {"robot": "ur5e", "problems": {"a": [_problem([])]}})
    result = CliRunner().invoke(app, ["bench", "mbm", "--problems", str(path)])
    assert isinstance(result.exception, InputError)
    message = str(result.exception)
    assert "\n" not in message and ":robot: " in message and "ur5e" in message


def test_a_small_unshipped_set_runs_end_to_end(tmp_path: Path) -> None:
    wall = {"name": "post", "type": "cylinder", "position": [0.45, -0.35, 0.4],
            "quat_xyzw": [0, 0, 0, 1], "radius": 0.05, "length": 0.8}  # fmt: skip
    inside = {"name": "blob", "type": "sphere", "position": [0.3, 0.0, 0.5], "radius": 0.1}
    path = _write(tmp_path, {"problems": {"posts": [_problem([wall]), _problem([inside])]}})
    result = run(path, timeout=0.5, seed=3)  # with the OMPL peer
    assert set(result["sets"]) == {"posts"}
    fields = result["sets"]["posts"]
    assert fields["n"] == 2 and fields["valid"] == 1  # the start of the second is in the blob
    assert fields["solved"] == 1 and fields["verified"] == 1
    assert fields["median_ms"] is not None and fields["median_path_length"] > 0
    assert result["total"]["n"] == 2
    assert "posts[1]" in result["invalid"][0]
    assert fields["invalid_reasons"] == {"start": 1}
    ompl = result["peers"]["ompl"]["sets"]["posts"]
    assert ompl["valid"] == 1 and ompl["solved"] == 1 and ompl["verified"] == 1
    assert result["ratio_median_ompl_over_ours"] > 0


def test_a_bad_problem_is_counted_not_valid_and_the_run_goes_on(tmp_path: Path) -> None:
    post = {"name": "post", "type": "cylinder", "position": [0.45, -0.35, 0.4],
            "quat_xyzw": [0, 0, 0, 1], "radius": 0.05, "length": 0.8}  # fmt: skip
    bad_obstacles = [
        [{"name": "cone", "type": "cone", "position": [0.5, 0.0, 0.5]}],  # unknown type
        [{**post, "position": [0.45, float("nan"), 0.4]}],  # NaN pose
        [{"name": "box", "type": "box", "position": [0.5, 0.0, 0.5]}],  # no half_extents
    ]
    nan_start = {**_problem([post]), "start": [float("nan"), *READY[1:]]}
    problems = [_problem(o) for o in bad_obstacles] + [nan_start, _problem([post])]
    path = tmp_path / "problems.json"
    path.write_text(json.dumps({"problems": {"mixed": problems}}))  # NaN as JSON's NaN
    result = run(path, timeout=0.5, seed=3, peers=False)
    fields = result["sets"]["mixed"]
    assert fields["n"] == 5 and fields["valid"] == 1
    assert fields["solved"] == 1 and fields["verified"] == 1
    assert fields["invalid_reasons"] == {"obstacles": 3, "start": 1}
    assert result["total"]["invalid_reasons"] == {"obstacles": 3, "start": 1}
    assert result["peers"]["ompl"]["sets"]["mixed"]["invalid_reasons"] == fields["invalid_reasons"]
    assert len(result["invalid"]) == 4
    assert "cone" in result["invalid"][0] and "position" in result["invalid"][1]
    assert "half_extents" in result["invalid"][2] and "not finite" in result["invalid"][3]
    json.dumps(result, allow_nan=False)  # the report stays plain JSON


def test_the_fingers_may_touch_the_object_the_goal_grasps() -> None:
    arm = load_arm("panda", "franka_hand", finger_opening=0.0325)
    goal = np.array(SIDE)
    T_world_tcp = arm.fk(goal)
    # A can 62 mm across between fingers 64.7 mm apart: inside the fingers' sphere cover.
    can = Cylinder("can", (T_world_tcp * SE3.Tz(0.01) * SE3.Ry(np.pi / 2)).A, 0.031, 0.04)
    far = Box("far", SE3.Trans(0.0, -0.6, 0.3).A, [0.05, 0.05, 0.05])
    scene = Scene((can, far))
    assert "leftfinger - can" in str(CollisionModel(arm, scene).explain(goal))
    allowed = grasp_allowance(arm, scene, goal[None])
    assert allowed.allowed == {
        ("can", "franka_hand_leftfinger"),
        ("can", "franka_hand_rightfinger"),
    }
    assert CollisionModel(arm, allowed).explain(goal) is None
    # Nothing within reach of the tool centre point: nothing allowed.
    assert grasp_allowance(arm, Scene((far,)), goal[None]).allowed == frozenset()
