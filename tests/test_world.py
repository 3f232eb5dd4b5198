"""Worlds: built from a description, named, reset, several at once, closed without leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planners import InputError, UnknownNameError, load_arm
from planners.scene import Box, Capsule, Cylinder, Sphere
from sim.world import BodySpec, World, WorldSpec


def T(x: float, y: float, z: float) -> np.ndarray:
    M = np.eye(4)
    M[:3, 3] = (x, y, z)
    return M


def cell_spec() -> WorldSpec:
    return WorldSpec(
        arms={"robot": load_arm("ur5e", "screwdriver", base=T(0.0, 0.0, 0.1))},
        bodies=(
            BodySpec("fixture", "midframe_fixture", T(0.45, 0.0, 0.0)),
            BodySpec("frame", "phone_midframe", T(0.45, 0.0, 0.02), fixed=False),
        ),
        obstacles=(
            Box("wall", T(0.0, -0.6, 0.5), [0.5, 0.01, 0.5]),
            Sphere("ball", T(0.3, 0.5, 0.2), 0.05),
            Cylinder("post", T(-0.4, 0.0, 0.3), 0.03, 0.6),
            Capsule("cable", T(-0.4, 0.3, 0.3), 0.02, 0.4),
        ),
    )


def test_bodies_are_placed_and_named() -> None:
    with World(cell_spec()) as world:
        np.testing.assert_allclose(world.body_pose("frame"), T(0.45, 0.0, 0.02), atol=1e-9)
        np.testing.assert_allclose(world.body_pose("wall"), T(0.0, -0.6, 0.5), atol=1e-9)
        arm = world.arm("robot")
        np.testing.assert_allclose(arm.link_pose("base_link"), T(0.0, 0.0, 0.1), atol=1e-9)
        q = arm.arm.configuration("ready")
        arm.set_q(q)
        np.testing.assert_allclose(arm.link_pose(arm.arm.tcp_link), arm.arm.fk(q).A, atol=1e-6)
        assert world.place(arm.body, arm.link_index("forearm_link")) == "robot/forearm_link"
        assert world.place(world.body("fixture")) == "fixture"


def test_reset_restores_the_built_state() -> None:
    with World(cell_spec()) as world:
        world.set_body_pose("frame", T(1.0, 1.0, 1.0))
        world.arm("robot").set_q(np.ones(6))
        world.reset()
        np.testing.assert_allclose(world.body_pose("frame"), T(0.45, 0.0, 0.02), atol=1e-9)
        q = [
            world.client.getJointState(world.arm("robot").body, j)[0]
            for j in world.arm("robot").joint_indices
        ]
        np.testing.assert_allclose(q, 0.0)


def test_preserved_scopes_changes_and_constraints() -> None:
    with World(cell_spec()) as world:
        before = world.client.getNumConstraints()
        with world.preserved():
            world.set_body_pose("frame", T(0.0, 0.0, 2.0))
            arm = world.arm("robot")
            world.client.createConstraint(
                arm.body, 5, world.body("frame"), -1, 4, [0, 0, 0], [0, 0, 0], [0, 0, 0]
            )
            for _ in range(10):
                world.client.stepSimulation()
        assert world.client.getNumConstraints() == before
        np.testing.assert_allclose(world.body_pose("frame"), T(0.45, 0.0, 0.02), atol=1e-9)


def test_several_worlds_are_independent() -> None:
    with World(cell_spec()) as a, World(cell_spec()) as b:
        a.set_body_pose("frame", T(0.0, 0.0, 1.0))
        np.testing.assert_allclose(b.body_pose("frame"), T(0.45, 0.0, 0.02), atol=1e-9)
        assert a.client._client != b.client._client


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize(
    "cycles", [pytest.param(100, id="100"), pytest.param(1000, id="1000", marks=pytest.mark.slow)]
)
def test_create_and_close_does_not_grow_memory(cycles: int) -> None:
    spec = cell_spec()
    for _ in range(20):  # warm up allocators and caches
        World(spec).close()
    start = _rss_kb()
    for _ in range(cycles):
        World(spec).close()
    grown = _rss_kb() - start
    # A leak of one world per cycle would be megabytes (a world holds ~1 MB of models).
    assert grown < 4096, f"RSS grew by {grown} kB over {cycles} create/close cycles"


def test_bad_descriptions_raise_typed_errors() -> None:
    arm = load_arm("ur5e", "screwdriver")
    with pytest.raises(InputError, match="unique"):
        WorldSpec(arms={"robot": arm}, bodies=(BodySpec("robot", "part_tray", np.eye(4)),))
    with pytest.raises(UnknownNameError, match="part_tray"):
        World(WorldSpec(bodies=(BodySpec("tray", "part_trey", np.eye(4)),)))
    with pytest.raises(InputError, match="timestep"):
        WorldSpec(timestep=0.0)
    with World(WorldSpec(arms={"robot": arm})) as world:
        with pytest.raises(UnknownNameError, match="robot"):
            world.arm("robto")
        with pytest.raises(UnknownNameError, match="robot"):
            world.body("nothing")
