"""The batched sphere model against PyBullet's exact geometry, planted faults, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planners import Arm, InputError, UnknownNameError
from planners import collision_packed as packed
from planners.collision import CollisionModel
from planners.scene import Attachment, Box, Capsule, Cylinder, Scene, Sphere
from sim.client import BulletClient
from sim.exact import ExactChecker


def T(x: float, y: float, z: float) -> np.ndarray:
    M = np.eye(4)
    M[:3, 3] = (x, y, z)
    return M


def clutter(padding: float = 0.0) -> Scene:
    return Scene(
        (
            Box("table", T(0.5, 0.0, 0.2), [0.2, 0.3, 0.02]),
            Cylinder("post", T(-0.3, 0.3, 0.4), 0.05, 0.4),
            Sphere("ball", T(0.0, -0.4, 0.5), 0.08),
            Capsule("cable", T(0.3, 0.3, 0.6), 0.04, 0.3),
        ),
        padding=padding,
    )


def test_own_kinematics_match_the_arm(arm: Arm, rng: np.random.Generator) -> None:
    model = CollisionModel(arm)
    Q = arm.limits.sample(rng, 5)
    mine = model.link_poses(Q)
    theirs = arm.link_poses(Q)
    for i, name in enumerate(arm.chain.names):
        np.testing.assert_allclose(mine[name], theirs[:, i], atol=1e-9)


def test_no_false_free_against_the_exact_checker(
    arm: Arm, client: BulletClient, rng: np.random.Generator
) -> None:
    scene = clutter()
    model = CollisionModel(arm, scene)
    exact = ExactChecker(client, arm, scene, model)
    Q = arm.limits.sample(rng, 150)
    valid = model.valid(Q)
    colliding = np.array([exact.in_collision(q) for q in Q])
    assert colliding.any() and (~colliding).any()
    assert not np.any(valid & colliding), Q[valid & colliding]
    # Not absurdly conservative either: about half the exactly free configurations pass
    # (random ones sit close to self-collision; the cover adds Bullet's 1 mm mesh margin).
    assert valid[~colliding].mean() > 0.45
    # Its clearance is a lower bound on the exact distance where both are positive.
    d_model = model.clearance(Q[:40])
    d_exact = np.array([exact.distance(q) for q in Q[:40]])
    both = (d_model > 0) & (d_exact > 0)
    assert np.all(d_model[both] <= d_exact[both] + 1e-6)


def test_padding_only_removes_configurations(arm: Arm, rng: np.random.Generator) -> None:
    Q = arm.limits.sample(rng, 500)
    loose = CollisionModel(arm, clutter(0.0)).valid(Q)
    tight = CollisionModel(arm, clutter(0.02)).valid(Q)
    assert np.all(loose >= tight) and loose.sum() > tight.sum()


def test_valid_matches_clearance(arm: Arm, rng: np.random.Generator) -> None:
    scene = clutter(0.005)
    model = CollisionModel(arm, scene)
    Q = arm.limits.sample(rng, 300)
    valid = model.valid(Q)
    d = model.clearance(Q)
    # Obstacles keep the padding, self pairs 0: valid implies clearance >= 0.
    assert np.all(d[valid] >= 0.0)
    assert np.all(~valid[d < 0])
    assert np.all(model.valid(Q[:5]) == np.array([model.valid(q)[0] for q in Q[:5]]))


def test_arm_through_a_box_is_invalid_with_its_pair(arm: Arm, client: BulletClient) -> None:
    q = arm.configuration("home")
    link = arm.chain.names[4]  # a middle link of the arm
    centre = arm.link_poses(q[None], [link])[0, 0, :3, 3]
    scene = Scene((Box("crate", T(*centre), [0.03, 0.03, 0.03]),))
    model = CollisionModel(arm, scene)
    assert not model.valid(q)[0]
    reason = model.explain(q)
    assert reason is not None and "crate" in reason
    detail = model.clearance_detail(q)
    assert detail.distance < 0 and "crate" in (detail.a, detail.b)
    assert CollisionModel(arm, Scene()).explain(q) is None
    exact = ExactChecker(client, arm, scene, model)
    assert exact.in_collision(q) and exact.distance(q) < 0
    pair = exact.collision_pair(q)
    assert pair is not None and "crate" in pair


def test_self_collision_is_caught(arm: Arm, client: BulletClient, rng: np.random.Generator) -> None:
    model = CollisionModel(arm)
    exact = ExactChecker(client, arm, Scene(), model)
    Q = arm.limits.sample(rng, 200)
    hits = [q for q in Q if exact.in_collision(q)]
    assert len(hits) >= 3  # folded configurations exist among random ones
    assert not model.valid(np.array(hits)).any()
    reason = model.explain(hits[0])
    assert reason is not None and reason.startswith("collision:")
    # Adjacent links are never checked against each other.
    for a, b in model.self_pairs:
        assert (a, b) not in model.ignored and (b, a) not in model.ignored


def test_panda_folded_onto_itself(client: BulletClient) -> None:
    from planners import load_arm

    arm = load_arm("panda", "franka_hand")
    model = CollisionModel(arm)
    q = np.array([0.0, 1.2, 0.0, -3.0, 0.0, 0.3, 0.785])  # the hand driven into the upper arm
    exact = ExactChecker(client, arm, Scene(), model)
    assert exact.in_collision(q)
    assert not model.valid(q)[0]
    pair = model.colliding_pair(q)
    assert pair is not None and all(n.startswith(("panda", "franka")) for n in pair)


def test_limits_are_checked(arm: Arm) -> None:
    model = CollisionModel(arm)
    q = np.array(arm.configuration("home"), dtype=float)
    q[1] = arm.limits.upper[1] + 0.1
    assert not model.valid(q)[0]
    assert "joint limits" in (model.explain(q) or "")


def test_attachment_collides_and_can_be_allowed(client: BulletClient) -> None:
    from planners import load_arm

    arm = load_arm("panda", "franka_hand")
    q = arm.configuration("home")
    part = Attachment(
        "part",
        arm.tcp_link,
        T(0, 0, 0.03),
        (Box("p", T(0, 0, 0), [0.02, 0.02, 0.02]),),
        touch_links=frozenset({"franka_hand_leftfinger", "franka_hand_rightfinger"}),
    )
    where = arm.fk_batch(q)[0] @ T(0, 0, 0.03)
    scene = Scene((Sphere("bump", where, 0.01),), attachments=(part,))
    model = CollisionModel(arm, scene)
    assert not model.valid(q)[0]
    assert model.colliding_pair(q) == ("part", "bump")
    exact = ExactChecker(client, arm, scene, model)
    assert exact.collision_pair(q) == ("part", "bump")
    allowed = CollisionModel(arm, scene.with_allowed([("part", "bump")]))
    assert allowed.valid(q)[0]
    with pytest.raises(UnknownNameError):
        CollisionModel(
            arm, Scene(attachments=(Attachment("x", "no_link", T(0, 0, 0), part.shapes),))
        )


def test_check_motion(arm: Arm, client: BulletClient) -> None:
    q = np.array(arm.configuration("home"), dtype=float)
    centre = arm.link_poses(q[None], [arm.flange_link])[0, 0, :3, 3]
    crate = Box("crate", T(*centre), [0.03, 0.03, 0.03])
    model = CollisionModel(arm, Scene((crate,)))
    far = q.copy()
    far[0] += 1.5
    beyond = q.copy()
    beyond[0] -= 1.5
    assert model.valid(np.array([far, beyond])).all()
    assert not model.check_motion(far, beyond, 0.01)  # sweeps through the crate
    assert model.check_motion(far, far + 0.05, 0.01)
    ok = model.check_motions(np.array([far, far]), np.array([beyond, far + 0.05]), 0.01)
    assert ok.tolist() == [False, True]
    exact = ExactChecker(client, arm, Scene((crate,)), model)
    hit = exact.first_collision(np.array([far, beyond]), 0.01)
    assert hit is not None and hit[0] == 0 and "crate" in hit[1]
    assert exact.first_collision(np.array([far, far + 0.05]), 0.01) is None
    n_bodies = client.getNumBodies()
    exact.close()
    assert client.getNumBodies() == n_bodies - 2  # the arm and the crate


def test_bad_input_raises(arm: Arm) -> None:
    model = CollisionModel(arm)
    with pytest.raises(InputError, match="finite"):
        model.valid(np.full(arm.dof, np.nan))
    with pytest.raises(InputError, match="shape"):
        model.valid(np.zeros((3, arm.dof + 1)))
    with pytest.raises(InputError):
        model.clearance([[1, 2]])
    with pytest.raises(InputError, match="resolution"):
        model.check_motion(np.zeros(arm.dof), np.zeros(arm.dof), 0.0)
    with pytest.raises(InputError):
        model.check_motions(np.zeros((2, arm.dof)), np.zeros((3, arm.dof)))


def test_serial_and_parallel_kernels_agree(arm: Arm, rng: np.random.Generator) -> None:
    model = CollisionModel(arm, clutter(0.01))
    Q = arm.limits.sample(rng, 300)
    serial = packed.first_hits(Q, model.packed)
    np.testing.assert_array_equal(packed.first_hits(Q, model.packed, True), serial)
    d, code = packed.min_distances(Q, model.packed)
    d2, code2 = packed.min_distances(Q, model.packed, True)
    np.testing.assert_array_equal(d, d2)
    np.testing.assert_array_equal(code, code2)
    A, B = Q[:150], Q[150:]
    n = np.full(150, 40, np.int64)
    hits = packed.first_hit_motions(A, B, n, model.packed)
    np.testing.assert_array_equal(packed.first_hit_motions(A, B, n, model.packed, True), hits)
    # a segment is free exactly when all of its samples are
    for e in range(0, 150, 15):
        samples = A[e] + np.linspace(0, 1, 40)[:, None] * (B[e] - A[e])
        assert (hits[e] == -1) == bool(model.valid(samples).all())
        if hits[e] >= 0:
            assert not model.valid(samples[hits[e]])[0]


def test_collision_benchmark_scenes_ship_with_the_repo(tmp_path: Path) -> None:
    from bench.collision import MBM_FILE, scenes

    assert MBM_FILE.is_file()  # bench/data, not a path outside the repository
    names = [name for name, _, _ in scenes()]
    assert names == ["panda/table_pick", "panda/bookshelf_small", "panda/box", "ur5e/phone_cell"]
    with pytest.raises(InputError, match="no such MotionBenchMaker file"):
        scenes(tmp_path / "absent.json")
