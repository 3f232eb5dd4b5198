"""The results store: round trips, errors, and no loss or corruption under SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cells.cli import app
from cells.records import SCHEMA_VERSION, RecordsError, ResultsStore
from cells.tightening import TighteningSpec, classify
from planners.errors import InputError
from sim.spindle import Fault, ScrewJoint, TighteningTrace, tighten

SPEC = TighteningSpec()


def _trace(seed: int, fault: Fault = Fault.NONE) -> TighteningTrace:
    return tighten(ScrewJoint(), SPEC.program(), np.random.default_rng(seed), fault)


def test_round_trip_of_a_run(tmp_path: Path) -> None:
    path = tmp_path / "r" / "results.sqlite"
    with ResultsStore(path) as store:
        run = store.start_run("phone_screw", "cells/phone_screw.toml", note="test")
        cycle = store.start_cycle(run, "SN0001")
        op = store.record_operation(cycle, "screw", "h1", "NOK", "stripped", attempt=1)
        trace = _trace(1, Fault.STRIPPED)
        judgement = classify(trace, SPEC)
        tid = store.record_tightening(cycle, "h1", trace, judgement, spec=SPEC, operation_id=op)
        store.finish_cycle(cycle, "NOK", "stripped")
        store.finish_run(run, "finished")
    with ResultsStore(path, create=False) as store:
        assert store.integrity_check() == "ok"
        r = store.run(run)
        assert (r.cell, r.status, r.cycles, r.nok_cycles, r.tightenings) == (
            "phone_screw", "finished", 1, 1, 1,
        )  # fmt: skip
        assert r.finished is not None and r.finished >= r.started
        (c,) = store.cycles(run)
        assert (c.serial, c.verdict, c.reason) == ("SN0001", "NOK", "stripped")
        (o,) = store.operations(cycle)
        assert (o.kind, o.target, o.verdict, o.reason) == ("screw", "h1", "NOK", "stripped")
        (t,) = store.tightenings(run_id=run)
        assert t.id == tid and t.reason == "stripped" and t.verdict == "NOK"
        assert t.target_torque == pytest.approx(0.10)
        np.testing.assert_allclose(t.trace.torque, trace.torque, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(t.trace.angle, trace.angle, rtol=1e-6)
        assert store.tightenings(reason="ok") == []
        assert store.db_mode() == ("wal", 2)


def test_misuse_and_bad_files(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "a.sqlite") as store:
        run = store.start_run("c")
        with pytest.raises(RecordsError, match="no cycle with id 99"):
            store.finish_cycle(99, "OK")
        with pytest.raises(RecordsError, match="unknown run"):
            store.start_cycle(12345, "SN")
        with pytest.raises(InputError, match="verdict"):
            store.record_operation(store.start_cycle(run, "SN"), "pick", "battery", "maybe")
        with pytest.raises(InputError, match="serial"):
            store.start_cycle(run, "")
        with pytest.raises(RecordsError, match="no run with id 7"):
            store.run(7)
    with pytest.raises(RecordsError, match="no results store"):
        ResultsStore(tmp_path / "missing.sqlite", create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RecordsError, match="not a usable results store"):
        ResultsStore(junk)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.close()
    with pytest.raises(RecordsError, match="without a schema_version"):
        ResultsStore(other)
    newer = tmp_path / "newer.sqlite"
    ResultsStore(newer).close()
    db = sqlite3.connect(newer)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(RecordsError, match="schema version"):
        ResultsStore(newer)


def test_cli_runs_lists_runs_and_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        store.finish_run(store.start_run("phone_pick_place"), "stopped")
    out = CliRunner().invoke(app, ["runs", "--db", str(path), "--limit", "5"])
    assert out.exit_code == 0, out.output
    assert "phone_pick_place" in out.output and "stopped" in out.output
    proc = subprocess.run(
        [sys.executable, "-m", "cells", "runs", "--db", str(tmp_path / "nope.sqlite")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "500"},
    )  # fmt: skip  # (rich wraps the error line at 80 columns otherwise)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("pybullet build")]
    assert len(lines) == 1 and "no results store" in lines[0], proc.stderr


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from cells.records import ResultsStore
    from cells.tightening import TighteningSpec, classify
    from sim.spindle import ScrewJoint, tighten

    spec = TighteningSpec()
    rng = np.random.default_rng(0)
    traces = [tighten(ScrewJoint(), spec.program(), rng) for _ in range(4)]
    judgements = [classify(t, spec) for t in traces]
    with ResultsStore(sys.argv[1]) as store:
        run = store.start_run("phone_screw")
        i = 0
        while True:
            cycle = store.start_cycle(run, f"SN{i:06d}")
            print("cycle", cycle, flush=True)
            t = store.record_tightening(cycle, "h1", traces[i % 4], judgements[i % 4])
            print("tightening", t, flush=True)
            store.finish_cycle(cycle, "OK")
            print("finished", cycle, flush=True)
            i += 1
    """
)


def test_sigkill_mid_run_loses_no_committed_record(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    reported: list[tuple[str, int]] = []
    try:
        for line in child.stdout:
            word, number = line.split()
            reported.append((word, int(number)))
            if len(reported) >= 60:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    # Commits reported between our last read and the kill count too.
    for line in child.stdout:
        if line.endswith("\n"):
            word, number = line.split()
            reported.append((word, int(number)))
    assert child.returncode == -signal.SIGKILL
    assert len(reported) >= 60
    with ResultsStore(path, create=False) as store:
        assert store.integrity_check() == "ok"
        (run,) = store.runs()
        cycles = {c.id: c for c in store.cycles(run.id)}
        tightenings = {t.id for t in store.tightenings(run_id=run.id)}
    for kind, key in reported:
        if kind == "cycle":
            assert key in cycles
        elif kind == "tightening":
            assert key in tightenings
        else:
            assert cycles[key].verdict == "OK"
    # Every stored trace reads back whole (no torn blob).
    with ResultsStore(path, create=False) as store:
        assert all(t.angle.size == t.torque.size > 0 for t in store.tightenings(run_id=run.id))


def _committed(path: Path) -> tuple[list[tuple], list[tuple], list[tuple]] | None:
    """Runs, cycles and operations another process has committed, read-only (WAL)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None  # not created yet
    try:
        runs = db.execute("SELECT id, cell, status, finished FROM runs ORDER BY id").fetchall()
        cycles = db.execute("SELECT id, run_id, serial, verdict FROM cycles ORDER BY id").fetchall()
        ops = db.execute(
            "SELECT id, cycle_id, kind, target, verdict FROM operations ORDER BY id"
        ).fetchall()
    except sqlite3.Error:
        return None  # the schema is not there yet
    finally:
        db.close()
    return runs, cycles, ops


def test_sigkill_of_a_real_run_loses_no_committed_record(tmp_path: Path) -> None:
    """`cellctl run` of the pick-and-place cell, SIGKILLed once a cycle is committed."""
    path = tmp_path / "r.sqlite"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    with (tmp_path / "stderr.txt").open("w") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "cells", "run", "cells/phone_pick_place.toml",
             "--cycles", "5", "--db", str(path)],
            stdout=subprocess.DEVNULL, stderr=err, cwd=root, env=env,
        )  # fmt: skip
        seen = None
        deadline = time.monotonic() + 60.0  # a cycle takes a few seconds; never hang
        try:
            while time.monotonic() < deadline and child.poll() is None:
                seen = _committed(path)
                # a finished cycle: its operations are all committed before its verdict
                if seen is not None and any(c[3] is not None for c in seen[1]):
                    break
                time.sleep(0.1)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
    assert seen is not None and any(c[3] is not None for c in seen[1]), (
        f"no cycle committed within the deadline: {seen}"
    )
    runs, cycles, ops = seen
    with ResultsStore(path, create=False) as store:
        assert store.integrity_check() == "ok"
        (run,) = store.runs()
        assert (run.id, run.cell) == (runs[0][0], "phone_pick_place")
        assert run.status == "running" and run.finished is None  # never finished
        stored = {(c.id, c.run_id, c.serial): c for c in store.cycles(run.id)}
        for cycle_id, run_id, serial, verdict in cycles:
            assert (cycle_id, run_id, serial) in stored
            if verdict is not None:
                assert stored[(cycle_id, run_id, serial)].verdict == verdict
        stored_ops = {
            (o.id, o.cycle_id, o.kind, o.target, o.verdict)
            for c in store.cycles(run.id)
            for o in store.operations(c.id)
        }
        assert set(ops) <= stored_ops
        done = next(c for c in cycles if c[3] is not None)
        kinds = [o.kind for o in store.operations(done[0])]
        assert kinds.count("pick_place") == 3 and kinds[-1] == "home", kinds
        # the store takes a new run after the crash
        new = store.start_run("phone_pick_place", "cells/phone_pick_place.toml")
        assert new > run.id
        store.finish_run(new, "finished")
    with ResultsStore(path, create=False) as store:
        assert store.integrity_check() == "ok"
        newest, crashed = store.runs()
        assert (newest.status, newest.cycles) == ("finished", 0)
        assert crashed.status == "running" and crashed.cycles >= 1
