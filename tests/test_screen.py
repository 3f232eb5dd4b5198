"""The sweep's screen: its bounds hold against PyBullet, and a sweep leaves the world as it was."""

from __future__ import annotations

import numpy as np
import pytest

from bench.validate import pick_place_case
from planners.poe import joint_products
from planners.scene import Box, Capsule, Cylinder, Obstacle, Sphere
from sim.replay import replay
from sim.screen import WorldScreen
from sim.sweep import sweep
from sim.world import World


@pytest.fixture(scope="module")
def case() -> tuple:
    return pick_place_case()


def _signed_distance(p: np.ndarray, o: Obstacle) -> np.ndarray:
    """Signed distance of points (..., 3) from a primitive, written independently."""
    T = np.asarray(o.pose)
    local = (p - T[:3, 3]) @ T[:3, :3]
    if isinstance(o, Sphere):
        return np.linalg.norm(local, axis=-1) - o.radius
    if isinstance(o, Box):
        q = np.abs(local) - o.half_extents
        return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(axis=-1), 0)
    if isinstance(o, Cylinder):
        dr = np.linalg.norm(local[..., :2], axis=-1) - o.radius
        dz = np.abs(local[..., 2]) - o.length / 2
        return np.hypot(np.maximum(dr, 0), np.maximum(dz, 0)) + np.minimum(np.maximum(dr, dz), 0)
    assert isinstance(o, Capsule)
    local = local.copy()
    local[..., 2] -= np.clip(local[..., 2], -o.length / 2, o.length / 2)
    return np.linalg.norm(local, axis=-1) - o.radius


def _samples(traj: object, n: int, rng: np.random.Generator, spread: float) -> np.ndarray:
    Q = traj.sample(np.sort(rng.uniform(0.0, traj.duration, n)))  # type: ignore[attr-defined]
    return Q + rng.normal(size=Q.shape) * spread


def test_bounds_equal_the_sphere_model_below_the_cap(case: tuple, rng: np.random.Generator) -> None:
    spec, _, traj, _ = case
    Q = _samples(traj, 400, rng, 0.002)  # a path: the bound is carried between samples
    with World(spec) as world:
        screen = WorldScreen(world, "robot")
        s = screen.screws
        P = joint_products(s.revolute, s.axis, s.point, Q)
        cap = 0.03
        bounds = screen.body_bounds(P, Q, cap=cap)[:, 0]
        model = screen._model(())  # the same spheres and primitives, checked by brute force
        S = model.spheres(Q)
        for j, body in enumerate(screen.bodies):
            shapes = [o for o in model.scene.obstacles if o.name.split("/")[0] == body]
            exact = np.min([(_signed_distance(S[..., :3], o) - S[..., 3]).min(axis=1)
                            for o in shapes], axis=0)  # fmt: skip
            np.testing.assert_allclose(bounds[:, j], np.minimum(exact, cap), atol=1e-12)


def test_bounds_never_exceed_pybullets_distance(case: tuple, rng: np.random.Generator) -> None:
    spec, _, traj, _ = case
    Q = _samples(traj, 150, rng, 0.05)
    with World(spec) as world:
        screen = WorldScreen(world, "robot")
        body = world.arm("robot")
        s = screen.screws
        bounds = screen.body_bounds(joint_products(s.revolute, s.axis, s.point, Q), Q, cap=1.0)[
            :, 0
        ]
        for i, q in enumerate(Q):
            body.set_q(q)
            for j, name in enumerate(screen.bodies):
                points = world.client.getClosestPoints(body.body, world.body(name), 1.0)
                exact = min((p[8] for p in points), default=1.0)
                # clear: the bound is below; in contact: the bound says so too
                assert bounds[i, j] <= max(exact, 0.0) + 1e-9, (name, exact, bounds[i, j])


def test_a_sweep_leaves_the_world_as_it_found_it(case: tuple) -> None:
    spec, _, traj, events = case
    allowed = [("robot", "battery")]
    with World(spec) as world:
        fresh = replay(world, "robot", traj, events=events, allowed_contacts=allowed)
    with World(spec) as world:
        client = world.client
        arm = world.arm("robot")
        before = (
            client.getJointStates(arm.body, range(client.getNumJoints(arm.body))),
            {name: client.getBasePositionAndOrientation(b) for name, b in world.bodies.items()},
        )
        screen = WorldScreen(world, "robot")
        sweep(world, "robot", traj, events=events, allowed_contacts=allowed, screen=screen)
        sweep(world, "robot", traj, events=events, allowed_contacts=allowed)
        after = (
            client.getJointStates(arm.body, range(client.getNumJoints(arm.body))),
            {name: client.getBasePositionAndOrientation(b) for name, b in world.bodies.items()},
        )
        assert after == before
        assert client.getContactPoints() == ()
        again = replay(world, "robot", traj, events=events, allowed_contacts=allowed)
        # and after a replay (its last contacts still listed), a sweep changes nothing either
        sweep(world, "robot", traj, events=events, allowed_contacts=allowed, screen=screen)
        third = replay(world, "robot", traj, events=events, allowed_contacts=allowed)
    for run in (again, third):
        assert run.violations == fresh.violations
        for key in ("replay_max_error", "replay_rms_error", "replay_peak_torque_ratio"):
            assert run.stats[key] == fresh.stats[key]


def test_bounds_with_a_held_part_never_exceed_pybullets_distance(
    case: tuple, rng: np.random.Generator
) -> None:
    spec, arm, traj, events = case
    grasp, release = events[0].time, events[1].time
    with World(spec) as world:
        screen = WorldScreen(world, "robot")
        body = world.arm("robot")
        T_tcp = arm.fk_batch(traj.sample([grasp]))[0]
        grip = np.linalg.inv(T_tcp) @ world.body_pose("battery")  # held as the sweep holds it
        times = np.linspace(grasp, release, 200)
        Q = traj.sample(times) + rng.normal(size=(200, arm.dof)) * 0.003
        s = screen.screws
        P = joint_products(s.revolute, s.axis, s.point, Q)
        bounds = screen.body_bounds(
            P, Q, {"battery": grip}, allowed=[("robot", "battery")], cap=1.0
        ).min(axis=1)  # the arm and the battery
        battery = world.body("battery")
        for i, q in enumerate(Q):
            body.set_q(q)
            world.set_body_pose("battery", arm.fk_batch(q[None])[0] @ grip)
            for j, name in enumerate(screen.bodies):
                if name == "battery":
                    continue
                points = world.client.getClosestPoints(battery, world.body(name), 1.0)
                points += world.client.getClosestPoints(body.body, world.body(name), 1.0)
                exact = min((p[8] for p in points), default=1.0)
                assert bounds[i, j] <= max(exact, 0.0) + 1e-9, (name, exact, bounds[i, j])
