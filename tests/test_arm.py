"""Arm models: forward kinematics against PyBullet, Jacobian, names, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from planners import Arm, InputError, ModelError, UnknownNameError, load_arm
from planners.urdf import parse_urdf
from sim.arm_body import ArmBody
from sim.client import BulletClient


def test_fk_matches_pybullet_on_every_link(
    arm: Arm, client: BulletClient, rng: np.random.Generator
) -> None:
    body = ArmBody.load(client, arm)
    links = [n for n in arm.chain.names if n in body.link_indices]
    Q = arm.limits.sample(rng, 200)
    ours = arm.link_poses(Q, links)
    worst_p = worst_r = 0.0
    for k, q in enumerate(Q):
        body.set_q(q)
        for i, link in enumerate(links):
            ref = body.link_pose(link)
            worst_p = max(worst_p, float(np.linalg.norm(ours[k, i, :3, 3] - ref[:3, 3])))
            rel = Rotation.from_matrix(ours[k, i, :3, :3].T @ ref[:3, :3])
            worst_r = max(worst_r, float(rel.magnitude()))
    assert worst_p <= 1e-6, f"position disagrees by {worst_p} m"
    assert worst_r <= 1e-6, f"orientation disagrees by {worst_r} rad"


def test_single_and_batch_fk_agree(arm: Arm, rng: np.random.Generator) -> None:
    Q = arm.limits.sample(rng, 50)
    batch = arm.fk_batch(Q)
    assert batch.shape == (50, 4, 4)
    for q, T in zip(Q, batch, strict=True):
        np.testing.assert_allclose(arm.fk(q).A, T, atol=1e-12)


def test_base_pose_moves_every_frame(arm: Arm, rng: np.random.Generator) -> None:
    T_world_base = np.eye(4)
    T_world_base[:3, :3] = Rotation.from_euler("z", 0.7).as_matrix()
    T_world_base[:3, 3] = (0.4, -0.2, 0.8)
    moved = arm.with_base(T_world_base)
    q = arm.limits.sample(rng, 1)[0]
    np.testing.assert_allclose(moved.fk(q).A, T_world_base @ arm.fk(q).A, atol=1e-12)
    np.testing.assert_allclose(moved.fk_batch(q)[0], T_world_base @ arm.fk(q).A, atol=1e-12)


def test_jacobian_matches_finite_differences(arm: Arm, rng: np.random.Generator) -> None:
    eps = 1e-7
    for q in arm.limits.sample(rng, 20):
        J = arm.jacobian(q)
        T0 = arm.fk(q).A
        for j in range(arm.dof):
            dq = np.zeros(arm.dof)
            dq[j] = eps
            T1 = arm.fk(q + dq).A
            v = (T1[:3, 3] - T0[:3, 3]) / eps
            w = Rotation.from_matrix(T1[:3, :3] @ T0[:3, :3].T).as_rotvec() / eps
            np.testing.assert_allclose(J[:3, j], v, atol=1e-5)
            np.testing.assert_allclose(J[3:, j], w, atol=1e-5)


def test_named_configurations_and_limits(arm: Arm) -> None:
    for name in ("home", "ready"):
        q = arm.configuration(name)
        assert q.shape == (arm.dof,)
        assert arm.limits.within(q)
        assert not q.flags.writeable
    lim = arm.limits
    assert np.all(lim.velocity > 0) and np.all(lim.acceleration > 0) and np.all(lim.jerk > 0)
    assert np.all(lim.effort > 0)


@pytest.mark.parametrize(
    ("call", "kind", "known"),
    [
        (lambda a: load_arm("ur99"), "arm", "ur5e"),
        (lambda a: load_arm("ur5e", "hammer"), "tool", "screwdriver"),
        (lambda a: a.configuration("nowhere"), "configuration", "ready"),
        (lambda a: a.limits.index("elbow"), "joint", None),
        (lambda a: a.chain.index("link99"), "link", None),
    ],
)
def test_unknown_names_raise_typed_error_listing_valid_names(
    arm: Arm, call, kind: str, known: str | None
) -> None:
    with pytest.raises(UnknownNameError) as info:
        call(arm)
    message = str(info.value)
    assert f"unknown {kind}" in message
    expected = known or (arm.joint_names[0] if kind == "joint" else arm.tcp_link)
    assert expected in message and expected in info.value.valid


def test_bad_configuration_input_is_rejected(arm: Arm) -> None:
    with pytest.raises(InputError, match="q"):
        arm.fk(np.zeros(arm.dof + 1))
    bad = np.zeros(arm.dof)
    bad[0] = np.nan
    with pytest.raises(InputError, match="finite"):
        arm.fk(bad)
    with pytest.raises(InputError, match="shape"):
        arm.fk_batch(np.zeros((3, arm.dof + 2)))
    with pytest.raises(InputError, match="finite"):
        arm.fk_batch(np.stack([np.zeros(arm.dof), bad]))


def test_compiled_chains_follow_the_model_not_its_id() -> None:
    """Arms loaded, freed and loaded again (ids reused) keep their own FK and IK chains."""
    import gc

    from planners import solve_ik

    for name, tool in [("ur5e", "screwdriver"), ("panda", "franka_hand")] * 3:
        arm = load_arm(name, tool)
        q = arm.configuration("ready")
        np.testing.assert_allclose(arm.fk_batch(q)[0], arm.fk(q).A, atol=1e-9)
        assert solve_ik(arm, arm.fk(q), q).success
        del arm
        gc.collect()


def test_missing_and_malformed_urdf_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        parse_urdf(tmp_path / "absent.urdf")
    broken = tmp_path / "broken.urdf"
    broken.write_text("<robot name='x'><link name='a'></robot>")
    with pytest.raises(ModelError, match="not well-formed"):
        parse_urdf(broken)
    no_mesh = tmp_path / "nomesh.urdf"
    no_mesh.write_text(
        "<robot name='x'><link name='a'><visual><geometry><mesh filename='meshes/gone.obj'/>"
        "</geometry></visual></link></robot>"
    )
    with pytest.raises(ModelError, match=r"gone\.obj"):
        parse_urdf(no_mesh)


def test_default_tool_comes_from_the_arm_folder() -> None:
    from planners.arm import default_tool

    assert default_tool("ur5e") == "screwdriver"
    assert default_tool("panda") == "franka_hand"
    with pytest.raises(UnknownNameError, match="panda"):
        default_tool("kuka")
