"""Inspection plots (cells.plots) and ``inspect_target`` (cells.inspection)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from records_helpers import build_store
from typer.testing import CliRunner

from cells import plots
from cells.cell_file import load_cell
from cells.cli import app
from cells.inspection import inspect_plots, inspect_target
from cells.tasks import world_spec_of
from cells.tightening import TighteningSpec
from planners import Box, Capsule, CollisionModel, Cylinder, Scene, Sphere, load_arm
from planners.arm import Arm
from planners.errors import InputError
from planners.timing import time_parameterize
from planners.trajectory import Trajectory
from sim.spindle import Fault, ScrewJoint, tighten
from sim.world_scene import WorldScene

SPEC = TighteningSpec()
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ur5e() -> Arm:
    return load_arm("ur5e", "screwdriver")


@pytest.fixture(scope="module")
def traj(ur5e: Arm) -> Trajectory:
    q0 = ur5e.configuration("ready")
    steps = np.array([[0.0] * 6, [0.4, -0.2, 0.3, 0.1, 0.2, 0.5], [0.6, 0.1, 0.2, 0, 0, 0]])
    path = q0 + steps
    result = time_parameterize(path, ur5e.limits)
    assert result.trajectory is not None
    return result.trajectory


def _dashed(ax: Any) -> list[Any]:
    """The dashed lines of an axes (limits, takt, target)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]


def _solid(ax: Any) -> list[Any]:
    """The solid lines of an axes (the data)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]


def test_matplotlib_is_imported_only_inside_functions() -> None:
    # spatialmath (under planners) happens to import matplotlib itself, so the check is on
    # our source: no module-level import of matplotlib outside `if TYPE_CHECKING`.
    root = Path(__file__).resolve().parents[1]
    for name in ("cells/plots.py", "cells/inspection.py"):
        tree = ast.parse((root / name).read_text())
        for node in tree.body:
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("matplotlib") for a in node.names), name
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("matplotlib"), name
                assert (node.module or "") != "cells.plots", name


def test_joints_against_limits(traj: Trajectory, ur5e: Arm) -> None:
    fig = plots.plot_joints(traj, ur5e.limits, samples=200)
    assert len(fig.axes) == 4
    lim = ur5e.limits
    expected = (
        (lim.lower, lim.upper), (-lim.velocity, lim.velocity),
        (-lim.acceleration, lim.acceleration), (-lim.jerk, lim.jerk),
    )  # fmt: skip
    for order, (ax, quantity) in enumerate(zip(fig.axes, plots.JOINT_QUANTITIES, strict=True)):
        assert quantity in ax.get_ylabel()
        solid, dashed = _solid(ax), _dashed(ax)
        assert [ln.get_label() for ln in solid] == list(traj.joint_names)
        assert len(dashed) == 2 * traj.dof
        levels = sorted(float(ln.get_ydata()[0]) for ln in dashed)
        np.testing.assert_allclose(levels, sorted(np.concatenate(expected[order])))
        # The plotted values are the trajectory's own samples.
        t, y = solid[2].get_data()
        np.testing.assert_allclose(y, traj.sample(t, order)[:, 2])
    # Knots are among the samples, so the end states are drawn exactly.
    t0, q0 = _solid(fig.axes[0])[0].get_data()
    assert t0[-1] == traj.end_time and q0[-1] == pytest.approx(traj.q[-1, 0])


def test_joints_without_limits_and_mismatched_limits(traj: Trajectory) -> None:
    fig = plots.plot_joints(traj)
    assert all(not _dashed(ax) for ax in fig.axes)
    other = load_arm("panda")
    with pytest.raises(InputError, match=r"limits\.names"):
        plots.plot_joints(traj, other.limits)
    with pytest.raises(InputError, match="samples"):
        plots.plot_joints(traj, samples=1)


def test_obstacle_wireframes() -> None:
    T = np.eye(4)
    T[:3, 3] = [1.0, 2.0, 3.0]
    box = plots.obstacle_wireframe(Box("b", T, [0.1, 0.2, 0.3]))
    assert len(box) == 12
    lengths = sorted(round(float(np.linalg.norm(seg[1] - seg[0])), 9) for seg in box)
    assert lengths == [0.2] * 4 + [0.4] * 4 + [0.6] * 4
    corners = np.unique(np.concatenate(box).round(9), axis=0)
    np.testing.assert_allclose(corners.min(axis=0), [0.9, 1.8, 2.7])
    np.testing.assert_allclose(corners.max(axis=0), [1.1, 2.2, 3.3])
    sphere = plots.obstacle_wireframe(Sphere("s", T, 0.05))
    assert len(sphere) == 3
    for circle in sphere:
        np.testing.assert_allclose(np.linalg.norm(circle - T[:3, 3], axis=1), 0.05)
    assert len(plots.obstacle_wireframe(Cylinder("c", T, 0.05, 0.2))) == 6
    capsule = plots.obstacle_wireframe(Capsule("k", T, 0.05, 0.2))
    assert len(capsule) == 10
    z = np.concatenate(capsule)[:, 2] - 3.0
    assert z.min() == pytest.approx(-0.15) and z.max() == pytest.approx(0.15)


def test_tcp_path_with_obstacles(traj: Trajectory, ur5e: Arm) -> None:
    obstacles = (Box("table", np.eye(4), [0.5, 0.5, 0.01]), Sphere("ball", np.eye(4), 0.1))
    fig = plots.plot_tcp_path(ur5e, traj, obstacles, samples=100)
    (ax,) = fig.axes
    assert ax.name == "3d"
    lines = ax.get_lines()
    path = lines[0]
    assert path.get_label() == "TCP path"
    x, y, z = path.get_data_3d()
    ends = ur5e.fk_batch(traj.q[[0, -1]])[:, :3, 3]
    np.testing.assert_allclose([x[0], y[0], z[0]], ends[0])
    np.testing.assert_allclose([x[-1], y[-1], z[-1]], ends[1])
    assert len(lines) == 1 + 12 + 3
    with pytest.raises(InputError, match="joints"):
        plots.plot_tcp_path(load_arm("panda"), traj)


def test_clearance_over_time(traj: Trajectory, ur5e: Arm) -> None:
    wall = np.eye(4)
    wall[:3, 3] = [0.0, -0.6, 0.4]
    model = CollisionModel(ur5e, Scene((Box("wall", wall, [0.5, 0.01, 0.5]),), padding=0.002))
    t, c = plots.clearance_over_time(model, traj, samples=50)
    assert t.shape == c.shape and t.size >= 50
    np.testing.assert_allclose(c, model.clearance(traj.sample(t)))
    assert np.all(np.isfinite(c))
    fig = plots.plot_clearance(t, c, padding=0.002)
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), c * 1e3)
    assert sorted(float(ln.get_ydata()[0]) for ln in _dashed(ax)) == [0.0, 2.0]
    assert f"{c.min() * 1e3:.1f} mm" in ax.get_title()
    with pytest.raises(InputError, match="shape"):
        plots.plot_clearance(t, c[:-1])


def test_timeline_lanes_and_colours() -> None:
    rows = [
        ("pick screw", "pick", 0.0, 1.5), ("screw h1", "screw", 1.5, 4.0),
        ("pick screw", "pick", 4.0, 5.0), ("screw h8", "screw", 5.0, 7.5),
    ]  # fmt: skip
    fig = plots.plot_timeline(rows, title="cycle 1")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pick screw", "screw h1", "screw h8"]
    bars = ax.collections
    assert len(bars) == 4
    colours = [tuple(b.get_facecolor()[0]) for b in bars]
    assert colours[0] == colours[2] != colours[1] == colours[3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pick", "screw"]
    assert ax.get_title() == "cycle 1"
    with pytest.raises(InputError, match="rows"):
        plots.plot_timeline([])
    with pytest.raises(InputError, match=r"rows\[0\]"):
        plots.plot_timeline([("a", "b", 2.0, 1.0)])


def test_cycle_times_against_takt() -> None:
    fig = plots.plot_cycle_times([30.0, 33.0, 31.0], takt=32.0, labels=["A", "B", "C"])
    (ax,) = fig.axes
    bars = ax.patches
    assert [b.get_height() for b in bars] == [30.0, 33.0, 31.0]
    red = [b.get_facecolor() for b in bars]
    assert red[0] == red[2] != red[1]
    (takt,) = _dashed(ax)
    assert takt.get_ydata()[0] == 32.0
    assert "1 over takt" in ax.get_title()
    assert not _dashed(plots.plot_cycle_times([30.0]).axes[0])
    with pytest.raises(InputError, match="labels"):
        plots.plot_cycle_times([1.0, 2.0], labels=["x"])


def test_torque_angle_one_panel_per_nok_kind() -> None:
    ok = tighten(ScrewJoint(), SPEC.program(), np.random.default_rng(1))
    noks = {
        f.value: tighten(ScrewJoint(), SPEC.program(), np.random.default_rng(2), f)
        for f in Fault
        if f is not Fault.NONE
    }
    fig = plots.plot_torque_angle(noks, SPEC, reference=ok)
    assert len(fig.axes) == len(noks) == 6
    for ax, (name, trace) in zip(fig.axes, noks.items(), strict=True):
        solid = _solid(ax)
        assert [ln.get_label() for ln in solid] == ["OK", name]
        np.testing.assert_allclose(solid[1].get_ydata(), trace.torque)
        levels = sorted(float(ln.get_xydata()[0][i]) for ln in _dashed(ax) for i in (0, 1))
        assert SPEC.target_torque in levels
        assert SPEC.angle_min in levels and SPEC.angle_max in levels
    alone = plots.plot_torque_angle({}, reference=ok)
    assert len(alone.axes) == 1 and not _dashed(alone.axes[0])
    with pytest.raises(InputError, match="traces"):
        plots.plot_torque_angle({})


# ------------------------------------------------------------------------------ inspect
def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_inspect_a_trajectory_file(traj: Trajectory, tmp_path: Path, suffix: str) -> None:
    src = tmp_path / f"move{suffix}"
    traj.save(src)
    out = tmp_path / "out" / "png"
    written = inspect_target(str(src), out)
    assert [p.name for p in written] == ["move_joints.png", "move_tcp.png"]
    assert all(p.parent == out and _is_png(p) for p in written)


def test_inspect_a_trajectory_of_unknown_joints(tmp_path: Path) -> None:
    src = tmp_path / "axes.json"
    Trajectory(("a", "b"), [0.0, 1.0], [[0, 0], [1, 2]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]).save(
        src
    )
    assert [p.name for p in inspect_target(str(src), tmp_path)] == ["axes_joints.png"]


def test_inspect_a_run(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    run = build_store(db).run_id
    written = inspect_target(str(run), tmp_path / "out", db)
    assert [p.name for p in written] == [
        f"run{run}_cycle1_timeline.png", f"run{run}_cycle3_timeline.png",
        f"run{run}_cycle_times.png", f"run{run}_torque_angle.png",
    ]  # fmt: skip
    assert all(_is_png(p) for p in written)


def test_bad_targets(tmp_path: Path, traj: Trajectory) -> None:
    db = tmp_path / "results.sqlite"
    run = build_store(db).run_id
    cases = {
        "cells/phone_screw.toml": "expected a trajectory file",
        "nope": "expected a trajectory file",
        str(tmp_path / "missing.npz"): "no such trajectory file",
        str(run + 41): f"no run with that id in {db}",
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    cases[str(bad)] = "not a valid trajectory"
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    cases[str(broken)] = "not a valid trajectory"
    for target, message in cases.items():
        with pytest.raises(InputError, match=message) as info:
            inspect_target(target, tmp_path / "out", db)
        assert "\n" not in str(info.value) and target in str(info.value)
    assert not (tmp_path / "out").exists()


def _wrote(output: str) -> list[Path]:
    return [Path(line.removeprefix("wrote ")) for line in output.splitlines() if "wrote " in line]


def test_inspect_a_trajectory_in_a_cell(traj: Trajectory, tmp_path: Path) -> None:
    """--cell: the robot with its tool among the cell's obstacles, and the clearance."""
    src = tmp_path / "move.npz"
    traj.save(src)
    out = tmp_path / "png"
    shown = CliRunner().invoke(
        app, ["inspect", str(src), "--cell", "cells/phone_screw.toml", "--out", str(out)]
    )
    assert shown.exit_code == 0, shown.output
    written = _wrote(shown.output)
    assert [p.name for p in written] == ["move_joints.png", "move_tcp.png", "move_clearance.png"]
    assert all(_is_png(p) and p.stat().st_size > 10_000 for p in written)
    assert "not made" not in shown.output
    # the figures: the screwdriver's TCP among the cell's fixtures, the clearance of its model
    cell = load_cell(Path("cells/phone_screw.toml"))
    arm = cell.robots["screw_arm"].arm
    done = inspect_plots(str(src), tmp_path / "again", cell=Path("cells/phone_screw.toml"))
    assert [p.name for p in done.written] == [p.name for p in written] and not done.skipped
    tcp = plots.plot_tcp_path(
        arm, traj, WorldScene(world_spec_of(cell, driven=False), arm).model().scene.obstacles
    )
    assert "screwdriver" in tcp.axes[0].get_title() and len(tcp.axes[0].lines) > 20
    # drawings leave out the bodies parked far below the cell for driven screws
    assert tcp.axes[0].get_zlim()[0] > -1.0
    parked = [b.name for b in world_spec_of(cell).bodies if b.pose[2, 3] < -1.0]
    assert len(parked) == len(cell.holes)
    assert all(b.pose[2, 3] > -1.0 for b in world_spec_of(cell, driven=False).bodies)


def test_inspect_a_trajectory_without_a_cell_says_what_it_did_not_make(
    traj: Trajectory, tmp_path: Path
) -> None:
    src = tmp_path / "move.npz"
    traj.save(src)
    shown = CliRunner().invoke(app, ["inspect", str(src), "--out", str(tmp_path / "png")])
    assert shown.exit_code == 0, shown.output
    assert [p.name for p in _wrote(shown.output)] == ["move_joints.png", "move_tcp.png"]
    skipped = [ln for ln in shown.output.splitlines() if ln.startswith("not made: ")]
    assert skipped == [
        "not made: TCP path with the tool among the cell's obstacles: no cell given "
        "(--cell CELL.toml)",
        "not made: clearance over time: no cell given (--cell CELL.toml)",
    ]


def test_inspect_a_trajectory_of_another_arm_than_the_cells(
    traj: Trajectory, tmp_path: Path
) -> None:
    """A UR5e trajectory in a Panda cell: one line, exit code 2, nothing written."""
    src = tmp_path / "move.npz"
    traj.save(src)
    cell = tmp_path / "panda.toml"
    text = Path("cells/phone_screw.toml").read_text()
    cell.write_text(text.replace('arm = "ur5e"', 'arm = "panda"', 1))
    proc = subprocess.run(
        [sys.executable, "-m", "cells", "inspect", str(src), "--cell", str(cell),
         "--out", str(tmp_path / "png")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "60"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: target '{src}': joints ['shoulder_pan_joint'")
    assert "not those of a robot of cell 'phone_screw'" in lines[0] and "panda" in lines[0]
    assert not (tmp_path / "png").exists()


def test_inspect_a_run_says_what_it_did_not_make(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    run = build_store(db).run_id
    done = inspect_plots(str(run), tmp_path / "out", db)
    assert len(done.written) == 4
    assert [plot for plot, _ in done.skipped] == ["joints, TCP path, clearance over time"]
    assert "--report" in done.skipped[0][1]
    with pytest.raises(InputError, match=r"--cell 'cells/phone_screw\.toml': only for a traj"):
        inspect_plots(str(run), tmp_path / "out", db, Path("cells/phone_screw.toml"))
