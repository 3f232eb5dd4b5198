"""Validation with planted faults: each is caught with the right kind, place and time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from spatialmath import SE3

from planners import Arm, InputError, UnknownNameError, load_arm, solve_ik
from planners.poe import screws_of
from planners.scene import Box
from planners.trajectory import Trajectory
from sim.replay import ReplaySettings, ToolAction, ToolEvent, replay
from sim.screen import WorldScreen
from sim.sweep import SweepSettings, sweep
from sim.sweep_samples import sweep_samples
from sim.validate import validate
from sim.verdict import Verdict, ViolationKind
from sim.world import BodySpec, World, WorldSpec


def T(x: float, y: float, z: float) -> np.ndarray:
    M = np.eye(4)
    M[:3, 3] = (x, y, z)
    return M


def through(arm: Arm, qs: list[np.ndarray], duration: float) -> Trajectory:
    """Rest-to-rest quintics through the given configurations, evenly spaced in time."""
    Q = np.asarray(qs)
    zeros = np.zeros_like(Q)
    return Trajectory(arm.joint_names, np.linspace(0.0, duration, len(Q)), Q, zeros, zeros)


def ik(arm: Arm, T_world_tcp: SE3, q_ref: np.ndarray) -> np.ndarray:
    res = solve_ik(arm, T_world_tcp, q_ref)
    assert res.success, res.reason
    return np.asarray(res.q)


@pytest.fixture(scope="module")
def ur5e() -> Arm:
    return load_arm("ur5e", "screwdriver")


@pytest.fixture(scope="module")
def gripper_arm() -> Arm:
    return load_arm("ur5e", "parallel_gripper")


DOWN = SE3.Rx(np.pi)  # tool z pointing down


def checked_sweep(world: World, arm_name: str, trajectory: Trajectory, **kw: Any) -> Verdict:
    """The sweep screened by the world's sphere model, checked against the exact-only one."""
    exact = sweep(world, arm_name, trajectory, **kw)
    fast = sweep(world, arm_name, trajectory, screen=WorldScreen(world, arm_name), **kw)
    assert fast.violations == exact.violations
    assert fast.min_clearance == pytest.approx(exact.min_clearance, abs=1e-12)
    assert fast.stats["sweep_samples"] == exact.stats["sweep_samples"]
    return fast


def test_good_trajectory_passes_sweep_and_replay(ur5e: Arm) -> None:
    fixture = T(0.45, 0.0, 0.0)
    spec = WorldSpec(
        arms={"robot": ur5e}, bodies=(BodySpec("fixture", "midframe_fixture", fixture),)
    )
    q0 = ik(ur5e, SE3.Trans(0.40, -0.05, 0.10) * DOWN, ur5e.configuration("ready"))
    q1 = ik(ur5e, SE3.Trans(0.50, 0.05, 0.06) * DOWN, q0)
    with World(spec) as world:
        verdict = validate(world, "robot", through(ur5e, [q0, q1], 1.5))
    assert verdict.ok, verdict.summary()
    assert verdict.first is None
    # The bit passes 40 mm above the fixture top (20 mm): clearance measured and positive.
    assert 0.0 < verdict.min_clearance < 0.05
    assert "fixture" in (verdict.clearance_pair or "")
    assert verdict.stats["sweep_samples"] > 100
    assert max(verdict.stats["replay_max_error"].values()) < 1e-3


def test_path_through_a_fixture_is_a_collision(ur5e: Arm) -> None:
    spec = WorldSpec(
        arms={"robot": ur5e}, bodies=(BodySpec("fixture", "midframe_fixture", T(0.45, 0, 0)),)
    )
    above = ik(ur5e, SE3.Trans(0.45, 0.055, 0.10) * DOWN, ur5e.configuration("ready"))
    inside = ik(ur5e, SE3.Trans(0.45, 0.055, 0.010) * DOWN, above)  # 10 mm into the 20 mm plate
    with World(spec) as world:
        verdict = checked_sweep(world, "robot", through(ur5e, [above, inside], 1.0))
    first = verdict.first
    assert first is not None and first.kind is ViolationKind.COLLISION
    assert "robot/screwdriver" in first.where and "fixture" in first.where
    # The bit tip reaches the plate top (z = 20 mm) 80 % of the way down the quintic.
    assert 0.5 < first.time < 1.0
    assert first.amount > 0.005  # deepest penetration, not the first graze
    assert verdict.min_clearance < 0


def test_self_collision_is_caught_with_the_link_pair(ur5e: Arm) -> None:
    q0 = ur5e.configuration("ready")
    folded = q0.copy()
    folded[2] = -3.0  # elbow folds the forearm back onto the upper arm
    with World(WorldSpec(arms={"robot": ur5e})) as world:
        verdict = checked_sweep(world, "robot", through(ur5e, [q0, folded], 3.0))
    hits = verdict.of_kind(ViolationKind.SELF_COLLISION)
    assert hits, verdict.summary()
    assert "robot/upper_arm_link" in hits[0].where
    assert not verdict.of_kind(ViolationKind.COLLISION)


def test_adjacent_links_and_a_still_arm_are_not_self_collisions(ur5e: Arm) -> None:
    q = ur5e.configuration("home")
    with World(WorldSpec(arms={"robot": ur5e})) as world:
        verdict = checked_sweep(world, "robot", through(ur5e, [q, q], 0.5))
        excluded = world.adjacent["robot"]
    assert verdict.ok, verdict.summary()
    # Flush across the fixed flange: one rigid group, never a self-collision.
    assert ("screwdriver_mount", "wrist_3_link") in excluded
    # Two links far apart in the chain stay checked.
    assert ("shoulder_link", "wrist_2_link") not in excluded


def test_held_part_hitting_the_tray_wall(gripper_arm: Arm) -> None:
    tray = T(0.45, 0.0, 0.0)
    battery = tray @ T(-0.085, 0.040, 0.005)
    spec = WorldSpec(
        arms={"robot": gripper_arm},
        bodies=(
            BodySpec("tray", "part_tray", tray),
            BodySpec("battery", "battery", battery, fixed=False),
        ),
    )
    # Fingertips 1 mm above the 15 mm pocket walls; the part is held rigidly below them.
    grasp = SE3.Trans(*(battery[:3, 3] + [0.0, 0.0, 0.021])) * DOWN
    q_grasp = ik(gripper_arm, grasp, gripper_arm.configuration("ready"))
    q_slide = ik(gripper_arm, SE3.Trans(0.03, 0.0, 0.0) * grasp, q_grasp)  # sideways, not up
    trajectory = through(gripper_arm, [q_grasp, q_slide], 1.0)
    held = [ToolEvent(0.0, ToolAction.GRASP, "battery")]
    with World(spec) as world:
        verdict = checked_sweep(
            world, "robot", trajectory, events=held, allowed_contacts=[("robot", "battery")]
        )
        free = checked_sweep(world, "robot", trajectory, allowed_contacts=[("robot", "battery")])
        # The world is restored: the battery is back in its pocket.
        np.testing.assert_allclose(world.body_pose("battery"), battery, atol=1e-9)
    first = verdict.first
    assert first is not None and first.kind is ViolationKind.COLLISION
    assert first.where.startswith("battery") and "tray" in first.where
    assert 0.0 < first.time < 0.5  # 0.5 mm of clearance is used up early in the move
    assert free.ok, free.summary()  # not held: the gripper alone passes above the walls


def test_position_limit_exceeded_names_the_joint() -> None:
    panda = load_arm("panda", "franka_hand")
    q0 = panda.configuration("ready")
    q1 = q0.copy()
    q1[3] = 0.1  # panda_joint4 upper limit is -0.0698
    with World(WorldSpec(arms={"robot": panda})) as world:
        verdict = checked_sweep(world, "robot", through(panda, [q0, q1], 3.0))
    hits = verdict.of_kind(ViolationKind.POSITION)
    assert [v.where for v in hits] == ["panda_joint4"]
    assert hits[0].limit == pytest.approx(panda.limits.upper[3]) == pytest.approx(-0.0698)
    assert hits[0].amount > hits[0].limit and 1.5 < hits[0].time < 3.0  # amount: the value


def test_velocity_limit_exceeded_names_the_joint(ur5e: Arm) -> None:
    q0 = ur5e.configuration("ready")
    q1 = q0.copy()
    q1[0] += 2.0  # 2 rad in 0.5 s: the quintic peaks at 7.5 rad/s, the limit is pi
    with World(WorldSpec(arms={"robot": ur5e})) as world:
        verdict = checked_sweep(world, "robot", through(ur5e, [q0, q1], 0.5))
    hits = verdict.of_kind(ViolationKind.VELOCITY)
    assert hits and hits[0].where == "shoulder_pan_joint"
    assert hits[0].limit == pytest.approx(np.pi)
    assert 0.05 < hits[0].time < 0.25  # velocity passes pi on the way up


def test_move_too_fast_to_track_fails_the_replay(ur5e: Arm) -> None:
    q0 = ur5e.configuration("ready")
    q1 = q0.copy()
    q1[1] -= 0.6  # shoulder lift: 0.6 rad in 0.2 s needs ~90 rad/s^2 of a heavy arm
    with World(WorldSpec(arms={"robot": ur5e})) as world:
        verdict = replay(world, "robot", through(ur5e, [q0, q1], 0.2))
        slow = replay(world, "robot", through(ur5e, [q0, q1], 2.0))
    kinds = {v.kind for v in verdict.violations}
    assert ViolationKind.EFFORT in kinds and ViolationKind.TRACKING in kinds
    assert verdict.of_kind(ViolationKind.EFFORT)[0].where == "shoulder_lift_joint"
    assert slow.ok, slow.summary()
    assert slow.stats["replay_peak_torque_ratio"]["shoulder_lift_joint"] < 1.0


def test_replay_places_a_part_and_judges_its_final_pose(gripper_arm: Arm) -> None:
    tray = T(0.45, 0.0, 0.0)
    battery = tray @ T(-0.085, 0.040, 0.005)
    spec = WorldSpec(
        arms={"robot": gripper_arm},
        bodies=(
            BodySpec("tray", "part_tray", tray),
            BodySpec("battery", "battery", battery, fixed=False),
        ),
    )
    grasp = SE3.Trans(*(battery[:3, 3] + [0.0, 0.0, 0.021])) * DOWN
    q_grasp = ik(gripper_arm, grasp, gripper_arm.configuration("ready"))
    q_up = ik(gripper_arm, SE3.Trans(0.0, 0.0, 0.03) * grasp, q_grasp)
    trajectory = through(gripper_arm, [q_grasp, q_up, q_grasp], 2.0)  # lift and put back
    events = [
        ToolEvent(0.0, ToolAction.GRASP, "battery"),
        ToolEvent(2.0, ToolAction.RELEASE, "battery"),
    ]
    allowed = [("robot", "battery"), ("battery", "tray")]
    with World(spec) as world:
        back = replay(world, "robot", trajectory, events=events, part_targets={"battery": battery},
                      allowed_contacts=allowed)  # fmt: skip
        shifted = T(0.002, 0.0, 0.0) @ battery
        off = replay(world, "robot", trajectory, events=events, part_targets={"battery": shifted},
                     allowed_contacts=allowed)  # fmt: skip
    assert back.ok, back.summary()
    hits = off.of_kind(ViolationKind.PART_POSE)
    assert hits and hits[0].where == "battery position"
    assert hits[0].amount == pytest.approx(0.002, abs=3e-4)


def test_bad_input_raises_typed_errors(ur5e: Arm) -> None:
    panda = load_arm("panda", "franka_hand")
    q = panda.configuration("ready")
    wrong = through(panda, [q, q], 1.0)
    with World(WorldSpec(arms={"robot": ur5e})) as world:
        with pytest.raises(InputError, match="do not match"):
            sweep(world, "robot", wrong)
        with pytest.raises(InputError, match="do not match"):
            replay(world, "robot", wrong)
        with pytest.raises(UnknownNameError, match="robot"):
            sweep(world, "arm2", wrong)
        good = through(ur5e, [ur5e.configuration("ready")] * 2, 1.0)
        with pytest.raises(UnknownNameError, match="battery"):
            sweep(world, "robot", good, events=[ToolEvent(0.0, ToolAction.GRASP, "battery")])
        for check in (sweep, replay):  # a misspelt allowed contact would hide a real one
            with pytest.raises(UnknownNameError, match=r"allowed_contacts.*'batery'"):
                check(world, "robot", good, allowed_contacts=[("robot", "batery")])
    with pytest.raises(InputError, match="max_tcp_step"):
        SweepSettings(max_tcp_step=0.0)
    with pytest.raises(UnknownNameError, match="model"):
        World(WorldSpec(bodies=(BodySpec("x", "no_such_model", np.eye(4)),)))


def test_samples_bound_tcp_travel_and_joint_step(ur5e: Arm) -> None:
    q0 = ur5e.configuration("ready")
    q1 = q0 + np.array([1.0, -0.4, 0.5, 0.3, 0.2, 1.5])
    trajectory = through(ur5e, [q0, q1], 2.0)
    settings = SweepSettings()
    times, Q, _ = sweep_samples(
        trajectory, screws_of(ur5e), settings.max_joint_step, settings.max_tcp_step, [0.7]
    )
    np.testing.assert_array_equal(Q, trajectory.sample(times))
    assert 0.7 in times
    P = ur5e.fk_batch(Q)[:, :3, 3]
    assert np.abs(np.diff(Q, axis=0)).max() <= settings.max_joint_step + 1e-12
    assert np.linalg.norm(np.diff(P, axis=0), axis=1).max() <= settings.max_tcp_step + 1e-12
    assert times[0] == 0.0 and times[-1] == 2.0


def test_replay_settings_gains_are_used(ur5e: Arm) -> None:
    q0 = ur5e.configuration("ready")
    trajectory = through(ur5e, [q0, q0 + 0.3], 1.0)
    with World(WorldSpec(arms={"robot": ur5e})) as world:
        stiff = replay(world, "robot", trajectory, settings=ReplaySettings(position_gain=0.3))
        soft = replay(world, "robot", trajectory, settings=ReplaySettings(position_gain=0.03))
    assert max(soft.stats["replay_max_error"].values()) > max(
        stiff.stats["replay_max_error"].values()
    )


def test_obstacle_primitives_are_built(ur5e: Arm) -> None:
    wall = Box("wall", T(0.35, 0.3, 0.3), [0.05, 0.01, 0.3])
    q0 = ur5e.configuration("ready")
    q1 = q0.copy()
    q1[0] += 1.2  # swings the arm through the wall
    with World(WorldSpec(arms={"robot": ur5e}, obstacles=(wall,))) as world:
        verdict = checked_sweep(world, "robot", through(ur5e, [q0, q1], 2.0))
    first = verdict.first
    assert (
        first is not None
        and first.kind is ViolationKind.COLLISION
        and first.where.endswith("| wall")
    )


def test_screened_sweep_gives_the_same_verdict_with_fewer_exact_queries() -> None:
    from dataclasses import replace

    from bench.validate import pick_place_case
    from sim.screen import WorldScreen

    spec, _, trajectory, events = pick_place_case()
    allowed = [("robot", "battery")]
    # Plant a fault: a post standing in the transfer from the tray to the fixture.
    post = Box("post", T(0.40, 0.08, 0.10), [0.01, 0.01, 0.10])
    blocked = replace(spec, obstacles=(post,))
    verdicts = {}
    for name, world_spec in (("clear", spec), ("blocked", blocked)):
        with World(world_spec) as world:
            screen = WorldScreen(world, "robot")
            fast = sweep(
                world, "robot", trajectory, events=events, allowed_contacts=allowed, screen=screen
            )
            exact = sweep(world, "robot", trajectory, events=events, allowed_contacts=allowed)
        assert fast.violations == exact.violations, name
        assert fast.min_clearance == pytest.approx(exact.min_clearance, abs=1e-12)
        assert fast.stats["sweep_exact_queries"] < exact.stats["sweep_exact_queries"] / 5
        verdicts[name] = fast
    assert verdicts["clear"].ok, verdicts["clear"].summary()
    first = verdicts["blocked"].first
    assert (
        first is not None
        and first.kind is ViolationKind.COLLISION
        and first.where.endswith("| post")
    )


def test_screened_and_exact_sweeps_agree_on_random_moves(rng: np.random.Generator) -> None:
    from dataclasses import replace

    from bench.validate import pick_place_case

    spec, arm, trajectory, _ = pick_place_case()
    post = Box("post", T(0.40, 0.08, 0.10), [0.01, 0.01, 0.10])
    with World(replace(spec, obstacles=(post,))) as world:
        for case in range(4):
            # half a second of the pick-and-place, its knots pushed about (into things)
            a = rng.uniform(0.0, trajectory.duration - 0.5)
            knots = np.linspace(a, a + 0.5, 3)
            Q = trajectory.sample(knots) + rng.normal(size=(3, arm.dof)) * (0.02, 0.1)[case % 2]
            moves = Trajectory(arm.joint_names, knots - a, Q, np.zeros_like(Q), np.zeros_like(Q))
            grasp = ToolEvent(float(rng.uniform(0.0, 0.5)), ToolAction.GRASP, "battery")
            checked_sweep(
                world, "robot", moves, events=[grasp] if case % 2 else [],
                allowed_contacts=[("robot", "battery")],
                settings=SweepSettings(min_clearance=(0.0, 0.01)[case // 2]),
            )  # fmt: skip


def test_at_one_instant_the_cause_comes_first() -> None:
    """A replay's contact and the effort and tracking error it causes share a time step:
    the verdict's first violation names what was hit."""
    from sim.verdict import Violation

    t = 1.371
    v = Verdict((
        Violation(t, ViolationKind.TRACKING, "wrist_2_joint", 0.2, 0.02, "rad"),
        Violation(t, ViolationKind.EFFORT, "wrist_1_joint", 28.0, 28.0, "N m"),
        Violation(t, ViolationKind.CONTACT, "arm/bit | intruder", 1e-5, None, "m"),
        Violation(t - 1e-3, ViolationKind.VELOCITY, "elbow_joint", 4.0, 3.14, "rad/s"),
    ))  # fmt: skip
    assert [x.kind for x in v.violations] == [
        ViolationKind.VELOCITY, ViolationKind.CONTACT, ViolationKind.EFFORT,
        ViolationKind.TRACKING,
    ]  # fmt: skip
