"""``cellctl``: the command line. The only place that prints.

Bad input (an unknown name, a malformed file) ends with one line on stderr and exit
code 2, never a stack trace.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from planners.errors import RobotCellError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Robot-cell planning, validation and control."
)
bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks: print a table, optionally write JSON."
)
app.add_typer(bench_app, name="bench")

# Tables are wider than 80 columns: when output goes to a file or CI log, use 120.
console = Console(width=None if sys.stdout.isatty() else 120)
JsonOut = Annotated[
    Path | None, typer.Option("--json", help="Also write the results as JSON to this file.")
]


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the planners and the spindle.")] = 0,
    cycles: Annotated[int, typer.Option(min=1, help="Cycles per reference cell.")] = 2,
    db: Annotated[
        Path | None, typer.Option(help="Results store (default ./runs/results.sqlite).")
    ] = None,
) -> None:
    """Both reference cells end to end: plan, validate, run, judge, record."""
    from cells.demo import run_demo

    run_demo(console, seed, cycles, db)


@app.command("run")
def run_cmd(
    cell: Annotated[Path, typer.Argument(help="The cell file (TOML).")],
    cycles: Annotated[int, typer.Option(min=1, help="Product cycles to run.")] = 1,
    inject: Annotated[
        list[str] | None,
        typer.Option(
            help="Plant a fault: FAULT@INDEX (at the INDEX-th screw attempt, from 0), e.g. "
            "cross_thread@3 or empty_pick@0."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the planners and the spindle.")] = 0,
    db: Annotated[
        Path | None, typer.Option(help="Results store (default ./runs/results.sqlite).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write cycles.json and trajectories here.")
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Plan, validate in PyBullet, run on the simulated arm and spindle, judge and record."""
    from cells.cycle_results import parse_injection
    from cells.run_job import json_document, run_cell

    injections = [parse_injection(text) for text in inject or []]
    result = run_cell(cell, cycles=cycles, injections=injections, seed=seed, db=db,
                      report=report, console=console)  # fmt: skip
    _write_json(json_out, json_document(result))  # NaN (no clearance) is null in JSON
    if result["status"] != "finished":
        raise typer.Exit(1)


@app.command("inspect")
def inspect_cmd(
    target: Annotated[str, typer.Argument(help="A saved trajectory (.npz/.json) or a run id.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files.")] = Path("inspect"),
    db: Annotated[
        Path | None, typer.Option(help="Results store (default ./runs/results.sqlite).")
    ] = None,
    cell: Annotated[
        Path | None,
        typer.Option(
            "--cell",
            help="Cell file (TOML): inspect the trajectory in that cell (its robot and tool, "
            "TCP path among its obstacles, clearance over time).",
        ),
    ] = None,
) -> None:
    """Write the inspection plots of a trajectory or a run as PNG files."""
    from cells.inspection import inspect_plots

    done = inspect_plots(target, out, db, cell)
    for path in done.written:
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    if not done.written:
        console.print(f"nothing to plot for {target}", markup=False, highlight=False)
    for plot, why in done.skipped:
        console.print(f"not made: {plot}: {why}", markup=False, highlight=False, soft_wrap=True)


@bench_app.command("ik")
def bench_ik(
    n: Annotated[int, typer.Option("--n", min=1, help="Random reachable poses per arm.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the pose sampler.")] = 0,
    json_out: JsonOut = None,
) -> None:
    """IK success rate and time per solve, ours against PyBullet's calculateInverseKinematics."""
    from bench.ik import print_table, run

    result = run(n=n, seed=seed, progress=console)
    print_table(console, result)
    _write_json(json_out, result)


@bench_app.command("timing")
def bench_timing(
    n: Annotated[
        int, typer.Option("--n", min=1, help="Random multi-waypoint paths per arm.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the path sampler.")] = 0,
    json_out: JsonOut = None,
) -> None:
    """Time parameterization: duration against toppra's bound, compute time, violations."""
    from bench.timing import print_table, run

    result = run(n=n, seed=seed, progress=console)
    print_table(console, result)
    _write_json(json_out, result)


@bench_app.command("mbm")
def bench_mbm(
    problems: Annotated[
        Path, typer.Option("--problems", help="MotionBenchMaker problems as JSON.")
    ],
    sets: Annotated[
        str | None, typer.Option("--sets", help="Comma-separated sets (default: all).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Time limit per problem [s].")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Planner seed.")] = 0,
    json_out: JsonOut = None,
) -> None:
    """Plan every MotionBenchMaker problem; ours against OMPL's RRTConnect."""
    from bench.mbm import print_table, run

    chosen = [s for s in sets.split(",") if s] if sets else None
    result = run(problems, sets=chosen, timeout=timeout, seed=seed, progress=console)
    print_table(console, result)
    _write_json(json_out, result)


@bench_app.command("collision")
def bench_collision(json_out: JsonOut = None) -> None:
    """Configurations per second of the batched checker against PyBullet's exact check."""
    from bench.collision import print_table, run

    result = run(progress=console)
    print_table(console, result)
    _write_json(json_out, result)


@bench_app.command("cell")
def bench_cell(
    repeats: Annotated[int, typer.Option(min=1, help="Cycles planned and validated.")] = 5,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Replay worker processes (default: each cell file's)."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Both reference cells: plan + validate wall time per cycle, cycle time per screw/part."""
    from bench.cell import print_table, run

    result = run(repeats=repeats, progress=console, workers=workers)
    print_table(console, result)
    _write_json(json_out, result)


@bench_app.command("cell-limits")
def bench_cell_limits(json_out: JsonOut = None) -> None:
    """What-if: screw cycle per screw with the arm's jerk and acceleration scaled (plan only)."""
    from bench.cell_limits import print_table, run

    result = run()
    print_table(console, result)
    _write_json(json_out, result)


@bench_app.command("validate")
def bench_validate(
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each; the median is reported.")] = 5,
    json_out: JsonOut = None,
) -> None:
    """Sweep and physics replay of a pick-and-place: how many times faster than real time."""
    from bench.validate import print_table, run

    result = run(repeats=repeats, progress=console)
    print_table(console, result)
    _write_json(json_out, result)


def _write_json(path: Path | None, result: dict) -> None:
    if path is None:
        return
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {path}")


def main() -> None:
    """Entry point of ``cellctl`` and ``python -m cells``."""
    from cells.quiet import import_pybullet_quietly

    import_pybullet_quietly()
    try:
        app()
    except RobotCellError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)


# ---------------------------------------------------------------------- streaming (issue 7)
KeysDir = Annotated[
    Path | None,
    typer.Option(
        "--keys", help="CURVE key directory (see `cellctl keys`). CURVE is on by default."
    ),
]
InsecurePlaintext = Annotated[
    bool,
    typer.Option(
        "--insecure-plaintext", help="No encryption or authentication; loopback endpoints only."
    ),
]


@app.command("keys")
def keys_cmd(
    directory: Annotated[Path, typer.Argument(help="Where to write the key directory.")],
) -> None:
    """Write CURVE server and client certificates and allow the client key."""
    from cells.security import create_keys

    paths = create_keys(directory)
    console.print(f"server public key: {paths.server_public}")
    console.print(f"client secret key: {paths.client_secret} (mode 0600)")
    console.print(f"allowlist: {paths.allowed}/ (one public key file per allowed client)")


@app.command("serve-arm")
def serve_arm_cmd(
    robot: Annotated[str, typer.Option("--robot", help="Arm model, e.g. ur5e or panda.")],
    bind: Annotated[
        str, typer.Option("--bind", help="Stream endpoint, e.g. tcp://127.0.0.1:5555.")
    ],
    tool: Annotated[
        str | None,
        typer.Option("--tool", help="Tool on the flange (default: the arm.toml's default_tool)."),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=1, max=10_000, help="Stream rate [Hz].")
    ] = 1000.0,
    keys: KeysDir = None,
    insecure_plaintext: InsecurePlaintext = False,
    watchdog_ms: Annotated[
        float, typer.Option("--watchdog-ms", min=0.1, help="Stop when no valid setpoint [ms].")
    ] = 20.0,
    command_bind: Annotated[
        str | None,
        typer.Option("--command-bind", help="Command endpoint (default: stream port + 1)."),
    ] = None,
    rt_priority: Annotated[
        int, typer.Option("--rt-priority", min=0, max=99, help="SCHED_FIFO priority, 0: none.")
    ] = 0,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Named configuration of the arm to start at, e.g. ready (where the cells' "
            "cycles start); default: home.",
        ),
    ] = None,
) -> None:
    """Serve a simulated arm (PyBullet): setpoint stream and arm commands."""
    from cells.arm_endpoint import ArmEndpoint, command_endpoint_for, serve_arm

    def ready(endpoint: ArmEndpoint) -> None:
        console.print(
            f"arm {robot} at {rate:g} Hz, at {start or 'home'}: stream {bind}, commands "
            f"{command_bind or command_endpoint_for(bind)}"
            f"{' (PLAIN TEXT)' if insecure_plaintext else ' (CURVE)'}"
        )

    serve_arm(
        robot, bind, rate, str(keys) if keys else None, insecure_plaintext, watchdog_ms / 1e3,
        command_bind, ready, rt_priority, tool=tool, start=start,
    )  # fmt: skip


@app.command("serve")
def serve_cmd(
    bind: Annotated[
        str, typer.Option("--bind", help="Control endpoint, e.g. tcp://127.0.0.1:5560.")
    ],
    keys: KeysDir = None,
    insecure_plaintext: InsecurePlaintext = False,
) -> None:
    """Serve the control endpoint (status, run, pause, resume, abort, stop, reset ...)."""
    from cells.control_endpoint import ControlEndpoint

    with ControlEndpoint(bind, str(keys) if keys else None, insecure_plaintext) as endpoint:
        console.print(
            f"control endpoint {bind}{' (PLAIN TEXT)' if insecure_plaintext else ' (CURVE)'}"
        )
        endpoint.serve()


@bench_app.command("stream")
def bench_stream(
    rate: Annotated[float, typer.Option("--rate", min=1, max=10_000, help="Rate [Hz].")] = 1000.0,
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.5, help="Streaming time [s].")
    ] = 20.0,
    rt_priority: Annotated[
        int,
        typer.Option(
            "--rt-priority", min=0, max=99, help="SCHED_FIFO priority of both processes, 0: none."
        ),
    ] = 20,
    watchdog_ms: Annotated[
        float, typer.Option("--watchdog-ms", min=0.1, help="The arm's watchdog [ms].")
    ] = 20.0,
    json_out: JsonOut = None,
) -> None:
    """Setpoint streaming over TCP loopback with CURVE: loss, lateness, latency, jitter."""
    from bench.stream import print_table, run

    result = run(
        rate_hz=rate,
        seconds=seconds,
        progress=console,
        realtime_priority=rt_priority,
        watchdog_s=watchdog_ms / 1e3,
    )
    print_table(console, result)
    _write_json(json_out, result)


# ---------------------------------------------------------------------- cells and records (issue 6)
@app.command("runs")
def runs_cmd(
    db: Annotated[Path, typer.Option("--db", help="Results store (SQLite).")] = Path(
        "runs/results.sqlite"
    ),
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest runs to list.")] = 20,
) -> None:
    """List the runs in a results store, newest first."""
    from rich.table import Table

    from cells.records import ResultsStore, format_time

    with ResultsStore(db, create=False) as store:
        runs = store.runs(limit)
    table = Table(title=f"runs in {db}")
    for col in ("run", "cell", "started", "finished", "status", "cycles", "NOK", "tightenings"):
        table.add_column(col, no_wrap=True)
    for r in runs:
        table.add_row(
            str(r.id), r.cell, format_time(r.started), format_time(r.finished), r.status,
            str(r.cycles), str(r.nok_cycles), str(r.tightenings),
        )  # fmt: skip
    console.print(table)


@app.command("check-cell")
def check_cell_cmd(
    path: Annotated[Path, typer.Argument(help="Cell file (TOML).")],
) -> None:
    """Load and validate a cell file; print what it holds."""
    from cells.cell_file import load_cell

    cell = load_cell(path)
    console.print(
        f"{path}: cell {cell.name!r}, takt {cell.takt:g} s; robots "
        f"{', '.join(f'{r.name} ({r.model} + {r.tool})' for r in cell.robots.values())}; "
        f"fixtures {', '.join(cell.fixtures) or '-'}; parts {', '.join(cell.parts) or '-'}; "
        f"holes {', '.join(cell.holes) or '-'}"
    )
