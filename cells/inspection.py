"""``cellctl inspect``: the inspection plots of a saved trajectory or of a run, as PNG files.

A target is either a trajectory file written by :meth:`planners.Trajectory.save`
(``.npz`` or ``.json``) or the id of a run in the results store
(:class:`cells.records.ResultsStore`).

* **trajectory**: joint position, velocity, acceleration and jerk (``<stem>_joints.png``).
  With a cell file (``cell``, ``--cell``) the trajectory is inspected in that cell's
  world: the robot whose joints it names (its arm and tool) gives the limits, the TCP
  path in 3D among the cell's fixtures and parts (``<stem>_tcp.png``) and the clearance
  over time (``<stem>_clearance.png``: the sphere model of the robot with its tool
  against the cell's bodies at their start poses, and its self distances). Without a
  cell the file does not say which tool or world it was planned for: the limits are
  those of the arm model whose joint names it carries (none drawn when no model has
  those joints), ``<stem>_tcp.png`` is that arm's flange path with no obstacles, and
  there is no clearance plot; :attr:`Inspection.skipped` says so.
* **run**: the stage timeline of the first and the last cycle
  (``run<id>_cycle<cycle>_timeline.png``, operations relative to the cycle's start),
  cycle times against the takt of the run's cell file when that file loads
  (``run<id>_cycle_times.png``) and the torque-angle traces of the run's tightenings, one
  of each NOK reason over the first OK one (``run<id>_torque_angle.png``).

The run's store keeps no trajectories, so a run has no joint, TCP-path or clearance
plot: ``cellctl run --report DIR`` saves the first cycle's trajectories, which
``cellctl inspect DIR/<file>.npz --cell CELL.toml`` plots (:attr:`Inspection.skipped`
says so).

Plots come from :mod:`cells.plots` (matplotlib, the ``notebooks`` extra).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cells.records import (
    DEFAULT_STORE,
    CycleRecord,
    RecordsError,
    ResultsStore,
    TighteningRecord,
)
from cells.tightening import Reason, TighteningSpec
from planners.errors import InputError, RobotCellError
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cells.cell_model import Cell, Robot
    from planners.arm import Arm
    from sim.spindle import TighteningTrace

__all__ = ["TRAJECTORY_SUFFIXES", "Inspection", "arm_for_joints", "inspect_plots", "inspect_target"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: File suffixes read as trajectories.
TRAJECTORY_SUFFIXES = (".npz", ".json")
_DPI = 110


@dataclass
class Inspection:
    """What :func:`inspect_plots` made.

    Attributes:
        written: The PNG files written, in order.
        skipped: ``(plot, why)`` for each plot of the target's kind that was not made.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def inspect_target(
    target: str, out_dir: Path, db: Path | None = None, cell: Path | None = None
) -> list[Path]:
    """Write the inspection plots of ``target`` as PNG files; the files written.

    :func:`inspect_plots` with the same arguments, returning only ``written``.
    """
    return inspect_plots(target, out_dir, db, cell).written


def inspect_plots(
    target: str, out_dir: Path, db: Path | None = None, cell: Path | None = None
) -> Inspection:
    """Write the inspection plots of ``target`` as PNG files into ``out_dir``.

    Args:
        target: A trajectory file (``.npz`` or ``.json``, see
            :meth:`planners.Trajectory.save`) or a run id (an integer) in the store.
        out_dir: Folder for the PNG files (created if needed; files are overwritten).
        db: The results store for a run id (``runs/results.sqlite`` by default).
        cell: A cell file: a trajectory is inspected in that cell's world (its robot
            and tool, its obstacles, the clearance). Not for a run (the run names its
            own cell file).

    Returns:
        The files written and the plots not made, with why.

    Raises:
        InputError: ``target`` is neither an existing trajectory file nor a run id, the
            file is not a valid trajectory, the store has no such run, ``cell`` is given
            with a run id, or no robot of the cell has the trajectory's joints; the
            message says what was given and what is expected.
        CellFileError: the cell file does not load.
        RecordsError: the store cannot be opened.
    """
    text = str(target).strip()
    if text.isdigit():
        if cell is not None:
            raise InputError(
                f"--cell {str(cell)!r}: only for a trajectory file; run {text} is plotted "
                "with the cell file it ran"
            )
        return _inspect_run(int(text), Path(out_dir), Path(db) if db is not None else DEFAULT_STORE)
    path = Path(text)
    if path.suffix.lower() in TRAJECTORY_SUFFIXES:
        if not path.is_file():
            raise InputError(f"target {text!r}: no such trajectory file")
        return _inspect_trajectory(path, Path(out_dir), Path(cell) if cell is not None else None)
    raise InputError(
        f"target {text!r}: expected a trajectory file (.npz or .json) or a run id (an integer)"
    )


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    logger.info("wrote %s", path)
    return path


# ------------------------------------------------------------------------------ trajectory
def _load_trajectory(path: Path) -> Trajectory:
    try:
        return Trajectory.load(path)
    except InputError as exc:
        detail = str(exc).removeprefix(str(path)).lstrip(": ")  # the file is named once
        raise InputError(f"target {str(path)!r}: not a valid trajectory ({detail})") from None
    except (OSError, ValueError, KeyError) as exc:  # a damaged .npz (zip) file
        raise InputError(
            f"target {str(path)!r}: not a valid trajectory file ({type(exc).__name__}: {exc})"
        ) from None


def arm_for_joints(joint_names: tuple[str, ...]) -> Arm | None:
    """The arm model (without tool) whose actuated joints are ``joint_names``, or ``None``."""
    from planners.arm import arm_names, load_arm

    for name in arm_names():
        try:
            arm = load_arm(name)
        except RobotCellError as exc:  # a broken model folder must not hide the others
            logger.warning("arm %s does not load: %s", name, exc)
            continue
        if tuple(arm.joint_names) == tuple(joint_names):
            return arm
    return None


_NO_CELL = "no cell given (--cell CELL.toml)"


def _cell_robot(cell_path: Path, traj: Trajectory, path: Path) -> tuple[Cell, Robot]:
    """The cell and its robot whose joints the trajectory names."""
    from cells.cell_file import load_cell

    cell = load_cell(cell_path)
    for robot in cell.robots.values():
        if tuple(robot.arm.joint_names) == tuple(traj.joint_names):
            return cell, robot
    arms = "; ".join(
        f"{r.name} ({r.model}): {list(r.arm.joint_names)}" for r in cell.robots.values()
    )
    raise InputError(
        f"target {str(path)!r}: joints {list(traj.joint_names)} are not those of a robot of "
        f"cell {cell.name!r} ({cell_path}), expected those of {arms}"
    )


def _inspect_trajectory(path: Path, out_dir: Path, cell_path: Path | None) -> Inspection:
    from cells.plots import clearance_over_time, plot_clearance, plot_joints, plot_tcp_path

    traj = _load_trajectory(path)
    done = Inspection()
    if cell_path is None:
        arm = arm_for_joints(traj.joint_names)
        if arm is None:
            logger.info("%s: no arm model has joints %s; no limits drawn", path, traj.joint_names)
        done.written.append(
            _save(
                plot_joints(traj, arm.limits if arm is not None else None),
                out_dir / f"{path.stem}_joints.png",
            )
        )
        if arm is not None:
            fig = plot_tcp_path(arm, traj)
            done.written.append(_save(fig, out_dir / f"{path.stem}_tcp.png"))
            done.skipped.append(("TCP path with the tool among the cell's obstacles", _NO_CELL))
        else:
            why = f"no arm model has joints {list(traj.joint_names)}"
            done.skipped.append(("TCP path", why))
        done.skipped.append(("clearance over time", _NO_CELL))
        return done

    from cells.tasks import world_spec_of
    from sim.world_scene import WorldScene

    cell, robot = _cell_robot(cell_path, traj, path)
    arm = robot.arm
    model = WorldScene(world_spec_of(cell, driven=False), arm).model()
    fig = plot_joints(traj, arm.limits)
    fig.suptitle(f"{path.name}: {robot.name} ({robot.model}) of cell {cell.name}")
    done.written.append(_save(fig, out_dir / f"{path.stem}_joints.png"))
    fig = plot_tcp_path(arm, traj, model.scene.obstacles)
    ax = fig.axes[0]
    ax.set_title(f"{cell.name}, {robot.name}: {ax.get_title()}")
    done.written.append(_save(fig, out_dir / f"{path.stem}_tcp.png"))
    t, clearance = clearance_over_time(model, traj)
    fig = plot_clearance(t, clearance)
    ax = fig.axes[0]
    ax.set_title(f"cell {cell.name}, sphere model of {robot.name}: {ax.get_title()}")
    done.written.append(_save(fig, out_dir / f"{path.stem}_clearance.png"))
    return done


# ------------------------------------------------------------------------------ run
def _load_run_cell(cell_file: str) -> Cell | None:
    """The run's cell, or ``None`` when its file is gone or no longer loads."""
    if not cell_file or not Path(cell_file).is_file():
        return None
    from cells.cell_file import load_cell

    try:
        return load_cell(Path(cell_file))
    except RobotCellError as exc:
        logger.warning("cell file %s of the run does not load: %s", cell_file, exc)
        return None


def _record_spec(record: TighteningRecord, cell: Cell | None) -> TighteningSpec | None:
    """The hole's spec from the cell, else the default spec with the stored target and window."""
    if cell is not None and record.hole in cell.holes:
        return cell.holes[record.hole].tightening
    if record.target_torque is None or record.angle_min is None or record.angle_max is None:
        return None
    try:
        return replace(
            TighteningSpec(), target_torque=record.target_torque,
            angle_min=record.angle_min, angle_max=record.angle_max,
        )  # fmt: skip
    except InputError:  # stored values the default thresholds do not fit
        return None


def _timeline_rows(store: ResultsStore, cycle: CycleRecord) -> list[tuple[str, str, float, float]]:
    """Operations of a cycle as timeline rows, times relative to the cycle's start.

    The origin is the earlier of the cycle's start and its first operation's, so that a
    store whose operations run on another clock than its cycles still plots from zero.
    """
    ops = store.operations(cycle.id)
    origin = min([cycle.started, *(op.started for op in ops)])
    return [
        (f"{op.kind} {op.target}", op.kind, op.started - origin, op.finished - origin) for op in ops
    ]


def _inspect_run(run_id: int, out_dir: Path, db: Path) -> Inspection:
    from cells.plots import plot_cycle_times, plot_timeline, plot_torque_angle

    with ResultsStore(db, create=False) as store:
        try:
            run = store.run(run_id)
        except RecordsError:
            known = ", ".join(str(r.id) for r in reversed(store.runs(limit=10))) or "none"
            raise InputError(
                f"target {run_id}: no run with that id in {db} (latest runs: {known})"
            ) from None
        cell = _load_run_cell(run.cell_file)
        cycles = store.cycles(run_id)
        written: list[Path] = []

        with_ops = [c for c in cycles if store.operations(c.id)]
        for cycle in dict.fromkeys(with_ops[:1] + with_ops[-1:]):
            rows = _timeline_rows(store, cycle)
            verdict = cycle.verdict or "unfinished"
            fig = plot_timeline(
                rows, title=f"run {run_id}, cycle {cycle.id} ({cycle.serial}, {verdict})"
            )
            written.append(_save(fig, out_dir / f"run{run_id}_cycle{cycle.id}_timeline.png"))

        finished = [c for c in cycles if c.finished is not None]
        if finished:
            fig = plot_cycle_times(
                [c.finished - c.started for c in finished if c.finished is not None],
                cell.takt if cell is not None else None,
                labels=[c.serial for c in finished],
            )
            fig.axes[0].set_title(f"run {run_id} ({run.cell}): " + fig.axes[0].get_title())
            written.append(_save(fig, out_dir / f"run{run_id}_cycle_times.png"))

        tightenings = store.tightenings(run_id=run_id)
        if tightenings:
            reference = next((t for t in tightenings if t.verdict == "OK"), None)
            order = {r.value: i for i, r in enumerate(Reason)}
            firsts: dict[str, TighteningRecord] = {}
            for t in sorted(tightenings, key=lambda t: order.get(t.reason, len(order))):
                if t.verdict != "OK":
                    firsts.setdefault(t.reason, t)
            traces: dict[str, TighteningTrace] = {
                f"{reason} ({t.hole})": t.trace for reason, t in firsts.items()
            }
            shown = reference if reference is not None else next(iter(firsts.values()))
            fig = plot_torque_angle(
                traces,
                _record_spec(shown, cell),
                reference=reference.trace if reference is not None else None,
                reference_label=f"OK ({reference.hole})" if reference is not None else "OK",
            )
            written.append(_save(fig, out_dir / f"run{run_id}_torque_angle.png"))
    if not written:
        logger.info("run %d has no cycles or tightenings: nothing to plot", run_id)
    done = Inspection(written)
    for plot, why in (
        ("stage timeline", "no cycle with operations" if not with_ops else ""),
        ("cycle times against takt", "no finished cycle" if not finished else ""),
        ("torque-angle traces", "no tightening" if not tightenings else ""),
    ):
        if why:
            done.skipped.append((plot, why))
    if finished and cell is None:
        done.skipped.append(("takt line", f"the run's cell file {run.cell_file!r} does not load"))
    why = (
        "the store keeps no trajectories (cellctl run --report DIR saves the first cycle's; "
        "inspect DIR/<file>.npz --cell CELL.toml)"
    )
    done.skipped.append(("joints, TCP path, clearance over time", why))
    return done
