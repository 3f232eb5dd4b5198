"""What ``make demo`` runs until the cell controller exists.

The best end-to-end path that exists today, on the reference screw cell
(``cells/phone_screw.toml``): load and validate the cell file, and for each of the
first holes solve IK for the approach pose above the hole (tool along the hole axis),
plan a collision-free joint path to it with the batched sphere model, time it under
the arm's joint limits, and validate it in PyBullet (exact sweep and 1 kHz physics
replay). A table shows every step's outcome and time. Screw driving itself, the
presenter pick and the tightening judgement come with the cell controller.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from cells.cell_file import load_cell
from planners import (
    CollisionModel,
    collision_space,
    obstacles_from_urdf,
    plan,
    solve_ik,
    time_parameterize,
)
from planners.scene import Obstacle, Scene
from planners.urdf import model_dir
from sim.screen import WorldScreen
from sim.validate import validate
from sim.world import World

__all__ = ["REFERENCE_CELL", "run_demo"]

REFERENCE_CELL = Path(__file__).resolve().parent / "phone_screw.toml"
_APPROACH = 0.03  # m above the hole, along its axis


def run_demo(
    console: Console, seed: int = 0, holes: int = 3, cell_path: Path = REFERENCE_CELL
) -> None:
    """Plan, time and validate moves to the first ``holes`` approach poses of a cell."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    cell = load_cell(cell_path)
    robot = next(iter(cell.robots.values()))
    arm = robot.arm
    loaded = time.perf_counter() - t0
    console.print(
        f"cell [bold]{cell.name}[/] ({cell_path.name}): {robot.name} = {robot.model} + "
        f"{robot.tool}, {len(cell.holes)} holes, takt {cell.takt:.1f} s, loaded in {loaded:.2f} s"
    )
    obstacles: list[Obstacle] = []
    for fixture in cell.world_spec().bodies:
        path = model_dir(fixture.model) / f"{fixture.model}.urdf"
        obstacles.extend(obstacles_from_urdf(path, fixture.pose, prefix=fixture.name))
    t0 = time.perf_counter()
    model = CollisionModel(arm, Scene(tuple(obstacles), padding=0.002))
    space = collision_space(model, arm)
    built = time.perf_counter() - t0
    console.print(
        f"sphere model: {model.n_spheres} spheres, {len(obstacles)} obstacles ({built:.2f} s)"
    )

    table = Table(title="Approach moves: IK -> plan -> time -> validate in PyBullet")
    for col in (
        "hole",
        "IK",
        "plan",
        "waypoints",
        "duration s",
        "verdict",
        "min clearance mm",
        "ms",
    ):
        table.add_column(col, justify="right")
    q = arm.configuration("ready")
    with World(cell.world_spec()) as world:
        screen = WorldScreen(world, robot.name)
        for hole in list(cell.holes.values())[:holes]:
            started = time.perf_counter()
            goal = solve_ik(arm, hole.tcp_pose(_APPROACH), q, rng=rng)
            if not goal.success:
                table.add_row(hole.name, f"[red]{goal.reason}[/]", "", "", "", "", "", "")
                continue
            result = plan(space, q, goal.q, rng=rng, timeout=2.0)
            if result.path.size == 0:
                table.add_row(hole.name, "ok", f"[red]{result.reason}[/]", "", "", "", "", "")
                continue
            timed = time_parameterize(result.path, arm.limits)
            if timed.trajectory is None:
                table.add_row(
                    hole.name,
                    "ok",
                    "ok",
                    str(len(result.path)),
                    f"[red]{timed.reason}[/]",
                    "",
                    "",
                    "",
                )
                continue
            verdict = validate(world, robot.name, timed.trajectory, screen=screen)
            elapsed = (time.perf_counter() - started) * 1e3
            ok = "[green]OK[/]" if verdict.ok else f"[red]{verdict.first}[/]"
            clearance = (
                "far"
                if not np.isfinite(verdict.min_clearance)
                else f"{verdict.min_clearance * 1e3:.1f}"
            )
            duration = f"{timed.trajectory.duration:.2f}"
            waypoints = str(len(result.path))
            table.add_row(
                hole.name, "ok", "ok", waypoints, duration, ok, clearance, f"{elapsed:.0f}"
            )
            q = np.asarray(goal.q)
    console.print(table)
