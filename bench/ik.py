"""IK benchmark: our solver against PyBullet's ``calculateInverseKinematics``.

For each arm (with the tool a cell mounts on it), draw random configurations within
the joint limits, take their TCP poses as targets (so every target is reachable), and
solve from a reference configuration. Two references are measured:

* ``cold``: the arm's ``ready`` configuration, whatever the target (the JSON's main
  fields);
* ``near``: the true configuration plus Gaussian noise of 0.3 rad per joint, as when a
  cell solves near the configuration it is in.

Peers in the same run: PyBullet's ``calculateInverseKinematics`` and roboticstoolbox's
compiled ``ik_LM`` (seeded at the reference, 30 restarts of its own, 100 iterations).
A solve counts as a success when the configuration is within the joint limits and its
forward kinematics is within 0.1 mm and 1 mrad of the target. PyBullet's solver starts
from the same reference (its current joint state and rest pose) and is judged by the
same forward kinematics and tolerance.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from planners import Arm, load_arm, pose_error, solve_ik

__all__ = ["ARMS", "print_table", "run"]

ARMS: tuple[tuple[str, str], ...] = (("ur5e", "screwdriver"), ("panda", "franka_hand"))
TOL_POSITION = 1e-4  # m
TOL_ROTATION = 1e-3  # rad


def _judge(arm: Arm, q: np.ndarray, T: np.ndarray) -> bool:
    if not bool(arm.limits.within(q)):
        return False
    dp, dr = pose_error(arm.fk_batch(q)[0], T)
    return dp <= TOL_POSITION and dr <= TOL_ROTATION


def _stats(ok: list[bool], times: list[float]) -> dict[str, Any]:
    t = np.asarray(times) * 1e6
    return {
        "n": len(ok),
        "success_rate": float(np.mean(ok)),
        "median_us": float(np.median(t)),
        "p95_us": float(np.percentile(t, 95)),
    }


def _problems(
    arm: Arm, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q_true = arm.limits.sample(rng, n)
    targets = arm.fk_batch(q_true)
    near = np.clip(q_true + rng.normal(0.0, 0.3, q_true.shape), arm.limits.lower, arm.limits.upper)
    return targets, q_true, near


def _ours(arm: Arm, targets: np.ndarray, refs: np.ndarray, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    ok, times = [], []
    for T, ref in zip(targets, refs, strict=True):
        t0 = time.perf_counter()
        res = solve_ik(arm, T, ref, rng=rng)
        times.append(time.perf_counter() - t0)
        ok.append(res.success and _judge(arm, res.q, T))
    return _stats(ok, times)


def _rtb(arm: Arm, targets: np.ndarray, refs: np.ndarray) -> dict[str, Any]:
    """roboticstoolbox's compiled ``ik_LM`` seeded at the reference, its own restarts."""
    ets = arm.ets
    base_inv = np.linalg.inv(arm.base)
    ok, times = [], []
    for T, ref in zip(targets, refs, strict=True):
        t0 = time.perf_counter()
        sol = ets.ik_LM(
            base_inv @ T, q0=np.array(ref), ilimit=100, slimit=31, tol=1e-12, joint_limits=True
        )
        times.append(time.perf_counter() - t0)
        ok.append(bool(sol.success) and _judge(arm, np.asarray(sol.q), T))
    return _stats(ok, times)


def _pybullet(arm: Arm, targets: np.ndarray, refs: np.ndarray) -> dict[str, Any]:
    """PyBullet's damped-least-squares IK started at the reference.

    Its null-space variant (lower/upper limits and rest poses) converged on none of 300
    poses, and ``currentPositions`` is honoured only on its first iteration (errors of
    3-4 cm), so the peer is the plain variant started by setting the joint state; the
    reset is inside the timed region (two microseconds a joint).
    """
    from scipy.spatial.transform import Rotation

    from sim.arm_body import ArmBody
    from sim.client import bullet_client

    with bullet_client() as client:
        body = ArmBody.load(client, arm)
        tcp = body.link_index(arm.tcp_link)
        movable = [
            j
            for j in range(client.getNumJoints(body.body))
            if client.getJointInfo(body.body, j)[2] != 4
        ]
        cols = [movable.index(j) for j in body.joint_indices]
        quats = Rotation.from_matrix(targets[:, :3, :3]).as_quat()
        ok, times = [], []
        for T, quat, ref in zip(targets, quats, refs, strict=True):
            t0 = time.perf_counter()
            body.set_q(ref)  # its iterations start from the body's joint state
            sol = client.calculateInverseKinematics(
                body.body,
                tcp,
                T[:3, 3].tolist(),
                quat.tolist(),
                maxNumIterations=100,
                residualThreshold=1e-7,
            )
            times.append(time.perf_counter() - t0)
            ok.append(_judge(arm, np.asarray(sol)[cols], T))
    return _stats(ok, times)


def run(n: int = 10_000, seed: int = 0, progress: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON document (see module docstring)."""
    out: dict[str, Any] = {
        "arms": {},
        "peers": {"pybullet": {}},
        "near": {"arms": {}, "peers": {"pybullet": {}}},
    }
    out["tolerance"] = {"position_m": TOL_POSITION, "rotation_rad": TOL_ROTATION}
    for arm_name, tool in ARMS:
        arm = load_arm(arm_name, tool)
        targets, _, near = _problems(arm, n, np.random.default_rng(seed))
        cold = np.tile(arm.configuration("ready"), (n, 1))
        for label, refs, dest in (("cold", cold, out), ("near", near, out["near"])):
            if progress is not None:
                progress.print(f"{arm_name}: {n} solves from the {label} reference ...")
            dest["arms"][arm_name] = _ours(arm, targets, refs, seed)
            dest["peers"]["pybullet"][arm_name] = _pybullet(arm, targets, refs)
            dest["peers"].setdefault("rtb_ik_LM", {})[arm_name] = _rtb(arm, targets, refs)
    return out


def print_table(console: Console, result: dict[str, Any]) -> None:
    """Print ours against PyBullet per arm and reference, with the ratios."""
    table = Table(title="IK: success within 0.1 mm / 1 mrad and limits; time per solve")
    for col in (
        "arm",
        "reference",
        "solver",
        "n",
        "success",
        "median us",
        "p95 us",
        "median time / ours",
    ):
        table.add_column(col, justify="right")
    for label, doc in (("cold (ready)", result), ("near (+0.3 rad)", result["near"])):
        for arm, ours in doc["arms"].items():
            rows = [("ours", ours)] + [(peer, doc["peers"][peer][arm]) for peer in doc["peers"]]
            for solver, row in rows:
                ratio = f"{row['median_us'] / ours['median_us']:.2f}"
                rate = f"{row['success_rate'] * 100:.2f} %"
                median, p95 = f"{row['median_us']:.1f}", f"{row['p95_us']:.1f}"
                table.add_row(arm, label, solver, str(row["n"]), rate, median, p95, ratio)
    console.print(table)
