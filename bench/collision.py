"""Collision benchmark: the batched sphere model against PyBullet's exact check.

Shipped scenes:

* ``panda/<set>``: the Panda with the Franka hand (fingers 6.5 cm apart, as the problems
  were generated) in the obstacles of the first MotionBenchMaker problem of each set
  (``table_pick``, ``bookshelf_small``, ``box``) of
  ``shared/benchmarks/mbm/panda_public.json``, copied to ``bench/data/mbm_scenes.json``
  (another file of that format by ``$ROBOTCELL_MBM``);
* ``ur5e/phone_cell``: the UR5e with the screwdriver over a table with the mid-frame
  fixture holding a phone mid-frame, the screw presenter and the part tray (their URDF
  collision boxes, :func:`planners.scene_urdf.obstacles_from_urdf`).

For each scene, configurations are drawn uniformly within the joint limits (seeded) and
checked with :meth:`planners.collision.CollisionModel.valid`:

* ``batched``: batches of 1,024, median over repeats;
* ``single``: one configuration per call (the Python call overhead included);
* ``pybullet``: :meth:`sim.exact.ExactChecker.in_collision` per configuration (set the
  joints, ``getClosestPoints`` per obstacle and per self-collision pair).

The JSON's headline figures are over all scenes (total configurations over total time).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from planners import load_arm
from planners.arm import Arm
from planners.collision import CollisionModel
from planners.errors import InputError
from planners.scene import Box, Obstacle, Scene, obstacle_from_dict
from planners.scene_urdf import obstacles_from_urdf
from planners.urdf import model_dir
from sim.client import bullet_client
from sim.exact import ExactChecker

__all__ = ["MBM_FILE", "print_table", "run", "scenes"]

MBM_FILE = Path(os.environ.get("ROBOTCELL_MBM", Path(__file__).parent / "data" / "mbm_scenes.json"))
MBM_SETS = ("table_pick", "bookshelf_small", "box")
FINGER_OPENING = 0.0325  # m per finger: 6.5 cm between the fingers
BATCH = 1024


def _pose(x: float, y: float, z: float, yaw: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = (x, y, z)
    return T


def phone_cell() -> Scene:
    """The UR5e screw-driving cell: table, fixture with mid-frame, presenter, tray."""
    table = Box("table", _pose(0.3, 0.0, -0.02), [0.6, 0.6, 0.02])
    fixture = _pose(0.45, 0.0, 0.0)
    obstacles: list[Obstacle] = [table]
    obstacles += obstacles_from_urdf(
        model_dir("midframe_fixture") / "midframe_fixture.urdf", fixture
    )
    obstacles += obstacles_from_urdf(
        model_dir("phone_midframe") / "phone_midframe.urdf", fixture @ _pose(0, 0, 0.02)
    )
    obstacles += obstacles_from_urdf(
        model_dir("screw_presenter") / "screw_presenter.urdf", _pose(0.35, 0.3, 0.0)
    )
    obstacles += obstacles_from_urdf(
        model_dir("part_tray") / "part_tray.urdf", _pose(0.3, -0.35, 0.0, np.pi / 2)
    )
    return Scene(tuple(obstacles), allowed=frozenset({("base_link", "table")}))


def scenes(mbm_file: Path = MBM_FILE) -> list[tuple[str, Arm, Scene]]:
    """The shipped scenes: ``(name, arm, scene)``."""
    import json

    out: list[tuple[str, Arm, Scene]] = []
    panda = load_arm("panda", "franka_hand", finger_opening=FINGER_OPENING)
    if not mbm_file.is_file():
        raise InputError(f"{mbm_file}: no such MotionBenchMaker file (the Panda scenes)")
    data = json.loads(mbm_file.read_text())
    for s in MBM_SETS:
        problem = data["problems"][s][0]
        obstacles = tuple(
            obstacle_from_dict(d, f"{s}[0].obstacles[{i}]")
            for i, d in enumerate(problem["obstacles"])
        )
        out.append((f"panda/{s}", panda, Scene(obstacles)))
    out.append(("ur5e/phone_cell", load_arm("ur5e", "screwdriver"), phone_cell()))
    return out


def _median_rate(fn: Any, n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / float(np.median(times))


def run(progress: Console | None = None, seed: int = 0, n_exact: int = 300) -> dict[str, Any]:
    """Measure every shipped scene; see the module doc.

    Args:
        progress: Console for progress lines, or ``None``.
        seed: Seed of the configuration sampler.
        n_exact: Configurations checked with PyBullet per scene.
    """
    rng = np.random.default_rng(seed)
    per_scene: dict[str, dict[str, Any]] = {}
    totals = {"batched": [0.0, 0.0], "single": [0.0, 0.0], "pybullet": [0.0, 0.0]}
    for name, arm, scene in scenes():
        if progress is not None:
            progress.print(f"{name}: {len(scene.obstacles)} obstacles ...")
        model = CollisionModel(arm, scene)
        Q = arm.limits.sample(rng, BATCH)
        model.valid(Q)  # compile
        model.valid(Q[0])
        batched = _median_rate(lambda: model.valid(Q), BATCH, 200)  # noqa: B023
        singles = Q[:256]

        def one_by_one() -> None:
            for q in singles:  # noqa: B023
                model.valid(q)  # noqa: B023

        single = _median_rate(one_by_one, len(singles), 15)
        valid_fraction = float(model.valid(Q).mean())
        with bullet_client() as client:
            exact = ExactChecker(client, arm, scene, model)
            exact.in_collision(Q[0])
            t0 = time.perf_counter()
            hits = [exact.in_collision(q) for q in Q[:n_exact]]
            pybullet_rate = n_exact / (time.perf_counter() - t0)
        per_scene[name] = {
            "arm": arm.name,
            "obstacles": len(scene.obstacles),
            "spheres": model.n_spheres,
            "self_pairs": len(model.self_pairs),
            "valid_fraction": valid_fraction,
            "exact_free_fraction": float(1 - np.mean(hits)),
            "batched_configs_per_s": batched,
            "single_configs_per_s": single,
            "pybullet_configs_per_s": pybullet_rate,
        }
        for key, rate in (("batched", batched), ("single", single), ("pybullet", pybullet_rate)):
            totals[key][0] += 1.0
            totals[key][1] += 1.0 / rate
    return {
        "batched_configs_per_s": totals["batched"][0] / totals["batched"][1],
        "single_configs_per_s": totals["single"][0] / totals["single"][1],
        "pybullet_configs_per_s": totals["pybullet"][0] / totals["pybullet"][1],
        "batch": BATCH,
        "seed": seed,
        "scenes": per_scene,
    }


def print_table(console: Console, result: dict[str, Any]) -> None:
    """Configurations per second per scene and overall, with the gain over PyBullet."""
    table = Table(title=f"Collision checks: configurations per second (batch {result['batch']})")
    for col in (
        "scene",
        "obstacles",
        "spheres",
        "valid %",
        "batched /s",
        "single /s",
        "pybullet /s",
        "batched / pybullet",
    ):
        table.add_column(col, justify="right")
    rows = [(name, doc) for name, doc in result["scenes"].items()]
    for name, doc in rows:
        table.add_row(
            name,
            str(doc["obstacles"]),
            str(doc["spheres"]),
            f"{doc['valid_fraction'] * 100:.1f}",
            f"{doc['batched_configs_per_s']:,.0f}",
            f"{doc['single_configs_per_s']:,.0f}",
            f"{doc['pybullet_configs_per_s']:,.0f}",
            f"{doc['batched_configs_per_s'] / doc['pybullet_configs_per_s']:,.0f}x",
        )
    table.add_row(
        "all (harmonic mean)",
        "",
        "",
        "",
        f"{result['batched_configs_per_s']:,.0f}",
        f"{result['single_configs_per_s']:,.0f}",
        f"{result['pybullet_configs_per_s']:,.0f}",
        f"{result['batched_configs_per_s'] / result['pybullet_configs_per_s']:,.0f}x",
    )
    console.print(table)
