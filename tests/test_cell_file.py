"""Cell files: the reference cells load and are reachable; every malformed field gives one line."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cells.cell_file import CellFileError, load_cell
from cells.cell_model import Cell, SegmentKind
from cells.tightening import Reaction, Reason
from planners import solve_ik
from planners.errors import RobotCellError, UnknownNameError

CELLS = Path(__file__).resolve().parent.parent / "cells"
SCREW = CELLS / "phone_screw.toml"
PICK = CELLS / "phone_pick_place.toml"


@pytest.fixture(scope="module")
def screw_cell() -> Cell:
    return load_cell(SCREW)


@pytest.fixture(scope="module")
def pick_cell() -> Cell:
    return load_cell(PICK)


def test_screw_cell_content(screw_cell: Cell) -> None:
    assert screw_cell.name == "phone_screw" and screw_cell.takt == 32.0
    assert list(screw_cell.holes) == ["h1", "h8", "h4", "h5", "h2", "h7", "h3", "h6"]
    h1 = screw_cell.hole("h1")
    # Mid-frame hole h1 (-0.0655, 0.0265, 0.004) + nest midframe_pose z 0.020 + nest at x 0.45.
    np.testing.assert_allclose(h1.position, [0.45 - 0.0655, 0.0265, 0.024], atol=1e-12)
    np.testing.assert_allclose(h1.axis, [0, 0, 1])
    assert h1.tightening.target_torque == 0.10
    assert (h1.tightening.angle_min, h1.tightening.angle_max) == (3450.0, 3800.0)
    feed = screw_cell.feed_for("M1.4")
    assert feed.screw.pitch == 0.0003 and feed.screw.length == 0.003
    np.testing.assert_allclose(feed.pose[:3, 3], [0.47, -0.12, 0.0408])
    assert screw_cell.speeds.cap(SegmentKind.ENGAGE) == 0.005
    assert screw_cell.reaction.react(Reason.HOLE_POSITION) is Reaction.STOP_CELL
    assert screw_cell.robot("screw_arm").tool == "screwdriver"
    with pytest.raises(UnknownNameError, match="h1"):
        screw_cell.hole("h9")


def test_pick_cell_content_and_world(pick_cell: Cell) -> None:
    assert list(pick_cell.parts) == ["camera_module", "mainboard", "battery"]
    battery = pick_cell.part("battery")
    assert battery.tolerance_position == 0.0002
    assert battery.tolerance_rotation == pytest.approx(math.radians(0.5))
    # Slot battery (0.042, 0, 0.001) in the mid-frame on the nest (z 0.020) at x 0.45.
    np.testing.assert_allclose(battery.target[:3, 3], [0.492, 0.0, 0.021], atol=1e-12)
    assert battery.placed_within_tolerance(battery.target)
    off = battery.target.copy()
    off[0, 3] += 0.0003
    assert not battery.placed_within_tolerance(off)
    # The gripper points down onto the part, fingers closing along the part's y.
    np.testing.assert_allclose(battery.pick_tcp()[:3, 2], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(abs(battery.pick_tcp()[:3, 0] @ battery.pose[:3, 1]), 1.0)
    with pytest.raises(UnknownNameError):
        pick_cell.speeds.cap(SegmentKind.ENGAGE)
    spec = pick_cell.world_spec()
    assert set(spec.arms) == {"pick_arm"}
    names = {b.name: b for b in spec.bodies}
    assert set(names) == {"nest", "frame", "tray", "camera_module", "mainboard", "battery"}
    assert names["tray"].fixed and not names["battery"].fixed


def _reachable(cell: Cell, poses: dict[str, np.ndarray]) -> list[str]:
    arm = next(iter(cell.robots.values())).arm
    ref = arm.configuration("ready")
    rng = np.random.default_rng(0)
    return [
        f"{k}: {r.reason}"
        for k, T in poses.items()
        if not (r := solve_ik(arm, T, ref, rng=rng)).success
    ]


def test_every_screw_pose_has_an_ik_solution(screw_cell: Cell) -> None:
    poses = {}
    for h in screw_cell.holes.values():
        s = screw_cell.screws[h.screw]
        poses[f"{h.name} approach"] = h.tcp_pose(s.length + s.head_height + 0.02)
        poses[f"{h.name} engage"] = h.tcp_pose(s.length + s.head_height)
        poses[f"{h.name} seated"] = h.tcp_pose(s.head_height)
    for f in screw_cell.feeds.values():
        poses[f"{f.name} pick"] = f.tcp_pose()
        poses[f"{f.name} above"] = f.tcp_pose(0.03)
    assert _reachable(screw_cell, poses) == []
    # The tool points along the hole axis, into the hole.
    h = screw_cell.hole("h3")
    np.testing.assert_allclose(h.tcp_pose()[:3, 2], -h.axis)


def test_every_pick_and_place_pose_has_an_ik_solution(pick_cell: Cell) -> None:
    poses = {}
    for p in pick_cell.parts.values():
        for d in (0.0, 0.05):
            poses[f"{p.name} pick {d}"] = p.pick_tcp(d)
            poses[f"{p.name} place {d}"] = p.place_tcp(d)
    assert _reachable(pick_cell, poses) == []


TILTED = """
[cell]
name = "tilted"
takt = 10.0

[[robots]]
name = "arm"
arm = "ur5e"
tool = "screwdriver"
base = { xyz = [0.0, 0.0, 0.0], quat = [0.0, 0.0, 0.0, 1.0] }

[[fixtures]]
name = "nest"
model = "midframe_fixture"
pose = { xyz = [0.45, 0.0, 0.0] }

[[fixtures]]
name = "frame"
model = "phone_midframe"
pose = { frame = "nest/midframe" }

[[fixtures]]
name = "presenter"
model = "screw_presenter"
pose = { xyz = [0.25, -0.35, 0.0] }

[tightening]
target_torque = 0.10
angle_window_deg = [3450.0, 3800.0]

[[holes]]
name = "tilted"
frame = "frame"
position = [0.0, 0.0265, 0.004]
axis = [0.0, 0.5, 0.8660254037844386]  # 30 deg towards +y
screw = "M1.4"
target_torque = 0.08

[[holes]]
name = "sideways"
position = [0.65, -0.05, 0.10]
axis = [-2.0, 0.0, 0.0]  # not normalised, pointing back at the robot
screw = "M1.4"

[speeds]
transfer = 1.0
approach = 0.25
insert = 0.02
engage = 0.005
retract = 0.1
"""


def _write(tmp_path: Path, text: str, name: str = "cell.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_tilted_and_sideways_holes_are_reachable_along_their_axis(tmp_path: Path) -> None:
    cell = load_cell(_write(tmp_path, TILTED))
    tilted = cell.hole("tilted")
    np.testing.assert_allclose(tilted.axis, [0, 0.5, math.sqrt(3) / 2])
    np.testing.assert_allclose(tilted.position, [0.45, 0.0265, 0.024])
    assert tilted.tightening.target_torque == 0.08
    sideways = cell.hole("sideways")
    np.testing.assert_allclose(sideways.axis, [-1, 0, 0])
    poses = {
        f"{h.name} {d}": h.tcp_pose(d) for h in cell.holes.values() for d in (0.0008, 0.0038, 0.03)
    }
    assert _reachable(cell, poses) == []
    np.testing.assert_allclose(sideways.tcp_pose(0.01)[:3, 3], [0.64, -0.05, 0.10])


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


BAD = [
    # (what, edit of TILTED, expected message after "cell.toml:")
    ("missing key", ("takt = 10.0\n", ""), r"cell\.takt: missing, expected a number \[s\]"),
    ("wrong type", ("takt = 10.0", 'takt = "fast"'), r"cell\.takt: got a string 'fast', expected"),
    ("negative takt", ("takt = 10.0", "takt = -1.0"),
     r"cell\.takt: got -1, expected a number in \(0, 86400\] \[s\]"),
    ("unknown key", ('name = "tilted"\n', 'name = "tilted"\ntakte = 3\n'),
     r"cell\.takte: unknown key, expected one of: name, screw_order, takt"),
    ("unknown top key", ("[speeds]", "[speed]\nx = 1\n[speeds]"), r"speed: unknown key"),
    ("unknown arm", ('arm = "ur5e"', 'arm = "ur6"'),
     r"robots\[0\]\.arm: unknown arm model 'ur6', expected one of: .*panda.*ur5e"),
    ("unknown tool", ('tool = "screwdriver"', 'tool = "hammer"'),
     r"robots\[0\]\.tool: unknown tool model 'hammer', expected one of: .*screwdriver"),
    ("unknown fixture model", ('model = "midframe_fixture"', 'model = "midframe"'),
     r"fixtures\[0\]\.model: unknown fixture model 'midframe', expected one of: "
     r".*midframe_fixture"),
    ("zero axis", ("axis = [-2.0, 0.0, 0.0]", "axis = [0.0, 0.0, 0.0]"),
     r"holes\[1\]\.axis: zero vector, expected a non-zero direction"),
    ("short vector", ("axis = [-2.0, 0.0, 0.0]", "axis = [1.0, 0.0]"),
     r"holes\[1\]\.axis: got 2 values, expected an array of 3 numbers"),
    ("negative torque", ("target_torque = 0.08", "target_torque = -0.08"),
     r"holes\[0\]\.target_torque: got -0\.08, expected a number in \(0, 5\] \[N m\]"),
    ("absurd torque", ("target_torque = 0.08", "target_torque = 80.0"),
     r"holes\[0\]\.target_torque: got 80, expected a number in \(0, 5\]"),
    ("non-finite", ("position = [0.65, -0.05, 0.10]", "position = [0.45, nan, 0.03]"),
     r"holes\[1\]\.position\[1\]: got nan, expected a finite number \[m\]"),
    ("infinite", ("takt = 10.0", "takt = inf"), r"cell\.takt: got inf, expected a finite number"),
    ("duplicate name", ('name = "sideways"', 'name = "tilted"'),
     r"holes\[1\]\.name: duplicate name 'tilted' \(already used by holes\[0\]\)"),
    ("duplicate body name", ('name = "presenter"', 'name = "arm"'),
     r"fixtures\[2\]\.name: duplicate name 'arm' \(already used by robots\[0\]\)"),
    ("bad frame", ('frame = "nest/midframe"', 'frame = "nest/middle"'),
     r"fixtures\[1\]\.pose\.frame: unknown frame 'nest/middle', expected one of: nest, "),
    ("bad screw", ('screw = "M1.4"\ntarget', 'screw = "M2"\ntarget'),
     r"holes\[0\]\.screw: screw 'M2' is presented by no fixture, expected one of: M1\.4"),
    ("bad window", ("angle_window_deg = [3450.0, 3800.0]", "angle_window_deg = [100.0, 200.0]"),
     r"holes\[0\]\.angle_window_deg: \[100, 200\] deg does not contain the nominal seat angle "
     r"3600 deg"),
    ("inverted window", ("angle_window_deg = [3450.0, 3800.0]", "angle_window_deg = [3.0, 1.0]"),
     r"tightening\.angle_window_deg: got \[3, 1\], expected \[min, max\] with 0 < min < max"),
    ("inconsistent limits", ("target_torque = 0.08", "target_torque = 0.08\nmax_torque = 0.05"),
     r"holes\[0\]: TighteningSpec: max_torque must be at least"),
    ("quat and rpy", ("quat = [0.0, 0.0, 0.0, 1.0]", "quat = [0.0, 0.0, 0.0, 1.0], rpy = [0,0,0]"),
     r"robots\[0\]\.base\.quat: given together with rpy"),
    ("zero quat", ("quat = [0.0, 0.0, 0.0, 1.0]", "quat = [0.0, 0.0, 0.0, 0.0]"),
     r"robots\[0\]\.base\.quat: zero quaternion"),
    ("bad speed", ("engage = 0.005", "engage = 0.0"),
     r"speeds\.engage: got 0, expected a number in \(0, 5\] \[m/s\]"),
    ("missing speed", ("engage = 0.005\n", ""), r"speeds\.engage: missing"),
    ("bad reaction", ("[speeds]", '[reaction]\nstripped = "ignore"\n[speeds]'),
     r"reaction\.stripped: got 'ignore', expected one of: retry, reject_part, stop_cell"),
    ("site and position", ('name = "sideways"\n', 'name = "sideways"\nsite = "frame/h1"\n'),
     r"holes\[1\]\.position: given together with site"),
    ("unknown site", ('name = "sideways"\n', 'name = "sideways"\nsite = "frame/h99"\n'),
     r"holes\[1\]\.site: unknown hole site 'frame/h99', expected one of: frame/h1, "),
    ("configuration outside limits", ("[[fixtures]]", "[robots.configurations]\nready = "
     "[9.0, 0.0, 0.0, 0.0, 0.0, 0.0]\n\n[[fixtures]]"),
     r"robots\[0\]\.configurations\.ready: outside the joint limits"),
    ("configuration length", ("[[fixtures]]", "[robots.configurations]\nready = [0.0]\n\n"
     "[[fixtures]]"), r"robots\[0\]\.configurations\.ready: got an array \[0\.0\], expected an "
     r"array of 6 joint values"),
    ("not toml", ("[cell]", "[cell"), r" not valid TOML \("),
]  # fmt: skip


@pytest.mark.parametrize("edit,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_cell_gives_one_line(tmp_path: Path, edit: tuple[str, str], pattern: str) -> None:
    path = _write(tmp_path, _edit(TILTED, *edit))
    with pytest.raises(CellFileError) as info:
        load_cell(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    assert re.search(pattern, message), message
    assert isinstance(info.value, RobotCellError)


def test_pick_place_errors(tmp_path: Path) -> None:
    text = PICK.read_text()
    bad = _edit(
        text, 'target = { frame = "frame/battery" }', 'target = { frame = "frame/mainboard" }'
    )
    wrong_slot = (
        r"parts\[2\]\.target\.frame: site 'frame/mainboard' is for part model 'mainboard', "
        r"expected a site for 'battery'"
    )
    with pytest.raises(CellFileError, match=wrong_slot):
        load_cell(_write(tmp_path, bad, "a.toml"))
    bad = _edit(text, 'model = "battery"', 'model = "batery"')
    with pytest.raises(CellFileError, match=r"parts\[2\]\.model: unknown part model 'batery', "
                       r"expected one of: .*battery"):  # fmt: skip
        load_cell(_write(tmp_path, bad, "b.toml"))
    bad = _edit(text, "angle_deg = 0.5 }", "angle_deg = 0.5, position_mm = 0.2 }")
    with pytest.raises(CellFileError, match=r"parts\[0\]\.tolerance\.position_mm: unknown key"):
        load_cell(_write(tmp_path, bad, "c.toml"))
    with pytest.raises(CellFileError, match="no such file"):
        load_cell(tmp_path / "nope.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00[cell]")
    with pytest.raises(CellFileError, match=r"binary\.toml:.*not valid TOML \(not UTF-8\)"):
        load_cell(binary)
    with pytest.raises(CellFileError, match=r": a directory, expected a cell file \(\.toml\)$"):
        load_cell(tmp_path)


def test_cli_check_cell(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "COLUMNS": "500"}
    ok = subprocess.run(
        [sys.executable, "-m", "cells", "check-cell", str(SCREW)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert ok.returncode == 0 and "phone_screw" in ok.stdout, ok.stderr
    path = _write(tmp_path, _edit(TILTED, "axis = [-2.0, 0.0, 0.0]", "axis = [0, 0, 0]"))
    bad = subprocess.run(
        [sys.executable, "-m", "cells", "check-cell", str(path)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    lines = [ln for ln in bad.stderr.splitlines() if not ln.startswith("pybullet build")]
    assert bad.returncode == 2
    assert lines == [f"error: {path}:holes[1].axis: zero vector, expected a non-zero direction"]


@pytest.mark.parametrize("command", ["check-cell", "run"])
def test_cli_directory_is_not_a_cell_file(tmp_path: Path, command: str) -> None:
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "cells", command, str(tmp_path), *(
            ["--db", str(tmp_path / "r.sqlite")] if command == "run" else [])],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "500"},
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("pybullet build")]
    assert proc.returncode == 2, proc.stderr
    assert lines == [f"error: {tmp_path}: a directory, expected a cell file (.toml)"]
    assert not (tmp_path / "r.sqlite").exists()
