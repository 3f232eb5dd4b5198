"""Inspection plots: trajectories against limits, TCP path, clearance, cycles, tightenings.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so it
displays in a notebook and saves to PNG headless (``fig.savefig("x.png")``) with no
backend to choose. matplotlib (the ``notebooks`` extra) is imported inside the functions:
importing this module, or anything else of the core package, never loads it.

Units on the axes are those of the data: joints in rad (or m for a prismatic joint) and
their derivatives per second, lengths in m (clearance in mm), times in s, torque in N m,
spindle angle in deg.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from planners.errors import InputError
from planners.scene import Box, Capsule, Cylinder, Obstacle, Sphere

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cells.tightening import TighteningSpec
    from planners.arm import Arm
    from planners.collision import CollisionModel
    from planners.limits import JointLimits
    from planners.trajectory import Trajectory
    from sim.spindle import TighteningTrace

__all__ = [
    "JOINT_QUANTITIES",
    "clearance_over_time",
    "obstacle_wireframe",
    "plot_clearance",
    "plot_cycle_times",
    "plot_joints",
    "plot_tcp_path",
    "plot_timeline",
    "plot_torque_angle",
    "sample_times",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: Subplot titles of :func:`plot_joints`, in order (derivative order 0..3).
JOINT_QUANTITIES: tuple[str, ...] = ("position", "velocity", "acceleration", "jerk")
_UNITS = ("rad", "rad/s", "rad/s²", "rad/s³")
_CIRCLE = 48  # points on a drawn circle


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def sample_times(traj: Trajectory, samples: int = 500) -> NDArray[np.float64]:
    """``samples`` evenly spaced times over ``traj`` plus every knot, sorted, (M,) [s]."""
    if samples < 2:
        raise InputError(f"samples: expected at least 2, got {samples}")
    grid = np.linspace(traj.start_time, traj.end_time, samples)
    return np.unique(np.concatenate((grid, traj.t)))


def _limit_rows(traj: Trajectory, limits: JointLimits) -> NDArray[np.int64]:
    """Index of each trajectory joint in ``limits``; InputError when names differ."""
    if set(limits.names) != set(traj.joint_names):
        raise InputError(
            f"limits.names: {list(limits.names)} differ from the trajectory's "
            f"{list(traj.joint_names)}"
        )
    return np.array([limits.index(n) for n in traj.joint_names], dtype=np.int64)


def plot_joints(
    traj: Trajectory, limits: JointLimits | None = None, *, samples: int = 500
) -> Figure:
    """Joint position, velocity, acceleration and jerk over time, against the limits.

    Four stacked subplots (:data:`JOINT_QUANTITIES`) sharing the time axis, one solid
    line per joint (the legend names the joints, on the position plot); each joint's
    limits are dashed lines in its colour: lower and upper position, ``+-`` velocity,
    acceleration and jerk limit.

    Args:
        traj: The trajectory, sampled with :meth:`Trajectory.sample` at ``samples``
            evenly spaced times plus every knot.
        limits: Limits of the same joints (any order), or ``None`` to draw none.
        samples: Evenly spaced samples [-], >= 2.

    Returns:
        The figure; ``fig.axes`` are position, velocity, acceleration, jerk.

    Raises:
        InputError: the limits name other joints, or ``samples`` < 2.
    """
    rows = _limit_rows(traj, limits) if limits is not None else None
    t = sample_times(traj, samples)
    fig = _figure(9.0, 9.0)
    axes = fig.subplots(4, 1, sharex=True)
    for order, (ax, quantity, unit) in enumerate(zip(axes, JOINT_QUANTITIES, _UNITS, strict=True)):
        values = traj.sample(t, order)
        for j, name in enumerate(traj.joint_names):
            colour = f"C{j % 10}"
            ax.plot(t, values[:, j], color=colour, lw=1.2, label=name)
            if limits is None or rows is None:
                continue
            k = rows[j]
            if order == 0:
                bounds = (float(limits.lower[k]), float(limits.upper[k]))
            else:
                bound = float((limits.velocity, limits.acceleration, limits.jerk)[order - 1][k])
                bounds = (-bound, bound)
            for b in bounds:
                ax.axhline(b, color=colour, ls="--", lw=0.8, alpha=0.7)
        ax.set_ylabel(f"{quantity} [{unit}]")
        ax.grid(True, alpha=0.3)
        if limits is not None and order == 0:
            # Position limits span several radians; zoom on the motion with a margin so
            # the limits that matter stay visible.
            lo, hi = float(values.min()), float(values.max())
            pad = max(0.5, 0.25 * (hi - lo))
            ax.set_ylim(lo - pad, hi + pad)
    axes[0].legend(fontsize="small", ncols=min(traj.dof, 4), loc="upper right")
    axes[-1].set_xlabel("time [s]")
    axes[0].set_title(
        f"joints over {traj.duration:.3f} s" + ("; limits dashed" if limits is not None else "")
    )
    return fig


# ------------------------------------------------------------------------------ TCP path
def _circle(radius: float, z: float, plane: str = "xy") -> NDArray[np.float64]:
    a = np.linspace(0.0, 2 * np.pi, _CIRCLE)
    c, s = radius * np.cos(a), radius * np.sin(a)
    zz = np.full_like(a, z)
    if plane == "xy":
        return np.column_stack((c, s, zz))
    if plane == "xz":
        return np.column_stack((c, zz, s))
    return np.column_stack((zz, c, s))


def obstacle_wireframe(obstacle: Obstacle) -> list[NDArray[np.float64]]:
    """Polylines that outline an obstacle in the world, each (K, 3) [m].

    A box gives its 12 edges; a sphere three great circles; a cylinder its two end
    circles and four lines along its axis; a capsule the same plus a half circle over
    each end in two planes.
    """
    T = np.asarray(obstacle.pose)
    local: list[NDArray[np.float64]] = []
    if isinstance(obstacle, Box):
        h = np.asarray(obstacle.half_extents)
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * h
        for i in range(8):
            for j in range(i + 1, 8):
                if np.count_nonzero(corners[i] != corners[j]) == 1:
                    local.append(corners[[i, j]])
    elif isinstance(obstacle, Sphere):
        r = obstacle.radius
        local += [_circle(r, 0.0, "xy"), _circle(r, 0.0, "xz"), _circle(r, 0.0, "yz")]
    elif isinstance(obstacle, Cylinder | Capsule):
        r, half = obstacle.radius, obstacle.length / 2
        local += [_circle(r, -half), _circle(r, half)]
        for a in np.arange(4) * np.pi / 2:
            x, y = r * math.cos(a), r * math.sin(a)
            local.append(np.array([[x, y, -half], [x, y, half]]))
        if isinstance(obstacle, Capsule):
            a = np.linspace(0.0, np.pi, _CIRCLE // 2 + 1)  # odd: the tip is a point
            for sign in (-1.0, 1.0):
                arc = sign * r * np.sin(a)
                z = sign * half + arc
                local.append(np.column_stack((r * np.cos(a), np.zeros_like(a), z)))
                local.append(np.column_stack((np.zeros_like(a), r * np.cos(a), z)))
    else:
        raise InputError(
            f"obstacle: expected a Box, Sphere, Cylinder or Capsule, got {type(obstacle).__name__}"
        )
    return [pts @ T[:3, :3].T + T[:3, 3] for pts in local]


def plot_tcp_path(
    arm: Arm,
    traj: Trajectory,
    obstacles: Sequence[Obstacle] = (),
    *,
    samples: int = 300,
) -> Figure:
    """The TCP's path in 3D among the obstacles.

    The TCP positions come from ``arm.fk_batch`` over ``samples`` evenly spaced times
    plus every knot. Knots are dots, start and end are marked; obstacles are grey
    wireframes (:func:`obstacle_wireframe`). Axes are in metres with equal scale.

    Args:
        arm: The arm the trajectory drives (its joints, in its order).
        traj: The trajectory.
        obstacles: World obstacles (e.g. :func:`planners.obstacles_from_urdf` per fixture).
        samples: Evenly spaced samples [-], >= 2.

    Returns:
        The figure; its one 3D axes holds the path line first, then the obstacles.

    Raises:
        InputError: the trajectory's joints are not the arm's.
    """
    if tuple(traj.joint_names) != tuple(arm.joint_names):
        raise InputError(
            f"traj.joint_names: {list(traj.joint_names)} are not the joints of {arm.name} "
            f"{list(arm.joint_names)}"
        )
    t = sample_times(traj, samples)
    p = arm.fk_batch(traj.sample(t, 0))[:, :3, 3]
    knots = arm.fk_batch(traj.q)[:, :3, 3]
    fig = _figure(7.5, 7.0)
    ax = fig.add_subplot(projection="3d")
    ax.plot(p[:, 0], p[:, 1], p[:, 2], color="C0", lw=2.0, label="TCP path")
    ax.scatter(knots[:, 0], knots[:, 1], knots[:, 2], color="C0", s=8)
    ax.scatter(*p[0], color="C2", s=40, marker="o", label="start")
    ax.scatter(*p[-1], color="C3", s=50, marker="X", label="end")
    points = [p]
    label: str | None = "obstacles"
    for obstacle in obstacles:
        for line in obstacle_wireframe(obstacle):
            ax.plot(line[:, 0], line[:, 1], line[:, 2], color="0.45", lw=0.6, label=label)
            label = None
            points.append(line)
    allp = np.concatenate(points)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    ax.set_box_aspect(tuple(np.maximum(hi - lo, 1e-3)))
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    ax.legend(fontsize="small", loc="upper left")
    length = float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))
    ax.set_title(f"{arm.tcp_link}: {length * 1e3:.0f} mm path, {len(obstacles)} obstacles")
    return fig


# ------------------------------------------------------------------------------ clearance
def clearance_over_time(
    model: CollisionModel, traj: Trajectory, *, samples: int = 300
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Clearance of the sphere model along a trajectory.

    Args:
        model: Collision model of the arm that the trajectory drives.
        traj: The trajectory, sampled at ``samples`` evenly spaced times plus every knot.
        samples: Evenly spaced samples [-], >= 2.

    Returns:
        ``(t, clearance)``: (M,) times [s] and (M,) smallest signed distance [m] of
        :meth:`planners.CollisionModel.clearance` (negative: penetration; ``inf`` when
        nothing is checked).

    Raises:
        InputError: the trajectory's joints are not the model's arm's.
    """
    names = tuple(model.arm.joint_names)
    if tuple(traj.joint_names) != names:
        raise InputError(
            f"traj.joint_names: {list(traj.joint_names)} are not the joints of the "
            f"collision model's arm {list(names)}"
        )
    t = sample_times(traj, samples)
    return t, np.asarray(model.clearance(traj.sample(t, 0)), dtype=np.float64)


def plot_clearance(
    t: npt.ArrayLike, clearance_m: npt.ArrayLike, *, padding: float | None = None
) -> Figure:
    """Clearance over time, in mm, with zero and the padding as dashed lines.

    Args:
        t: (M,) times [s].
        clearance_m: (M,) clearance [m] (e.g. from :func:`clearance_over_time`);
            infinite values (nothing near) are left out.
        padding: The scene's padding [m], drawn when given.

    Returns:
        The figure; its one axes holds the clearance line first.

    Raises:
        InputError: ``t`` and ``clearance_m`` differ in shape.
    """
    tt = np.asarray(t, dtype=np.float64).reshape(-1)
    c = np.asarray(clearance_m, dtype=np.float64).reshape(-1)
    if tt.shape != c.shape:
        raise InputError(f"clearance_m: expected shape {tt.shape} like t, got {c.shape}")
    mm = np.where(np.isfinite(c), c * 1e3, np.nan)
    fig = _figure(9.0, 3.5)
    ax = fig.add_subplot()
    ax.plot(tt, mm, color="C0", lw=1.5, label="clearance")
    ax.axhline(0.0, color="C3", ls="--", lw=1.0, label="contact")
    if padding is not None:
        ax.axhline(padding * 1e3, color="C1", ls="--", lw=1.0, label="padding")
    if np.any(np.isfinite(mm)):
        i = int(np.nanargmin(mm))
        ax.plot(tt[i], mm[i], "o", color="C3", ms=5)
        ax.set_title(f"min clearance {mm[i]:.1f} mm at {tt[i]:.3f} s")
    else:
        ax.set_title("nothing within range")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("clearance [mm]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


# ------------------------------------------------------------------------------ cycles
def plot_timeline(
    rows: Sequence[tuple[str, str, float, float]], *, title: str | None = None
) -> Figure:
    """A stage timeline (Gantt chart) of one cycle.

    One lane per distinct label, in order of first appearance (a retried operation
    shares its lane); one bar per row, coloured by kind (legend).

    Args:
        rows: ``(label, kind, start, end)`` with times [s], e.g. relative to the cycle's
            start; ``end >= start``.
        title: Figure title.

    Returns:
        The figure; its one axes holds one bar collection per row, in order.

    Raises:
        InputError: no rows, or a row that is not ``(str, str, start, end)`` with
            finite ``end >= start``.
    """
    if len(rows) == 0:
        raise InputError("rows: expected at least one (label, kind, start, end) row")
    lanes: dict[str, int] = {}
    kinds: dict[str, str] = {}
    checked: list[tuple[str, str, float, float]] = []
    for i, row in enumerate(rows):
        try:
            label, kind, start, end = row
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            raise InputError(
                f"rows[{i}]: expected (label, kind, start, end), got {row!r}"
            ) from None
        if not (math.isfinite(start) and math.isfinite(end) and end >= start):
            raise InputError(f"rows[{i}]: expected finite times with end >= start, got {row!r}")
        lanes.setdefault(str(label), len(lanes))
        kinds.setdefault(str(kind), f"C{len(kinds) % 10}")
        checked.append((str(label), str(kind), start, end))
    fig = _figure(9.0, 1.2 + 0.32 * len(lanes))
    ax = fig.add_subplot()
    seen: set[str] = set()
    for label, kind, start, end in checked:
        ax.broken_barh(
            [(start, max(end - start, 1e-6))], (lanes[label] - 0.4, 0.8),
            facecolors=kinds[kind], edgecolor="black", linewidth=0.4,
            label=None if kind in seen else kind,
        )  # fmt: skip
        seen.add(kind)
    ax.set_yticks(range(len(lanes)), list(lanes))
    ax.invert_yaxis()
    ax.set_xlabel("time [s]")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    span = max(r[3] for r in checked) - min(r[2] for r in checked)
    ax.set_title(title if title is not None else f"stage timeline, {span:.2f} s")
    return fig


def plot_cycle_times(
    cycle_times: npt.ArrayLike,
    takt: float | None = None,
    *,
    labels: Sequence[str] | None = None,
) -> Figure:
    """Cycle time of each cycle as a bar, against the takt (dashed line).

    Bars over the takt are red, the others blue.

    Args:
        cycle_times: (C,) cycle times [s].
        takt: The cell's takt [s], drawn when given.
        labels: (C,) tick labels (serial numbers); cycle numbers 1..C by default.

    Returns:
        The figure; its one axes holds the bars (``ax.patches``) and the takt line.

    Raises:
        InputError: no cycle times, a non-finite one, or labels of another length.
    """
    ct = np.asarray(cycle_times, dtype=np.float64).reshape(-1)
    if ct.size == 0 or not np.all(np.isfinite(ct)):
        raise InputError(f"cycle_times: expected one or more finite times [s], got {ct.size}")
    if labels is not None and len(labels) != ct.size:
        raise InputError(f"labels: expected {ct.size} labels, got {len(labels)}")
    x = np.arange(1, ct.size + 1)
    over = ct > takt if takt is not None else np.zeros(ct.size, bool)
    fig = _figure(max(7.0, min(12.0, 3.0 + 0.3 * ct.size)), 3.5)
    ax = fig.add_subplot()
    ax.bar(x, ct, color=np.where(over, "C3", "C0"), edgecolor="black", linewidth=0.4)
    title = f"{ct.size} cycles, median {np.median(ct):.2f} s"
    if takt is not None:
        ax.axhline(takt, color="black", ls="--", lw=1.0, label=f"takt {takt:g} s")
        ax.legend(fontsize="small")
        title += f", {int(np.count_nonzero(over))} over takt"
    if labels is not None:
        ax.set_xticks(x, list(labels), rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("cycle")
    ax.set_ylabel("cycle time [s]")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(title)
    return fig


# ------------------------------------------------------------------------------ tightening
def plot_torque_angle(
    traces: Mapping[str, TighteningTrace],
    spec: TighteningSpec | None = None,
    *,
    reference: TighteningTrace | None = None,
    reference_label: str = "OK",
) -> Figure:
    """Torque-angle traces, one subplot each, over a reference (an OK joint).

    Each subplot (titled by its key, e.g. the NOK reason) draws its trace over the
    reference in grey; with ``spec`` also the target torque and its tolerance band
    (dashed, shaded) and the angle window (dashed verticals, shaded).

    Args:
        traces: Traces by title, e.g. ``{"stripped": trace, ...}``; may be empty when
            a reference is given (one subplot then shows the reference alone).
        spec: The hole's tightening spec, drawn when given.
        reference: A trace drawn behind every subplot, e.g. an OK joint.
        reference_label: Legend label of the reference.

    Returns:
        The figure; one axes per trace (or one for the reference alone).

    Raises:
        InputError: neither traces nor a reference.
    """
    panels = dict(traces)
    if not panels:
        if reference is None:
            raise InputError("traces: expected at least one trace or a reference")
        panels = {reference_label: reference}
        reference = None
    n = len(panels)
    cols = min(n, 3)
    nrows = math.ceil(n / cols)
    fig = _figure(4.2 * cols, 3.3 * nrows)
    first = None
    for i, (title, trace) in enumerate(panels.items()):
        ax = fig.add_subplot(nrows, cols, i + 1, sharex=first, sharey=first)
        first = first or ax
        if spec is not None:
            lo = spec.target_torque - spec.torque_tolerance
            hi = spec.target_torque + spec.torque_tolerance
            ax.axhspan(lo, hi, color="C2", alpha=0.12)
            ax.axhline(spec.target_torque, color="C2", ls="--", lw=1.0, label="target")
            ax.axvspan(spec.angle_min, spec.angle_max, color="C1", alpha=0.10)
            for a in (spec.angle_min, spec.angle_max):
                ax.axvline(a, color="C1", ls="--", lw=1.0)
        if reference is not None:
            ax.plot(reference.angle, reference.torque, color="0.6", lw=1.0,
                    label=reference_label)  # fmt: skip
        ax.plot(trace.angle, trace.torque, color="C0" if reference is None else "C3", lw=1.0,
                label=title)  # fmt: skip
        ax.set_title(f"{title}: {trace.final_torque:.3f} N m at {trace.final_angle:.0f} deg",
                     fontsize="medium")  # fmt: skip
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="upper left")
        if i >= n - cols:
            ax.set_xlabel("angle [deg]")
        if i % cols == 0:
            ax.set_ylabel("torque [N m]")
    return fig
