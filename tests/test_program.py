"""ProgramBuilder.flow: moves along one line pass their junction at speed, each under its
own TCP cap; at a corner the arm stops."""

from __future__ import annotations

import numpy as np
import pytest

from cells.cell_model import SegmentKind
from cells.program import Move, PlanningError, ProgramBuilder
from planners import Arm, load_arm
from planners.cartesian import cartesian_along_tool, chord_of


@pytest.fixture(scope="module")
def arm() -> Arm:
    return load_arm("ur5e", "screwdriver")


def _descent(arm: Arm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 15 mm descent along the bit as one chord, cut 3 mm before its end."""
    q0 = arm.configuration("ready")
    line = cartesian_along_tool(arm, q0, 0.015)
    chord = chord_of(arm, line.path, 1e-4)
    assert chord is not None
    mid = chord[0] + 0.8 * (chord[1] - chord[0])
    return chord[0], mid, chord[1]


def test_one_line_in_two_speeds_passes_the_junction_at_speed(arm: Arm) -> None:
    a, mid, b = _descent(arm)
    moves = [
        Move(np.stack([a, mid]), "approach", SegmentKind.APPROACH, 0.25),
        Move(np.stack([mid, b]), "insert", SegmentKind.INSERT, 0.02),
    ]
    flowing = ProgramBuilder(arm, a)
    segs = flowing.flow(moves)
    program = flowing.build("screw", "h1", "arm")
    assert [s.label for s in segs] == ["approach", "insert"]
    traj = program.trajectory
    v_junction = traj.sample([segs[0].end], 1)[0]
    assert np.linalg.norm(v_junction) > 0  # no stop between the two
    np.testing.assert_allclose(traj.qd[[0, -1]], 0.0, atol=1e-12)  # rest to rest
    np.testing.assert_allclose(traj.q[-1], b, atol=1e-9)
    assert program.tcp_cap_violations(arm) == []  # each segment under its own cap
    stop = ProgramBuilder(arm, a)
    for m in moves:
        stop.move(m.path, m.label, m.kind, m.tcp_cap)
    assert program.duration < stop.time - 0.01  # the flow is shorter than stopping
    # the path stays on the chord
    q = traj.sample(np.linspace(0, traj.duration, 300), 0)
    d = (b - a) / np.linalg.norm(b - a)
    off = (q - a) - np.outer((q - a) @ d, d)
    assert np.abs(off).max() < 1e-9


def test_a_corner_is_a_stop(arm: Arm) -> None:
    a, mid, _ = _descent(arm)
    aside = mid + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.05])  # the wrist turns instead
    builder = ProgramBuilder(arm, a)
    segs = builder.flow([
        Move(np.stack([a, mid]), "approach", SegmentKind.APPROACH, 0.25),
        Move(np.stack([mid, aside]), "turn", SegmentKind.APPROACH, 0.25),
    ])  # fmt: skip
    traj = builder.build("screw", "h1", "arm").trajectory
    assert np.linalg.norm(traj.sample([segs[0].end], 1)[0]) < 1e-9


def test_a_move_that_starts_elsewhere_is_refused(arm: Arm) -> None:
    a, mid, b = _descent(arm)
    builder = ProgramBuilder(arm, a)
    with pytest.raises(PlanningError, match="insert: path starts away from the end of the move"):
        builder.flow([
            Move(np.stack([a, mid]), "approach", SegmentKind.APPROACH, 0.25),
            Move(np.stack([b, a]), "insert", SegmentKind.INSERT, 0.02),
        ])  # fmt: skip
