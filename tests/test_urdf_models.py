"""Every model folder under urdf/ loads and describes itself consistently.

Modelled on mujoco_menagerie's ``test/model_test.py``: one parametrized check per folder
(README, URDF resolves, PyBullet and roboticstoolbox load it, masses, metadata files), plus
the UR5e's kinematics against UR's published standard-DH parameters.
"""

from __future__ import annotations

import io
import math
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pybullet
import pytest

from planners.urdf import model_dir, model_names, resolve_urdf, resolved_urdf_file

MODELS = model_names()
ARMS = [n for n in MODELS if (model_dir(n) / "arm.toml").is_file()]
TOOLS = [n for n in MODELS if (model_dir(n) / "tool.toml").is_file()]
PARTS = [n for n in MODELS if (model_dir(n) / "part.toml").is_file()]


def _urdf_path(name: str) -> Path:
    return model_dir(name) / f"{name}.urdf"


def _text(name: str) -> str:
    return resolve_urdf(_urdf_path(name))


def _toml(name: str, kind: str) -> dict:
    with open(model_dir(name) / f"{kind}.toml", "rb") as f:
        return tomllib.load(f)


def _joints(text: str) -> dict[str, dict]:
    """Joint name -> type, parent, child, lower, upper (limits None when absent)."""
    out = {}
    for j in ET.fromstring(text).iter("joint"):
        limit = j.find("limit")
        lower = upper = None
        if limit is not None and j.get("type") in ("revolute", "prismatic"):
            lower, upper = float(limit.get("lower", 0.0)), float(limit.get("upper", 0.0))
        out[j.get("name")] = {
            "type": j.get("type"),
            "parent": j.find("parent").get("link"),
            "child": j.find("child").get("link"),
            "lower": lower,
            "upper": upper,
        }
    return out


def _links(text: str) -> set[str]:
    return {link.get("name") for link in ET.fromstring(text).iter("link")}


def _movable_chain(text: str, base: str, tip: str) -> list[str]:
    """Movable joint names from ``base`` to ``tip``, base first."""
    by_child = {j["child"]: (name, j) for name, j in _joints(text).items()}
    chain, link = [], tip
    while link != base:
        assert link in by_child, f"{tip} is not below {base}"
        name, j = by_child[link]
        if j["type"] != "fixed":
            chain.append(name)
        link = j["parent"]
    return chain[::-1]


@pytest.fixture
def bullet() -> Iterator[int]:
    """A fresh PyBullet DIRECT client, disconnected afterwards."""
    cid = pybullet.connect(pybullet.DIRECT)
    try:
        yield cid
    finally:
        pybullet.disconnect(cid)


def _load(name: str, cid: int, fixed: bool = True) -> int:
    return pybullet.loadURDF(
        str(resolved_urdf_file(_text(name))), useFixedBase=fixed, physicsClientId=cid
    )


def test_models_found() -> None:
    assert {"ur5e", "panda", "franka_hand", "screwdriver"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_readme_and_urdf(name: str) -> None:
    folder = model_dir(name)
    assert (folder / "README.md").is_file()
    assert _urdf_path(name).is_file()
    text = _text(name)
    assert ET.fromstring(text).get("name") == name


@pytest.mark.parametrize("name", MODELS)
def test_loads_in_pybullet(name: str, bullet: int) -> None:
    body = _load(name, bullet, fixed=False)  # a fixed base reports mass 0
    n = pybullet.getNumJoints(body, physicsClientId=bullet)
    assert n == len(_joints(_text(name)))
    if n == 0:  # a single-link part: it must have mass and collision geometry
        assert pybullet.getDynamicsInfo(body, -1, physicsClientId=bullet)[0] > 0
        assert pybullet.getCollisionShapeData(body, -1, physicsClientId=bullet)
    for j in range(n):
        info = pybullet.getJointInfo(body, j, physicsClientId=bullet)
        if info[2] == pybullet.JOINT_FIXED:
            continue
        link = info[12].decode()
        assert pybullet.getDynamicsInfo(body, j, physicsClientId=bullet)[0] > 0, link
        assert pybullet.getCollisionShapeData(body, j, physicsClientId=bullet), link


@pytest.mark.parametrize("name", MODELS)
def test_loads_in_roboticstoolbox(name: str) -> None:
    import roboticstoolbox
    from roboticstoolbox.models.URDF.URDFRobot import URDF_file

    elinks, robot_name, *_ = URDF_file(io.StringIO(_text(name)))
    robot = roboticstoolbox.Robot(elinks, name=robot_name)
    assert robot.name == name


@pytest.mark.parametrize("name", ARMS)
def test_arm_toml(name: str) -> None:
    meta = _toml(name, "arm")
    text = _text(name)
    assert meta["name"] == name
    assert (model_dir(name) / meta["urdf"]).resolve() == _urdf_path(name).resolve()
    links = _links(text)
    assert meta["base_link"] in links
    assert meta["flange_link"] in links
    chain = _movable_chain(text, meta["base_link"], meta["flange_link"])
    assert len(meta["acceleration"]) == len(chain)
    assert len(meta["jerk"]) == len(chain)
    assert all(v > 0 for v in meta["acceleration"] + meta["jerk"])
    joints = _joints(text)
    assert {"home", "ready"} <= set(meta["configurations"])
    for cname, q in meta["configurations"].items():
        assert len(q) == len(chain), cname
        for jname, v in zip(chain, q, strict=True):
            lo, hi = joints[jname]["lower"], joints[jname]["upper"]
            if lo is not None:
                assert lo <= v <= hi, (cname, jname, v)


@pytest.mark.parametrize("name", TOOLS)
def test_tool_toml(name: str) -> None:
    meta = _toml(name, "tool")
    text = _text(name)
    links, joints = _links(text), _joints(text)
    assert meta["name"] == name
    assert meta["kind"] in ("gripper", "screwdriver")
    assert (model_dir(name) / meta["urdf"]).resolve() == _urdf_path(name).resolve()
    assert meta["mount_link"] in links
    assert meta["tcp_link"] in links
    assert meta["mount_link"] not in {j["child"] for j in joints.values()}, "mount is the root"
    assert all(n.startswith(name + "_") for n in links | set(joints)), "names are prefixed"
    for jname in meta.get("finger_joints", []):
        j = joints[jname]
        assert j["type"] == "prismatic"
        for v in (meta["open"], meta["closed"]):
            assert j["lower"] <= v <= j["upper"]
    if meta["kind"] == "gripper":
        assert len(meta["finger_joints"]) == 2
    if "spindle_joint" in meta:
        assert joints[meta["spindle_joint"]]["type"] == "continuous"


@pytest.mark.parametrize("name", PARTS)
def test_part_toml(name: str) -> None:
    meta = _toml(name, "part")
    assert meta["name"] == name
    assert meta["base_link"] == f"{name}_base"
    assert meta["base_link"] in _links(_text(name))
    for key in ("slots", "pockets"):
        for entry in meta.get(key, []):
            assert entry["part"] in MODELS
            assert len(entry["position"]) == 3


UR5E_D = (0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996)
UR5E_A = (0.0, -0.425, -0.3922, 0.0, 0.0, 0.0)
UR5E_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)


def _ur5e_dh(q: np.ndarray) -> np.ndarray:
    """Base-to-flange transform, product of Rz(theta) Tz(d) Tx(a) Rx(alpha)."""
    T = np.eye(4)
    for theta, d, a, alpha in zip(q, UR5E_D, UR5E_A, UR5E_ALPHA, strict=True):
        ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
        T = T @ np.array(
            [
                [ct, -st * ca, st * sa, a * ct],
                [st, ct * ca, -ct * sa, a * st],
                [0.0, sa, ca, d],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
    return T


def _random_ur5e_configurations() -> np.ndarray:
    return np.random.default_rng(20240611).uniform(-math.pi, math.pi, (20, 6))


def test_ur5e_urdf_matches_dh() -> None:
    """The URDF encodes the DH chain exactly: double-precision FK (roboticstoolbox), 1e-9."""
    import roboticstoolbox
    from roboticstoolbox.models.URDF.URDFRobot import URDF_file

    elinks, robot_name, *_ = URDF_file(io.StringIO(_text("ur5e")))
    robot = roboticstoolbox.Robot(elinks, name=robot_name)
    assert robot.n == 6
    for q in _random_ur5e_configurations():
        T = robot.fkine(q, end="flange", start="base_link").A
        np.testing.assert_allclose(T, _ur5e_dh(q), rtol=0, atol=1e-9)


def test_ur5e_pybullet_matches_dh(bullet: int) -> None:
    """PyBullet's flange frame equals the DH product; PyBullet computes in single precision."""
    body = _load("ur5e", bullet)
    n = pybullet.getNumJoints(body, physicsClientId=bullet)
    infos = [pybullet.getJointInfo(body, j, physicsClientId=bullet) for j in range(n)]
    movable = [j for j, info in enumerate(infos) if info[2] != pybullet.JOINT_FIXED]
    flange = next(j for j, info in enumerate(infos) if info[12].decode() == "flange")
    assert [infos[j][1].decode() for j in movable] == [
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "elbow_joint",
        "wrist_1_joint",
        "wrist_2_joint",
        "wrist_3_joint",
    ]
    for q in _random_ur5e_configurations():
        for j, v in zip(movable, q, strict=True):
            pybullet.resetJointState(body, j, v, physicsClientId=bullet)
        state = pybullet.getLinkState(
            body, flange, computeForwardKinematics=True, physicsClientId=bullet
        )
        rot = np.array(pybullet.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        T = _ur5e_dh(q)
        np.testing.assert_allclose(state[4], T[:3, 3], rtol=0, atol=1e-6)
        np.testing.assert_allclose(rot, T[:3, :3], rtol=0, atol=1e-6)


def test_ur5e_ready_pose() -> None:
    q = np.array(_toml("ur5e", "arm")["configurations"]["ready"])
    T = _ur5e_dh(q)
    np.testing.assert_allclose(T[:3, 3], [0.4, 0.0, 0.3], atol=1e-5)
    np.testing.assert_allclose(T[:3, 2], [0.0, 0.0, -1.0], atol=1e-5)


def test_screw_process_runs_within_the_spindle_limit() -> None:
    from cells.tasks import ScrewProcess
    from planners.urdf import model_dir, parse_urdf

    robot = parse_urdf(model_dir("screwdriver") / "screwdriver.urdf")
    joint = next(j for j in robot.iter("joint") if j.get("name") == "screwdriver_spindle_joint")
    limit = joint.find("limit")
    assert limit is not None
    process = ScrewProcess()
    fastest = max(process.rundown_rpm, process.final_rpm) * 2 * np.pi / 60  # rad/s
    assert fastest <= float(limit.get("velocity", "0"))
