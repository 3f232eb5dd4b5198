"""Time-parameterization benchmark: ours against toppra's bound and ruckig.

Two sets of joint paths per arm (seeded):

* **random** (the issue's set, under ``arms``): ``n`` paths of 3 to 8 waypoints drawn
  uniformly within the joint limits (huge moves: the UR5e's joints span +-2 pi);
* **cell** (under ``cell``): ``n`` short cell-like moves, 3 to 6 waypoints each within
  +-0.5 rad of the arm's ``ready`` configuration (clipped to the limits), like a
  pick-and-place transfer.

Each path is blended once (``BlendedPath``, tolerance 0.05 rad) and three things are
timed on it:

* **ours**: :func:`planners.timing.time_parameterize` (velocity, acceleration and jerk
  limits; the shorter of the blended and the stop-and-go candidate), checked afterwards
  by :func:`planners.limit_check.check_limits` at 1 kHz;
* **toppra** (the bound): toppra's TOPP-RA with joint velocity and acceleration
  constraints on the *same* blended path (through toppra's public
  ``AbstractGeometricPath`` interface) on the same grid, constant-acceleration
  parametrizer. Without a jerk limit this is a lower bound of any jerk-limited duration
  on the path (up to toppra's collocation, which checks constraints at grid points only
  and so is, if anything, optimistic);
* **ruckig** (the jerk-limited peer): the community version has no intermediate
  waypoints, so it moves waypoint to waypoint under the same velocity, acceleration and
  jerk limits, stopping at every waypoint, all joints together (``Synchronization.Phase``).
  Where phase synchronisation is impossible under the limits ruckig falls back to time
  synchronisation, and the joints then leave the straight segment: the largest distance
  from the polyline (Euclidean, joint space, 64 samples per segment) is reported as
  ``deviation_rad_median`` / ``deviation_rad_max``. Ours never leaves the path.
  **ruckig on line** is the same stop-and-go held on each segment: one DoF (the arc
  length) under the tightest joint limits along the segment.

A third set, **line** (under ``line``), is what every pick, place and screw approach
times: ``n // 4`` (at least 10) random straight Cartesian lines of 3 to 15 cm with the
tool pointing down, half vertical descents and half horizontal moves, in the cell
workspace in front of the arm (``LINE_BOX``), turned into joint waypoints by
:func:`planners.cartesian.cartesian_line` (1 mm samples; lines whose IK fails are
redrawn). Ours is timed with the arm (so the curve candidate's TCP checks run); the
bound is toppra on the *same* path ours follows (the fitted curve,
:func:`planners.timing_spline.fit_curve`, else the blended path); the peers are ruckig
on line (a stop at every 1 mm sample) and ours with ``method=BLENDED`` (the behaviour
before the curve candidate). ``tcp_deviation_mm_max`` is the largest distance of our
TCP from the straight line, sampled at 1 kHz.

Ratios are durations divided by toppra's bound for the same path. Compute times are
wall-clock per path on this machine (single process); for ours the thread's CPU time is
reported too (``compute_cpu_ms_median`` / ``_p95``), which other load on a shared
machine disturbs far less.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from planners import Arm, load_arm, solve_ik
from planners.cartesian import cartesian_line
from planners.errors import InputError
from planners.limit_check import check_limits
from planners.limits import JointLimits
from planners.timing import TimingMethod, time_parameterize
from planners.timing_check import CandidateError
from planners.timing_path import BlendedPath, TimingPath
from planners.timing_spline import fit_curve

__all__ = ["ARMS", "BLEND_TOLERANCE", "CELL_SPREAD", "LINE_BOX", "print_table", "run"]

ARMS: tuple[tuple[str, str], ...] = (("ur5e", "screwdriver"), ("panda", "franka_hand"))
BLEND_TOLERANCE = 0.05  # rad
CELL_SPREAD = 0.5  # rad, cell-like waypoints within ready +- this
LINE_BOX = ((0.25, 0.55), (-0.3, 0.3), (0.05, 0.4))  # line start/end box (x, y, z) [m]
LINE_LENGTH = (0.03, 0.15)  # m


def _toppra_path(bp: TimingPath) -> Any:
    import toppra

    class _Path(toppra.interpolator.AbstractGeometricPath):
        def __call__(self, path_positions: Any, order: int = 0) -> np.ndarray:
            s = np.asarray(path_positions, dtype=float)
            out = bp(s.reshape(-1), order)
            return out[0] if s.ndim == 0 else out

        @property
        def dof(self) -> int:
            return bp.dof

        @property
        def path_interval(self) -> np.ndarray:
            return np.array([0.0, bp.length])

    return _Path()


def _toppra(bp: TimingPath, limits: JointLimits, grid: np.ndarray) -> tuple[float, float]:
    """toppra's velocity + acceleration optimum on the path: (duration [s], compute [s])."""
    import toppra
    import toppra.algorithm as algo
    import toppra.constraint as constraint

    t0 = time.perf_counter()
    path = _toppra_path(bp)
    vlim = np.stack((-limits.velocity, limits.velocity), axis=1)
    alim = np.stack((-limits.acceleration, limits.acceleration), axis=1)
    cons = [constraint.JointVelocityConstraint(vlim), constraint.JointAccelerationConstraint(alim)]
    inst = algo.TOPPRA(cons, path, gridpoints=grid, parametrizer="ParametrizeConstAccel")
    traj = inst.compute_trajectory(0.0, 0.0)
    dt = time.perf_counter() - t0
    del toppra
    return (float(traj.duration) if traj is not None else float("nan")), dt


def _ruckig(W: np.ndarray, limits: JointLimits) -> tuple[float, float, float]:
    """ruckig waypoint to waypoint, at rest at each: (duration [s], compute [s], largest
    distance from the polyline [rad], measured after the timing)."""
    from ruckig import InputParameter, Result, Ruckig, Synchronization, Trajectory

    t0 = time.perf_counter()
    dof = limits.dof
    otg = Ruckig(dof)
    inp = InputParameter(dof)
    inp.max_velocity = limits.velocity.tolist()
    inp.max_acceleration = limits.acceleration.tolist()
    inp.max_jerk = limits.jerk.tolist()
    inp.synchronization = Synchronization.Phase
    total = 0.0
    trajs = []
    for a, b in itertools.pairwise(W):
        inp.current_position = a.tolist()
        inp.current_velocity = [0.0] * dof
        inp.current_acceleration = [0.0] * dof
        inp.target_position = b.tolist()
        inp.target_velocity = [0.0] * dof
        inp.target_acceleration = [0.0] * dof
        traj = Trajectory(dof)
        res = otg.calculate(inp, traj)
        if res not in (Result.Working, Result.Finished):
            return float("nan"), time.perf_counter() - t0, float("nan")
        total += traj.duration
        trajs.append(traj)
    dt = time.perf_counter() - t0
    deviation = 0.0
    for (a, b), traj in zip(itertools.pairwise(W), trajs, strict=True):
        P = np.array([traj.at_time(t)[0] for t in np.linspace(0.0, traj.duration, 64)])
        d = b - a
        lam = np.clip((P - a) @ d / (d @ d), 0.0, 1.0)[:, None]
        deviation = max(deviation, float(np.max(np.linalg.norm(P - a - lam * d, axis=1))))
    return total, dt, deviation


def _ruckig_on_line(W: np.ndarray, limits: JointLimits) -> tuple[float, float]:
    """ruckig held on each straight segment, at rest at each waypoint: one DoF, the
    segment's arc length, under the tightest joint limits along it (``v_i / |u_i|`` ...).
    Returns (duration [s], compute [s])."""
    from ruckig import InputParameter, Result, Ruckig, Trajectory

    t0 = time.perf_counter()
    otg = Ruckig(1)
    inp = InputParameter(1)
    total = 0.0
    for a, b in itertools.pairwise(W):
        length = float(np.linalg.norm(b - a))
        au = np.abs(b - a) / length
        m = au > 0
        inp.current_position = [0.0]
        inp.target_position = [length]
        inp.max_velocity = [float(np.min(limits.velocity[m] / au[m]))]
        inp.max_acceleration = [float(np.min(limits.acceleration[m] / au[m]))]
        inp.max_jerk = [float(np.min(limits.jerk[m] / au[m]))]
        traj = Trajectory(1)
        if otg.calculate(inp, traj) not in (Result.Working, Result.Finished):
            return float("nan"), time.perf_counter() - t0
        total += traj.duration
    return total, time.perf_counter() - t0


def _summary(ratios: list[float], ms: list[float]) -> dict[str, Any]:
    r = np.asarray(ratios, dtype=float)
    m = np.asarray(ms, dtype=float)
    r = r[np.isfinite(r)]
    return {
        "n": int(r.size),
        "ratio_median": float(np.median(r)) if r.size else float("nan"),
        "ratio_p95": float(np.percentile(r, 95)) if r.size else float("nan"),
        "compute_ms_median": float(np.median(m)),
        "compute_ms_p95": float(np.percentile(m, 95)),
    }


def _random_paths(limits: JointLimits, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [limits.sample(rng, int(rng.integers(3, 9))) for _ in range(n)]


def _cell_paths(arm: Arm, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    q0 = arm.configuration("ready")
    lim = arm.limits
    out = []
    for _ in range(n):
        m = int(rng.integers(3, 7))
        W = q0 + rng.uniform(-CELL_SPREAD, CELL_SPREAD, size=(m, arm.dof))
        out.append(np.clip(W, lim.lower, lim.upper))
    return out


def _run_set(
    limits: JointLimits, paths: list[np.ndarray]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Ours and the peers on ``paths``: our summary and the peers' by name."""
    ours_r, ours_ms, top_ms, ruck_r, ruck_ms, ruck_dev, durations = [], [], [], [], [], [], []
    line_r, line_ms, ours_cpu_ms = [], [], []
    methods: dict[str, int] = {}
    violations = failures = 0
    for W in paths:
        t0, c0 = time.perf_counter(), time.thread_time()
        res = time_parameterize(W, limits, blend_tolerance=BLEND_TOLERANCE)
        ours_ms.append((time.perf_counter() - t0) * 1e3)
        ours_cpu_ms.append((time.thread_time() - c0) * 1e3)
        bp = BlendedPath.from_waypoints(W, BLEND_TOLERANCE)
        bound, dt = _toppra(bp, limits, bp.grid())
        top_ms.append(dt * 1e3)
        dur, dt, dev = _ruckig(W, limits)
        ruck_ms.append(dt * 1e3)
        ruck_r.append(dur / bound)
        ruck_dev.append(dev)
        dur, dt = _ruckig_on_line(W, limits)
        line_ms.append(dt * 1e3)
        line_r.append(dur / bound)
        if res.trajectory is None:
            failures += 1
            ours_r.append(float("nan"))
            continue
        if res.stats.method is not None:
            methods[res.stats.method.value] = methods.get(res.stats.method.value, 0) + 1
        durations.append(res.trajectory.duration)
        ours_r.append(res.trajectory.duration / bound)
        violations += len(check_limits(res.trajectory, limits, rate_hz=1000.0).violations)
    doc = _summary(ours_r, ours_ms)
    doc["n"] = len(paths)
    doc["violations"] = violations
    doc["failures"] = failures
    doc["duration_s_median"] = float(np.median(durations)) if durations else float("nan")
    doc["methods"] = dict(sorted(methods.items()))
    doc["compute_cpu_ms_median"] = float(np.median(ours_cpu_ms))
    doc["compute_cpu_ms_p95"] = float(np.percentile(ours_cpu_ms, 95))
    ruck = _summary(ruck_r, ruck_ms)
    ruck["deviation_rad_median"] = float(np.nanmedian(ruck_dev))
    ruck["deviation_rad_max"] = float(np.nanmax(ruck_dev))
    line = _summary(line_r, line_ms)
    line["deviation_rad_median"] = line["deviation_rad_max"] = 0.0
    return doc, {"toppra_vel_acc": _summary([1.0] * len(paths), top_ms),
                 "ruckig_stop_and_go": ruck, "ruckig_on_line": line}  # fmt: skip


def _line_paths(
    arm: Arm, n: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n`` Cartesian lines, tool down: (joint samples, TCP start, TCP end)."""
    from spatialmath import SE3

    lo, hi = np.array(LINE_BOX).T
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        length = rng.uniform(*LINE_LENGTH)
        if len(out) % 2 == 0:  # vertical descent
            direction = np.array([0.0, 0.0, -1.0])
        else:
            phi = rng.uniform(0.0, 2 * np.pi)
            direction = np.array([np.cos(phi), np.sin(phi), 0.0])
        a = rng.uniform(lo, hi)
        b = a + length * direction
        if np.any(b < lo) or np.any(b > hi):
            continue
        down = SE3.Rx(np.pi) * SE3.Rz(rng.uniform(-np.pi / 2, np.pi / 2))
        ik = solve_ik(arm, SE3.Trans(*a) * down, arm.configuration("ready"))
        if not ik.success:
            continue
        try:
            line = cartesian_line(arm, ik.q, SE3.Trans(*b) * down)
        except InputError:
            continue
        if line.fraction < 1.0 or len(line.path) < 2:
            continue
        out.append((np.asarray(line.path), a, b))
    return out


def _line_deviation(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    d = b - a
    lam = np.clip((p - a) @ d / (d @ d), 0.0, 1.0)[:, None]
    return float(np.max(np.linalg.norm(p - a - lam * d, axis=1)))


def _run_lines(
    arm: Arm, lines: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Ours, toppra's bound on our path, ruckig on line and our blended path (before)."""
    limits = arm.limits
    ours_r, ours_ms, ours_cpu_ms, top_ms, line_r, line_ms, old_r, old_ms = ([] for _ in range(8))
    durations: list[float] = []
    tcp_dev: list[float] = []
    methods: dict[str, int] = {}
    violations = failures = 0
    for W, a, b in lines:
        t0, c0 = time.perf_counter(), time.thread_time()
        res = time_parameterize(W, limits, arm=arm, blend_tolerance=BLEND_TOLERANCE)
        ours_ms.append((time.perf_counter() - t0) * 1e3)
        ours_cpu_ms.append((time.thread_time() - c0) * 1e3)
        path: TimingPath
        try:
            path = fit_curve(W, tolerance=1e-4, blend_tolerance=BLEND_TOLERANCE,
                             lower=limits.lower, upper=limits.upper, arm=arm)  # fmt: skip
        except CandidateError:
            path = BlendedPath.from_waypoints(W, BLEND_TOLERANCE)
        bound, dt = _toppra(path, limits, path.grid())
        top_ms.append(dt * 1e3)
        dur, dt = _ruckig_on_line(W, limits)
        line_ms.append(dt * 1e3)
        line_r.append(dur / bound)
        t0 = time.perf_counter()
        old = time_parameterize(W, limits, arm=arm, blend_tolerance=BLEND_TOLERANCE,
                                method=TimingMethod.BLENDED)  # fmt: skip
        old_ms.append((time.perf_counter() - t0) * 1e3)
        old_r.append(old.trajectory.duration / bound if old.trajectory else float("nan"))
        if res.trajectory is None:
            failures += 1
            ours_r.append(float("nan"))
            continue
        tr = res.trajectory
        if res.stats.method is not None:
            methods[res.stats.method.value] = methods.get(res.stats.method.value, 0) + 1
        durations.append(tr.duration)
        ours_r.append(tr.duration / bound)
        violations += len(check_limits(tr, limits, rate_hz=1000.0).violations)
        p = arm.fk_batch(tr.sample(np.arange(0.0, tr.duration, 1e-3)))[:, :3, 3]
        tcp_dev.append(_line_deviation(p, a, b))
    doc = _summary(ours_r, ours_ms)
    doc["n"] = len(lines)
    doc["violations"] = violations
    doc["failures"] = failures
    doc["duration_s_median"] = float(np.median(durations)) if durations else float("nan")
    doc["methods"] = dict(sorted(methods.items()))
    doc["compute_cpu_ms_median"] = float(np.median(ours_cpu_ms))
    doc["compute_cpu_ms_p95"] = float(np.percentile(ours_cpu_ms, 95))
    doc["tcp_deviation_mm_max"] = float(np.max(tcp_dev)) * 1e3 if tcp_dev else float("nan")
    doc["samples_median"] = float(np.median([len(W) for W, _, _ in lines]))
    line = _summary(line_r, line_ms)
    line["deviation_rad_median"] = line["deviation_rad_max"] = 0.0
    peers = {"toppra_vel_acc": _summary([1.0] * len(lines), top_ms), "ruckig_on_line": line,
             "ours_blended_before": _summary(old_r, old_ms)}  # fmt: skip
    return doc, peers


def run(n: int = 200, seed: int = 0, progress: Console | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON document (see the module docstring)."""
    out: dict[str, Any] = {
        "arms": {},
        "peers": {},
        "cell": {"arms": {}, "peers": {}},
        "line": {"arms": {}, "peers": {}},
        "settings": {"seed": seed, "waypoints": [3, 8], "blend_tolerance_rad": BLEND_TOLERANCE,
                     "check_rate_hz": 1000.0, "rtol": 1e-6,
                     "cell": {"waypoints": [3, 6], "spread_rad": CELL_SPREAD,
                              "around": "ready"},
                     "line": {"n": max(10, n // 4), "length_m": list(LINE_LENGTH),
                              "box_m": [list(r) for r in LINE_BOX], "step_m": 0.001,
                              "kinds": ["vertical descent", "horizontal"], "tool": "down"}},
    }  # fmt: skip
    for arm_name, tool in ARMS:
        arm = load_arm(arm_name, tool)
        limits = arm.limits
        rng = np.random.default_rng(seed)
        sets = {"random": _random_paths(limits, n, rng), "cell": _cell_paths(arm, n, rng)}
        for W in sets["random"][:3] + sets["cell"][:3]:  # compile and warm caches
            time_parameterize(W, limits, blend_tolerance=BLEND_TOLERANCE)
        for name, paths in sets.items():
            if progress is not None:
                progress.print(f"{arm_name}: {n} {name} paths ...")
            ours, peers = _run_set(limits, paths)
            target = out if name == "random" else out["cell"]
            target["arms"][arm_name] = ours
            for peer, doc in peers.items():
                target["peers"].setdefault(peer, {})[arm_name] = doc
        lines = _line_paths(arm, max(10, n // 4), rng)
        for W, _, _ in lines[:3]:
            time_parameterize(W, limits, arm=arm, blend_tolerance=BLEND_TOLERANCE)
        if progress is not None:
            progress.print(f"{arm_name}: {len(lines)} line paths ...")
        ours, peers = _run_lines(arm, lines)
        out["line"]["arms"][arm_name] = ours
        for peer, doc in peers.items():
            out["line"]["peers"].setdefault(peer, {})[arm_name] = doc
    return out


def print_table(console: Console, result: dict[str, Any]) -> None:
    """Print ours, toppra and ruckig per set and arm: duration / toppra bound, compute time."""
    table = Table(title="Time parameterization: duration / toppra vel+acc bound on the same path")
    for col in ("set", "arm", "method", "jerk", "n", "ratio median", "ratio p95", "ms median",
                "ms p95", "violations", "off path \\[rad]", "picked"):  # fmt: skip
        table.add_column(col, justify="right")
    for set_name, doc in (("random", result), ("cell", result["cell"])):
        for arm, ours in doc["arms"].items():
            ruck = doc["peers"]["ruckig_stop_and_go"][arm]
            line = doc["peers"]["ruckig_on_line"][arm]
            methods = ours.get("methods", {})
            used = f"{methods.get('stop_and_go', 0)} sg / {methods.get('blended', 0)} bl"
            rows = [
                ("ours", "yes", ours, str(ours["violations"]), f"<= {BLEND_TOLERANCE}", used),
                ("toppra (bound)", "no", doc["peers"]["toppra_vel_acc"][arm], "-",
                 f"<= {BLEND_TOLERANCE}", ""),
                ("ruckig stop&go", "yes", ruck, "-",
                 f"{ruck['deviation_rad_median']:.3f} / {ruck['deviation_rad_max']:.3f}", ""),
                ("ruckig on line", "yes", line, "-", "0", ""),
            ]  # fmt: skip
            for name, jerk, row, viol, dev, picked in rows:
                table.add_row(set_name, arm, name, jerk, str(row["n"]),
                              f"{row['ratio_median']:.4f}", f"{row['ratio_p95']:.4f}",
                              f"{row['compute_ms_median']:.2f}", f"{row['compute_ms_p95']:.2f}",
                              viol, dev, picked)  # fmt: skip
    if result.get("line", {}).get("arms"):
        doc = result["line"]
        for arm, ours in doc["arms"].items():
            methods = ours.get("methods", {})
            used = " / ".join(f"{v} {k}" for k, v in methods.items())
            rows = [
                ("ours", "yes", ours, str(ours["violations"]),
                 f"TCP <= {ours['tcp_deviation_mm_max']:.4f} mm", used),
                ("toppra (bound)", "no", doc["peers"]["toppra_vel_acc"][arm], "-", "", ""),
                ("ruckig on line", "yes", doc["peers"]["ruckig_on_line"][arm], "-", "0", ""),
                ("ours blended (before)", "yes", doc["peers"]["ours_blended_before"][arm], "-",
                 f"<= {BLEND_TOLERANCE}", ""),
            ]  # fmt: skip
            for name, jerk, row, viol, dev, picked in rows:
                table.add_row("line", arm, name, jerk, str(row["n"]),
                              f"{row['ratio_median']:.4f}", f"{row['ratio_p95']:.4f}",
                              f"{row['compute_ms_median']:.2f}", f"{row['compute_ms_p95']:.2f}",
                              viol, dev, picked)  # fmt: skip
    console.print(table)
    console.print(
        "off path: largest distance from the polyline \\[rad], median / max over paths (ours"
        " and toppra: within the blend tolerance by construction);"
        " picked: our stop-and-go (sg) or blended (bl) candidate; ruckig stop&go: all joints"
        " at once, phase-synchronised where possible; ruckig on line: one DoF along each"
        " segment (on the path)"
    )
