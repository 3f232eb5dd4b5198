"""What ``make demo`` runs until the cell controllers exist: both arms, IK on phone-cell poses."""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table
from spatialmath import SE3

from planners import load_arm, solve_ik

__all__ = ["run_demo"]

# (arm, tool, base pose in the world) and TCP targets over a phone mid-frame on a table.
_ARMS = (("ur5e", "screwdriver"), ("panda", "franka_hand"))
# Screw holes of a mid-frame 0.45 m in front of the base, tool pointing down (x, y, z in m).
_TARGETS = {
    "above frame": (0.45, 0.00, 0.15),
    "hole h1": (0.38, -0.03, 0.02),
    "hole h4": (0.52, 0.03, 0.02),
    "tray pick": (0.30, 0.35, 0.05),
    "presenter": (0.25, -0.35, 0.08),
}


def run_demo(console: Console, seed: int = 0) -> None:
    """Print, per arm and target, whether IK found a configuration and how fast."""
    rng = np.random.default_rng(seed)
    table = Table(title="IK, tool pointing down")
    for col in ("arm", "target", "ok", "err um", "q [rad]", "us"):
        table.add_column(col, no_wrap=True)
    failures: list[str] = []
    console.print("arms: ur5e + screwdriver, panda + franka_hand; TCP targets [m]:")
    for k, v in _TARGETS.items():
        console.print(f"  {k:12s} {v}")
    for arm_name, tool in _ARMS:
        arm = load_arm(arm_name, tool)
        q_ref = arm.configuration("ready")
        solve_ik(arm, arm.fk(q_ref), q_ref)  # compile or load the solver before timing
        for label, xyz in _TARGETS.items():
            T = SE3.Trans(*xyz) * SE3.Rx(np.pi)
            t0 = time.perf_counter()
            res = solve_ik(arm, T, q_ref, rng=rng)
            dt = (time.perf_counter() - t0) * 1e6
            ok = "[green]yes[/]" if res.success else "[red]no[/]"
            q = " ".join(f"{v:+.2f}" for v in res.q)
            table.add_row(arm_name, label, ok, f"{res.position_error * 1e6:.2f}", q, f"{dt:.0f}")
            if res.success:
                q_ref = res.q
            else:
                failures.append(f"{arm_name} {label}: {res.reason}")
    console.print(table)
    for line in failures:
        console.print(line)
