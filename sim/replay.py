"""Physics replay: run a trajectory through PyBullet's position controller at 1 kHz.

The kinematic sweep says whether the *commanded* motion is clear; the replay says
whether a real arm with the model's masses and effort limits can *follow* it. Each
physics step the arm's joint motors get the trajectory's position and velocity as
targets, with the motor force capped at the URDF's effort limit and the motor speed at
its velocity limit: PyBullet enforces neither limit by itself, so the replay sets them.

Reported: RMS and maximum tracking error per joint, peak torque against the effort
limit, contacts with bodies the arm must not touch, and for parts that tool events
grasp and release, the final pose error of each placed part after it settles.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pybullet
from numpy.typing import NDArray

from planners.arrays import as_matrix4
from planners.errors import InputError
from planners.trajectory import Trajectory
from sim.verdict import Verdict, Violation, ViolationKind, first_per_place
from sim.world import World

__all__ = ["ReplaySettings", "ToolAction", "ToolEvent", "replay"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class ToolAction(Enum):
    """What a tool event does to a part."""

    GRASP = "grasp"
    RELEASE = "release"


@dataclass(frozen=True)
class ToolEvent:
    """A grasp or release at a trajectory time.

    Attributes:
        time: When [s, trajectory time].
        action: GRASP fixes the part to the arm's TCP link where it is; RELEASE frees it.
        part: Name of the part body in the world.
    """

    time: float
    action: ToolAction
    part: str


@dataclass(frozen=True)
class ReplaySettings:
    """Controller and judging settings of a replay.

    Attributes:
        position_gain: PyBullet motor position gain (error reduction per step).
        velocity_gain: PyBullet motor velocity gain.
        tracking_tolerance: Largest accepted |q_measured - q_commanded| [rad or m].
        effort_margin: A joint at or above this fraction of its effort limit is
            saturated: the arm cannot do what is asked (an EFFORT violation).
        settle_time: Physics time after the trajectory ends before placed parts are
            judged [s].
        part_tolerance: Largest accepted position [m] and angle [rad] error of a placed
            part against its target.
        contact_every: Check contacts every this many steps (1 = every step).
        handoff_time: A held part's contacts are not judged within this time [s] after
            its grasp and before its release: it leaves and reaches a surface then.
        contact_depth: A contact counts when it penetrates deeper than this [m] ...
        contact_force: ... or pushes harder than this [N]; below both it is a touch (a
            part resting where it lies).
    """

    position_gain: float = 0.3
    velocity_gain: float = 1.0
    tracking_tolerance: float = 0.02
    effort_margin: float = 0.999
    settle_time: float = 0.2
    part_tolerance: tuple[float, float] = (2e-4, np.radians(0.5))
    contact_every: int = 1
    handoff_time: float = 0.15
    contact_depth: float = 5e-4
    contact_force: float = 2.0


def replay(
    world: World,
    arm_name: str,
    trajectory: Trajectory,
    *,
    events: Sequence[ToolEvent] = (),
    part_targets: Mapping[str, NDArray[np.float64]] | None = None,
    allowed_contacts: Iterable[tuple[str, str]] = (),
    settings: ReplaySettings | None = None,
    fastened: Collection[str] = (),
) -> Verdict:
    """Replay ``trajectory`` on arm ``arm_name`` through physics; the world is restored after.

    Args:
        world: The world (its timestep is the control period, 1 ms by default).
        arm_name: Which arm of the world moves.
        trajectory: Joint names must be the arm's, in its order.
        events: Grasps and releases (times within the trajectory).
        part_targets: World pose (4x4) each placed part must end at.
        allowed_contacts: Pairs of body names that may touch (the gripper and the part
            it grasps, a part and the fixture it is placed in). A part may always touch
            the arm while grasped.
        settings: Gains and tolerances.
        fastened: Parts fixed to the world where they are released (a driven screw is
            held by its thread, not by gravity).

    Returns:
        A :class:`Verdict` with TRACKING, EFFORT, CONTACT and PART_POSE violations and
        the statistics ``replay_rms_error``, ``replay_max_error`` (per joint),
        ``replay_peak_torque_ratio`` (per joint), ``replay_wall_s``, ``replay_steps``.
    """
    cfg = settings or ReplaySettings()
    body = world.arm(arm_name)
    arm = body.arm
    if tuple(trajectory.joint_names) != tuple(arm.joint_names):
        raise InputError(
            f"trajectory.joint_names {list(trajectory.joint_names)} do not match arm "
            f"{arm_name!r} joints {list(arm.joint_names)}"
        )
    targets = {k: as_matrix4(v, f"part_targets.{k}") for k, v in (part_targets or {}).items()}
    for name in [e.part for e in events] + list(targets):
        world.body(name)  # UnknownNameError lists the bodies
    allowed: set[tuple[str, ...]] = set(world.pairs(allowed_contacts, "allowed_contacts"))
    client = world.client
    dt = world.spec.timestep
    tcp = body.link_index(arm.tcp_link)
    joints = list(body.joint_indices)
    effort = arm.limits.effort
    velocity = arm.limits.velocity
    t0 = trajectory.start_time
    n_steps = int(np.ceil(trajectory.duration / dt)) + 1
    times = t0 + np.arange(n_steps) * dt
    q_cmd = trajectory.sample(times, 0)
    qd_cmd = trajectory.sample(times, 1)
    pending = sorted(events, key=lambda e: e.time)
    held: dict[str, int] = {}
    violations: list[Violation] = []
    q_all = np.empty((n_steps, arm.dof))
    tau_all = np.empty((n_steps, arm.dof))
    # Bound once: BulletClient resolves every attribute through __getattr__ otherwise.
    set_motor = client.setJointMotorControl2
    step = client.stepSimulation
    joint_states = client.getJointStates
    arm_id = body.body
    position_control = pybullet.POSITION_CONTROL
    motors = [(j, float(effort[i]), float(velocity[i])) for i, j in enumerate(joints)]
    q_targets = q_cmd.tolist()
    qd_targets = qd_cmd.tolist()
    kp, kd = cfg.position_gain, cfg.velocity_gain
    started = wall.perf_counter()
    with world.preserved():
        body.set_q(q_cmd[0])
        for j in joints:  # velocity motors off: the position motors below drive the joints
            client.setJointMotorControl2(body.body, j, pybullet.VELOCITY_CONTROL, force=0.0)
        for k in range(n_steps):
            while pending and pending[0].time <= times[k] + 1e-12:
                _apply_event(world, arm_id, tcp, pending.pop(0), held, fastened)
            qk, qdk = q_targets[k], qd_targets[k]
            for i, (j, force, vmax) in enumerate(motors):
                set_motor(arm_id, j, position_control, targetPosition=qk[i],
                          targetVelocity=qdk[i], force=force, maxVelocity=vmax,
                          positionGain=kp, velocityGain=kd)  # fmt: skip
            step()
            states = joint_states(arm_id, joints)
            q_all[k] = [s[0] for s in states]
            tau_all[k] = [s[3] for s in states]
            if k % cfg.contact_every == 0:
                t = float(times[k])
                judged = {
                    p: c for p, c in held.items() if not _in_handoff(p, t, events, cfg.handoff_time)
                }
                violations.extend(_contacts(world, arm_id, judged, set(held), allowed, t, cfg))
        # The step k applied the targets of time k; compare with where it should be then.
        err_all = np.abs(q_all - q_cmd[np.minimum(np.arange(n_steps) + 1, n_steps - 1)])
        ratio_all = np.abs(tau_all) / effort
        names = arm.joint_names
        tol = cfg.tracking_tolerance
        for k, i in zip(*np.nonzero(err_all > tol), strict=True):
            violations.append(
                Violation(
                    float(times[k]),
                    ViolationKind.TRACKING,
                    names[i],
                    float(err_all[k, i]),
                    tol,
                    "rad",
                )
            )
        for k, i in zip(*np.nonzero(ratio_all >= cfg.effort_margin), strict=True):
            violations.append(
                Violation(
                    float(times[k]),
                    ViolationKind.EFFORT,
                    names[i],
                    float(abs(tau_all[k, i])),
                    float(effort[i]),
                    "N m",
                )
            )
        err_sq = (err_all**2).sum(axis=0)
        err_max = err_all.max(axis=0)
        peak = ratio_all.max(axis=0)
        for event in pending:  # events after the last step still happen
            _apply_event(world, body.body, tcp, event, held, fastened)
        for _ in range(round(cfg.settle_time / dt)):
            client.stepSimulation()
        end = float(times[-1])
        for name, T_target in targets.items():
            violations.extend(_part_error(world, name, T_target, cfg.part_tolerance, end))
    elapsed = wall.perf_counter() - started
    stats = {
        "replay_steps": n_steps,
        "replay_wall_s": elapsed,
        "replay_x_realtime": (n_steps * dt) / elapsed if elapsed > 0 else float("inf"),
        "replay_rms_error": dict(
            zip(arm.joint_names, np.sqrt(err_sq / n_steps).tolist(), strict=True)
        ),
        "replay_max_error": dict(zip(arm.joint_names, err_max.tolist(), strict=True)),
        "replay_peak_torque_ratio": dict(zip(arm.joint_names, peak.tolist(), strict=True)),
    }
    return Verdict(tuple(first_per_place(violations)), stats=stats)


def _apply_event(
    world: World,
    arm_body: int,
    tcp: int,
    event: ToolEvent,
    held: dict[str, int],
    fastened: Collection[str] = (),
) -> None:
    client = world.client
    part = world.body(event.part)
    if event.action is ToolAction.GRASP:
        if event.part in held:
            return
        # Fix the part to the TCP link where it is now: the child frame is the part's
        # inertial frame expressed in the TCP link's frame.
        link = client.getLinkState(arm_body, tcp, computeForwardKinematics=True)
        pos_l, orn_l = link[4], link[5]
        pos_p, orn_p = client.getBasePositionAndOrientation(part)
        inv_pos, inv_orn = client.invertTransform(pos_l, orn_l)
        rel_pos, rel_orn = client.multiplyTransforms(inv_pos, inv_orn, pos_p, orn_p)
        # The constraint's parent frame is relative to the link's inertial frame.
        com = client.getLinkState(arm_body, tcp)[2:4]
        inv_com = client.invertTransform(com[0], com[1])
        parent_pos, parent_orn = client.multiplyTransforms(inv_com[0], inv_com[1], rel_pos, rel_orn)
        cid = client.createConstraint(
            arm_body,
            tcp,
            part,
            -1,
            pybullet.JOINT_FIXED,
            [0, 0, 0],
            parentFramePosition=parent_pos,
            childFramePosition=[0, 0, 0],
            parentFrameOrientation=parent_orn,
            childFrameOrientation=[0, 0, 0, 1],
        )
        client.changeConstraint(cid, maxForce=1e4)
        held[event.part] = cid
    elif event.part in held:
        client.removeConstraint(held.pop(event.part))
        if event.part in fastened:  # held where it is by the world from now on
            pos, orn = client.getBasePositionAndOrientation(part)
            cid = client.createConstraint(
                part, -1, -1, -1, pybullet.JOINT_FIXED, [0, 0, 0], [0, 0, 0], pos,
                childFrameOrientation=orn,
            )  # fmt: skip
            client.changeConstraint(cid, maxForce=1e4)


def _in_handoff(part: str, t: float, events: Sequence[ToolEvent], window: float) -> bool:
    """Whether ``t`` is within ``window`` after a grasp or before a release of ``part``."""
    for e in events:
        if e.part != part:
            continue
        if e.action is ToolAction.GRASP and e.time <= t <= e.time + window:
            return True
        if e.action is ToolAction.RELEASE and e.time - window <= t <= e.time:
            return True
    return False


def _contacts(
    world: World,
    arm_body: int,
    judged: Mapping[str, int],
    held: set[str],
    allowed: set[tuple[str, ...]],
    t: float,
    cfg: ReplaySettings,
) -> list[Violation]:
    """CONTACT violations: the arm, or a held part, pressing on what it must not touch.

    ``judged`` are the held parts whose contacts count now; every part in ``held`` may
    touch the arm that holds it.
    """
    out = []
    arm_name = world.place(arm_body).split("/")[0]
    movers = [(arm_body, arm_name)] + [(world.body(p), p) for p in judged]
    for body, name in movers:
        for c in world.client.getContactPoints(bodyA=body):
            if -float(c[8]) <= cfg.contact_depth and float(c[9]) <= cfg.contact_force:
                continue  # a touch
            other = c[2]
            other_name = world.place(other).split("/")[0]
            if other == arm_body and body == arm_body:
                continue  # self-contact is the sweep's business
            if other_name in held or (name in held and other == arm_body):
                continue  # a grasped part touching the arm that holds it
            if tuple(sorted((name, other_name))) in allowed:
                continue
            depth = -float(c[8])
            where = f"{world.place(body, c[3])} | {world.place(other, c[4])}"
            out.append(Violation(t, ViolationKind.CONTACT, where, max(depth, 0.0), None, "m"))
    return out


def _part_error(
    world: World, name: str, T_target: NDArray[np.float64], tol: tuple[float, float], t: float
) -> list[Violation]:
    T = world.body_pose(name)
    dp = float(np.linalg.norm(T[:3, 3] - T_target[:3, 3]))
    c = (np.trace(T[:3, :3].T @ T_target[:3, :3]) - 1.0) / 2.0
    dr = float(np.arccos(np.clip(c, -1.0, 1.0)))
    out = []
    if dp > tol[0]:
        out.append(Violation(t, ViolationKind.PART_POSE, f"{name} position", dp, tol[0], "m"))
    if dr > tol[1]:
        out.append(Violation(t, ViolationKind.PART_POSE, f"{name} orientation", dr, tol[1], "rad"))
    return out
