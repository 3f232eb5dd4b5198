"""The cell controller end to end: plan, validate, run, judge, react, record.

A two-hole copy of the reference screw cell keeps each run short; every planted fault
must be found with its own reason and met with the cell's reaction.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cells.cell_file import load_cell
from cells.cli import app
from cells.controller import CellController
from cells.cycle_results import Injection, parse_injection
from cells.records import ResultsStore
from cells.tasks import seated_body
from planners.errors import InputError
from planners.scene import Box
from sim.spindle import Fault
from sim.verdict import ViolationKind
from sim.world import World

SCREW = Path("cells/phone_screw.toml")
PICK = Path("cells/phone_pick_place.toml")


def _holes_block(text: str) -> tuple[str, str]:
    start = text.index("[[holes]]")
    end = text.index("[speeds]")
    return text[:start], text[end:]


@pytest.fixture(scope="module")
def two_holes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    head, tail = _holes_block(SCREW.read_text())
    holes = "".join(f'[[holes]]\nname = "{h}"\nsite = "frame/{h}"\n\n' for h in ("h1", "h8"))
    path = tmp_path_factory.mktemp("cells") / "two_holes.toml"
    # file order: the fault tests below plant faults at h1, the first screw
    head = head.replace('screw_order = "shortest"', 'screw_order = "file"', 1)
    path.write_text(head + holes + tail)
    return path


@pytest.fixture(scope="module")
def controller(two_holes: Path):  # type: ignore[no-untyped-def]
    with CellController(load_cell(two_holes), seed=3) as c:
        yield c


def test_parse_injection() -> None:
    assert parse_injection("cross_thread@3") == Injection(Fault.CROSS_THREAD, 3)
    for bad in ("cross_thread", "bogus@1", "none@0", "stripped@-1", "stripped@x"):
        with pytest.raises(InputError, match="--inject"):
            parse_injection(bad)


def test_screw_program_follows_the_process(controller: CellController) -> None:
    programs = controller.plan_cycle()
    assert [p.kind for p in programs] == ["screw", "screw", "home"]
    p = programs[0]
    labels = [s.label for s in p.segments]
    assert labels == [
        "transfer to presenter", "approach screw", "bit into screw", "vacuum on", "lift screw",
        "transfer to h1", "approach h1", "engage h1", "drive h1", "retract from h1",
    ]  # fmt: skip
    seg = {s.label: s for s in p.segments}
    caps = controller.cell.speeds.caps
    # the engage runs at the cell's engage cap, the drive at the screw's feed and as long
    # as the spindle needs for the nominal seat angle
    assert seg["engage h1"].tcp_cap == min(caps.values())
    screw = controller.cell.feed_for("M1.4").screw
    assert (
        seg["drive h1"].duration
        >= controller.planner.screw_process.drive_time(
            screw.seat_angle + controller.planner.screw_process.final_angle
        )
        - 1e-9
    )
    assert p.spindle[0].hole == "h1"
    assert [e.action.value for e in p.events] == ["grasp", "release"]
    assert not p.tcp_cap_violations(controller.arm)
    # the approach flows into the engage, which starts 1 mm above the thread and ends on it
    arm, sp, hole = controller.arm, controller.planner.screw_process, controller.cell.hole("h1")
    eng = seg["engage h1"]
    qd = p.trajectory.sample([eng.start], 1)[0]
    assert np.linalg.norm(qd) > 0  # no stop between the approach and the engage
    top = screw.head_height + screw.length
    for t, height in ((eng.start, top + sp.engage_distance), (eng.end, top)):
        tcp = np.asarray(arm.fk(p.trajectory.sample([t])[0]).A)[:3, 3]
        assert np.linalg.norm(tcp - hole.tcp_pose(height)[:3, 3]) < 2e-4  # the line's tolerance


def test_screw_order(two_holes: Path, tmp_path: Path) -> None:
    """Only the last leg depends on the order: "shortest" ends at the hole nearest home
    (relative to the presenter); "file" keeps the file's order."""
    text = two_holes.read_text().replace('screw_order = "file"', 'screw_order = "shortest"', 1)
    shortest = tmp_path / "shortest.toml"
    shortest.write_text(text)
    reverse = tmp_path / "reverse.toml"
    head, tail = _holes_block(text)
    holes = "".join(f'[[holes]]\nname = "{h}"\nsite = "frame/{h}"\n\n' for h in ("h8", "h1"))
    reverse.write_text(head + holes + tail)
    orders = []
    for path in (shortest, reverse, two_holes):
        with CellController(load_cell(path), physics=False) as c:
            orders.append([p.target for p in c.plan_cycle() if p.kind == "screw"])
    assert orders[0] == orders[1]  # the same best order from either file order
    assert orders[2] == ["h1", "h8"]  # screw_order = "file"
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('screw_order = "shortest"', 'screw_order = "random"', 1))
    with pytest.raises(InputError, match=r"bad.toml:cell.screw_order: 'random', expected one of"):
        load_cell(bad)


def test_good_cycle_runs_and_validates(controller: CellController) -> None:
    r = controller.run_cycle(0)
    assert r.verdict == "OK", r.reason
    assert [o.verdict for o in r.operations] == ["OK", "OK", "OK"]
    assert 0.0 < r.min_clearance < 0.01  # the bit comes within a head height of the boss
    assert r.cycle_time == pytest.approx(r.operations[-1].end)


@pytest.mark.parametrize(
    ("fault", "reaction"),
    [
        (Fault.MISSING_SCREW, "retry"),
        (Fault.NO_SEAT, "retry"),
        (Fault.CROSS_THREAD, "reject_part"),
        (Fault.STRIPPED, "reject_part"),
        (Fault.HIGH_TORQUE, "reject_part"),
        (Fault.HOLE_POSITION, "stop_cell"),
    ],
)
def test_each_planted_fault_is_found_with_its_reason(
    two_holes: Path, fault: Fault, reaction: str
) -> None:
    cell = load_cell(two_holes)
    with CellController(cell, seed=1, injections=[Injection(fault, 0)], physics=False) as c:
        r = c.run_cycle(0)
    first = r.operations[0]
    assert (first.target, first.verdict, first.reason) == ("h1", "NOK", fault.value)
    assert first.judgement is not None and first.judgement.reason.value == fault.value
    screws = [o for o in r.operations if o.kind == "screw"]
    if reaction == "retry":  # a new screw into h1, then h8: the phone is good
        assert [(o.target, o.attempt, o.verdict) for o in screws] == [
            ("h1", 1, "NOK"), ("h1", 2, "OK"), ("h8", 1, "OK"),
        ]  # fmt: skip
        assert r.verdict == "OK" and not r.stop
    elif reaction == "reject_part":  # h8 is skipped, the arm goes home, the cell goes on
        assert [o.target for o in screws] == ["h1"]
        assert r.operations[-1].kind == "home"
        assert r.verdict == "NOK" and r.reason == fault.value and not r.stop
    else:  # the cell is out of calibration: it stops where it is
        assert len(r.operations) == 1
        assert r.verdict == "NOK" and r.stop


def test_empty_pick_is_caught_by_the_vacuum_check_and_retried(two_holes: Path) -> None:
    """No screw came up with the bit: the check after the pick fails before any transfer,
    the bit lifts out of the presenter, picks again and the screw goes in."""
    planted = [parse_injection("empty_pick@0")]
    with CellController(load_cell(two_holes), injections=planted, physics=False) as c:
        r = c.run_cycle(0)
        assert c.screw_attempts == 3  # the empty pick, its retry, h8
    first = r.operations[0]
    assert (first.target, first.verdict, first.reason) == ("h1", "NOK", "missing_screw")
    assert "vacuum" in first.detail and first.judgement is None  # no tightening happened
    assert first.end - first.start < 1.5  # stopped at the presenter, not driven
    assert [(o.target, o.attempt, o.verdict) for o in r.operations[1:3]] == [
        ("h1", 2, "OK"), ("h8", 1, "OK"),
    ]  # fmt: skip
    labels = [s[0] for s in r.segments]
    assert "lift empty bit" in labels and r.verdict == "OK"


def test_retries_run_out(two_holes: Path) -> None:
    planted = [Injection(Fault.MISSING_SCREW, 0), Injection(Fault.MISSING_SCREW, 1)]
    with CellController(load_cell(two_holes), injections=planted, physics=False) as c:
        r = c.run_cycle(0)
    assert [(o.attempt, o.reason) for o in r.operations[:2]] == [
        (1, "missing_screw"), (2, "missing_screw"),
    ]  # fmt: skip
    assert r.verdict == "NOK" and not r.stop  # after_retries = reject_part


def test_trajectory_through_a_box_is_refused(controller: CellController) -> None:
    """A box the planner never saw, planted on the path: validation refuses the cycle."""
    programs = controller.plan_cycle()
    traj = programs[0].trajectory
    mid = next(s for s in programs[0].segments if s.label == "transfer to h1")
    tcp = np.asarray(controller.arm.fk(traj.sample([0.5 * (mid.start + mid.end)])[0]).A)
    box = Box("intruder", tcp, [0.01, 0.01, 0.01])
    spec = controller.world.spec
    planted = type(spec)(spec.arms, spec.bodies, (*spec.obstacles, box), spec.gravity)
    original = controller.world
    with World(planted) as world:
        controller.world, controller.screen = world, None  # type: ignore[assignment]
        try:
            verdict = controller.validate(programs[:1])
        finally:
            controller.world = original
    assert not verdict.ok
    hits = [v for v in verdict.of_kind(ViolationKind.COLLISION) if "intruder" in v.where]
    assert hits, verdict.violations
    assert hits[0].time <= 0.5 * (mid.start + mid.end)  # found by the time the TCP is there
    # the physics replay runs into it too: contact (or the joints' effort limits)
    replayed = verdict.of_kind(ViolationKind.CONTACT, ViolationKind.EFFORT)
    assert replayed and replayed[0].time <= mid.end


def test_a_driven_screw_stays_in_its_hole_for_later_programs(two_holes: Path) -> None:
    """Planted fault: a second screw planned into h1 after the first. The screw driven
    first stands in its hole while the programs after it are validated, so the second
    one runs into it (before this, the world held one screw body, back at the presenter
    for every program, and this passed)."""
    with CellController(load_cell(two_holes), seed=2, physics=False) as c:
        hole = c.cell.hole("h1")
        first = c.planner.screw(hole, c.planner.home())
        name = seated_body("h1")
        seated = first.left[name]
        assert np.linalg.norm(seated[:3, 3] - hole.tcp_pose(0.0)[:3, 3]) < 0.005
        assert c.validate([first]).ok
        c.planner.moved.pop(name)  # the planner must not know, as if it had lost track
        second = c.planner.screw(hole, first.q_end)
        for verdict in (c.validate([first, second]), c.validate([second], first.left)):
            assert not verdict.ok
            hits = verdict.of_kind(ViolationKind.COLLISION)
            assert hits and name in hits[0].where, verdict.violations
        # and another hole is still fine with h1's screw in place
        other = c.planner.screw(c.cell.hole("h8"), first.q_end)
        assert c.validate([first, other]).ok


def test_tilted_hole_is_approached_along_its_axis(tmp_path: Path) -> None:
    head, tail = _holes_block(SCREW.read_text())
    axis = np.array([0.0, np.sin(np.radians(30)), np.cos(np.radians(30))])
    # 5 cm beside the TCP at `ready` (0.40, 0, 0.08): with the hole right there, the bit
    # would go home into the screw it has just driven (the validator finds it).
    hole = (
        '[[holes]]\nname = "tilted"\nposition = [0.40, 0.05, 0.08]\n'
        f'axis = [{axis[0]}, {axis[1]}, {axis[2]}]\nscrew = "M1.4"\n\n'
    )
    path = tmp_path / "tilted.toml"
    path.write_text(head + hole + tail)
    cell = load_cell(path)
    with CellController(cell, seed=0) as c:
        program = c.plan_cycle()[0]
        verdict = c.validate([program])
    assert verdict.ok, verdict.first
    arm = cell.robots["screw_arm"].arm
    for label in ("approach tilted", "engage tilted", "drive tilted"):
        seg = next(s for s in program.segments if s.label == label)
        for t in np.linspace(seg.start, seg.end, 7):
            T = np.asarray(arm.fk(program.trajectory.sample([t])[0]).A)
            assert T[:3, 2] @ -axis > np.cos(1e-3)  # the bit along the hole axis
            off = T[:3, 3] - np.array([0.40, 0.05, 0.08])
            assert np.linalg.norm(off - (off @ axis) * axis) < 1e-4  # on the axis line


def test_pick_place_parts_end_within_tolerance_in_the_replay() -> None:
    cell = load_cell(PICK)
    with CellController(cell, seed=0) as c:
        programs = c.plan_cycle()
        verdict = c.validate(programs)
        assert verdict.ok, verdict.first
        assert "replay_steps" in verdict.stats
        # the same programs judged against targets 1 mm away: the replay sees it
        part = next(iter(cell.parts.values()))
        moved = np.array(part.target)
        moved[0, 3] += 0.001
        object.__setattr__(part, "target", moved)
        try:
            off = c.validate(programs)
        finally:
            object.__setattr__(part, "target", cell.parts[part.name].target)
    kinds = {v.kind for v in off.violations}
    assert kinds == {ViolationKind.PART_POSE}, off.violations
    assert any(part.name in v.where for v in off.violations)


def test_run_records_everything_and_writes_json(two_holes: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app,
        ["run", str(two_holes), "--cycles", "2", "--inject", "stripped@1", "--db", str(db),
         "--json", str(out), "--report", str(tmp_path / "rep")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) >= {"cell", "cycles", "cycle_time_s", "plan_time_s", "validate_time_s",
                         "min_clearance_m", "operations"}  # fmt: skip
    assert data["cycles"] == 2
    ops = data["operations"]
    assert [o["verdict"] for o in ops] == ["OK", "NOK", "OK", "OK"]
    assert ops[1] == {"kind": "screw", "index": 1, "verdict": "NOK", "reason": "stripped"}
    assert re.search(r"cycle s", result.output) and "takt" in result.output
    with ResultsStore(db, create=False) as store:
        run = store.runs()[0]
        assert run.status == "finished" and run.cycles == 2
        cycles = store.cycles(run.id)
        assert [c.verdict for c in cycles] == ["NOK", "OK"]
        # the cell's clock: a cycle lasts as long as its operations, back to back
        ops2 = store.operations(cycles[1].id)
        assert cycles[1].finished - cycles[1].started == pytest.approx(
            sum(o.finished - o.started for o in ops2)
        )
        assert ops2[0].started == pytest.approx(cycles[1].started)
        ops1 = store.operations(cycles[0].id)
        assert [(o.kind, o.target, o.verdict) for o in ops1] == [
            ("screw", "h1", "OK"), ("screw", "h8", "NOK"), ("home", "home", "OK"),
        ]  # fmt: skip
    assert (tmp_path / "rep" / "cycles.json").is_file()
    saved = sorted((tmp_path / "rep").glob("*_screw_h1.npz"))
    assert saved
    # cellctl inspect: the run's plots and a saved trajectory's, as PNG files
    for target in (str(run.id), str(saved[0])):
        shown = CliRunner().invoke(
            app, ["inspect", target, "--db", str(db), "--out", str(tmp_path / "png")]
        )
        assert shown.exit_code == 0, shown.output
        written = [line.split()[-1] for line in shown.output.splitlines() if "wrote" in line]
        assert written and all(Path(w).suffix == ".png" and Path(w).stat().st_size > 1000
                               for w in written)  # fmt: skip


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_run_with_every_cycle_refused_writes_valid_json(tmp_path: Path) -> None:
    """A hole out of reach: the cycle is refused before it runs, so there is no clearance;
    the JSON files say null, not NaN (which is not JSON)."""
    head, tail = _holes_block(SCREW.read_text())
    far = (
        '[[holes]]\nname = "far"\nposition = [3.0, 0.0, 0.08]\naxis = [0.0, 0.0, 1.0]\n'
        'screw = "M1.4"\n\n'
    )
    path = tmp_path / "far.toml"
    path.write_text(head + far + tail)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app,
        ["run", str(path), "--cycles", "2", "--db", str(tmp_path / "r.sqlite"),
         "--json", str(out), "--report", str(tmp_path / "rep")],
    )  # fmt: skip
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output  # the run stopped
    data = _strict_json(out.read_text())
    assert isinstance(data, dict)
    assert data["status"] == "stopped" and data["cycles"] == 1
    assert data["min_clearance_m"] is None
    assert [v["verdict"] for v in data["verdicts"]] == ["ABORTED"]
    assert "out of reach" in data["verdicts"][0]["reason"]
    rows = _strict_json((tmp_path / "rep" / "cycles.json").read_text())
    assert isinstance(rows, list) and rows[0]["min_clearance_m"] is None


def test_bad_injection_is_one_line(two_holes: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cells", "run", str(two_holes), "--inject", "gremlin@2",
         "--db", str(tmp_path / "r.sqlite")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "60"},
    )  # fmt: skip  # (narrow: the error must not wrap)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: --inject 'gremlin@2': unknown fault 'gremlin'")
    assert "cross_thread" in lines[0]  # the valid faults are listed
    assert not (tmp_path / "r.sqlite").exists()  # refused before anything ran


def test_another_arm_by_changing_the_cell_file_alone(two_holes: Path, tmp_path: Path) -> None:
    """The screw cell with a Panda instead of the UR5e: one line of the file changes."""
    path = tmp_path / "panda.toml"
    path.write_text(two_holes.read_text().replace('arm = "ur5e"', 'arm = "panda"', 1))
    cell = load_cell(path)
    assert cell.robots["screw_arm"].model == "panda"
    with CellController(cell, seed=0, physics=False) as c:
        r = c.run_cycle(0)
    assert r.verdict == "OK", r.reason
    assert [(o.kind, o.target) for o in r.operations] == [
        ("screw", "h1"), ("screw", "h8"), ("home", "home"),
    ]  # fmt: skip
