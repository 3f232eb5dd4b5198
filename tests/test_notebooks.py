"""The notebooks run headless (nbclient, the venv's python3 kernel) and show what they claim.

Each runs from the repository root with its inputs pointed at temporary paths through the
environment; the checks are on the figures it makes (``image/png`` outputs) and on the
``name=value`` lines it prints, compared with the same numbers computed here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from records_helpers import build_store

from cells.cell_file import load_cell
from planners import load_arm, time_parameterize
from planners.limit_check import peak_ratios

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_LINE = re.compile(r"^([a-z0-9_]+)=(\S+)$", re.MULTILINE)


def _run(name: str, cwd: Path = ROOT) -> tuple[dict[str, str], int]:
    """Execute a notebook; its printed ``name=value`` lines and its number of PNG outputs."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(cwd)}}
    ).execute()
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text.append(out["text"])
            images += "image/png" in out.get("data", {})
    values = dict(_LINE.findall("".join(text)))
    return values, images


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, name
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_trajectory_notebook_plans_and_plots_a_move(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROBOTCELL_TRAJECTORY", raising=False)
    monkeypatch.setenv("ROBOTCELL_SEED", "0")
    values, images = _run("01_trajectory.ipynb")
    assert images == 3  # joints, TCP path, clearance
    duration = float(values["duration_s"])
    assert 0.2 < duration < 10.0
    ratios = {k: float(values[f"peak_{k}_ratio"]) for k in ("velocity", "acceleration", "jerk")}
    assert all(r <= 1.0 + 1e-6 for r in ratios.values())
    assert max(ratios.values()) > 0.99  # time-optimal: some limit is used fully
    assert float(values["peak_position_ratio"]) == 0.0
    # Planned collision-free with 2 mm padding: the sphere model keeps it along the move.
    assert float(values["min_clearance_mm"]) >= 2.0 - 1e-3
    assert float(values["tcp_path_mm"]) > 10.0


def test_trajectory_notebook_inspects_a_saved_trajectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arm = load_arm("panda")
    q0 = arm.configuration("ready")
    result = time_parameterize(np.array([q0, q0 + 0.3, q0 - 0.2]), arm.limits)
    assert result.trajectory is not None
    traj = result.trajectory
    traj.save(tmp_path / "move.npz")
    monkeypatch.setenv("ROBOTCELL_TRAJECTORY", str(tmp_path / "move.npz"))
    values, images = _run("01_trajectory.ipynb")
    assert images == 2  # joints and TCP path; no obstacles, no clearance
    assert "min_clearance_mm" not in values
    assert float(values["duration_s"]) == pytest.approx(traj.duration, abs=1e-4)
    assert int(values["knots"]) == traj.t.size
    expected = peak_ratios(traj, arm.limits)
    for kind, ratio in expected.items():
        assert float(values[f"peak_{kind.value}_ratio"]) == pytest.approx(ratio, abs=1e-6)


def test_run_notebook_reads_cycles_and_tightenings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs" / "results.sqlite"
    stored = build_store(db)
    build_store(db, t0=1000.0)  # a later run: ROBOTCELL_RUN picks the first
    monkeypatch.setenv("ROBOTCELL_DB", str(db))
    monkeypatch.setenv("ROBOTCELL_RUN", str(stored.run_id))
    # Started in notebooks/ as Jupyter and VS Code do: the run's cell file
    # (cells/phone_screw.toml, relative) is found from the repository root, or no takt.
    values, images = _run("02_run.ipynb", cwd=NOTEBOOKS)
    assert images == 4  # cycle times, first and last timeline, torque-angle
    assert int(values["run_id"]) == stored.run_id
    assert values["status"] == "finished"
    assert int(values["cycles"]) == len(stored.cycle_times)
    assert int(values["nok_cycles"]) == stored.nok_cycles
    assert int(values["tightenings"]) == sum(stored.reasons.values())
    assert float(values["cycle_time_median_s"]) == pytest.approx(np.median(stored.cycle_times))
    assert float(values["cycle_time_max_s"]) == pytest.approx(max(stored.cycle_times))
    assert float(values["takt_s"]) == load_cell(ROOT / "cells" / "phone_screw.toml").takt
    for reason, n in stored.reasons.items():
        assert int(values[f"tightenings_{reason}"]) == n
    n = sum(stored.reasons.values())
    assert values["reclassified_agree"] == f"{n}/{n}"
    assert int(values["cycle_1_operations"]) == 4 and int(values["cycle_3_operations"]) == 4


def test_benchmarks_notebook_plots_every_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = ROOT / "bench" / "results"
    for path in src.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "other.json").write_text(json.dumps({"not": "a benchmark"}))
    monkeypatch.setenv("ROBOTCELL_BENCH_DIR", str(tmp_path))
    values, images = _run("03_benchmarks.ipynb")
    docs = {p.stem: json.loads(p.read_text()) for p in src.glob("*.json")}
    assert set(docs) == {"collision", "ik", "mbm", "stream", "timing", "validate"}
    assert int(values["files"]) == 6
    # ik: cold and near; timing, collision, mbm, validate, stream: one each.
    assert images == 7
    ik = docs["ik"]["arms"]
    for arm in ik:
        assert float(values[f"ik_{arm}_success_rate"]) == pytest.approx(ik[arm]["success_rate"])
    assert float(values["collision_batched_configs_per_s"]) == pytest.approx(
        docs["collision"]["batched_configs_per_s"], rel=1e-6
    )
    assert int(values["mbm_solved"]) == docs["mbm"]["total"]["solved"]
    assert float(values["validate_sweep_x_realtime"]) == pytest.approx(
        docs["validate"]["sweep_x_realtime"], abs=0.01
    )
    assert float(values["stream_latency_p99_us"]) == docs["stream"]["latency_us"]["p99"]
    for arm, doc in docs["timing"]["arms"].items():
        assert int(values[f"timing_{arm}_violations"]) == doc["violations"]
