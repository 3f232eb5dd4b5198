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
def demo(seed: Annotated[int, typer.Option(help="Seed for IK restarts.")] = 0) -> None:
    """The best end-to-end job that exists: load both arms, solve IK for phone-cell poses."""
    from cells.demo import run_demo

    run_demo(console, seed)


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


def _write_json(path: Path | None, result: dict) -> None:
    if path is None:
        return
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {path}")


def main() -> None:
    """Entry point of ``cellctl`` and ``python -m cells``."""
    try:
        app()
    except RobotCellError as exc:
        Console(stderr=True).print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)
