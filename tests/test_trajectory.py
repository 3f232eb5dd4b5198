"""Trajectory: validation, quintic sampling, resampling, concatenation, save and load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planners.errors import InputError
from planners.trajectory import FORMAT, Trajectory

NAMES = ("a", "b")


def _poly(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A quintic in joint a and a cubic in joint b, with derivatives."""
    q = np.stack([t**5 - 2 * t**3, 0.5 * t**3 + t], axis=1)
    qd = np.stack([5 * t**4 - 6 * t**2, 1.5 * t**2 + 1], axis=1)
    qdd = np.stack([20 * t**3 - 12 * t, 3 * t], axis=1)
    return q, qd, qdd


@pytest.fixture
def traj() -> Trajectory:
    t = np.array([0.0, 0.3, 0.7, 1.0])
    return Trajectory(NAMES, t, *_poly(t))


def test_sampling_reproduces_a_quintic_exactly(traj: Trajectory) -> None:
    times = np.linspace(-0.1, 1.1, 121)
    inside = np.clip(times, 0, 1)
    q, qd, qdd = _poly(inside)
    np.testing.assert_allclose(traj.sample(times, 0), q, atol=1e-12)
    np.testing.assert_allclose(traj.sample(times, 1), qd, atol=1e-11)
    np.testing.assert_allclose(traj.sample(times, 2), qdd, atol=1e-10)
    jerk = np.stack([60 * inside**2 - 12, np.full_like(inside, 3.0)], axis=1)
    np.testing.assert_allclose(traj.sample(times, 3), jerk, atol=1e-8)


def test_at_and_properties(traj: Trajectory) -> None:
    q, qd, qdd, qddd = traj.at(0.5)
    assert q.shape == qd.shape == qdd.shape == qddd.shape == (2,)
    assert traj.dof == 2 and traj.duration == pytest.approx(1.0)
    assert not traj.q.flags.writeable and not traj.t.flags.writeable
    with pytest.raises(InputError, match="order"):
        traj.sample(0.5, order=4)


def test_sample_intervals_includes_left_limits(traj: Trajectory) -> None:
    vals = traj.sample_intervals([0.0, 1.0], 1)
    assert vals.shape == (3, 2, 2)
    np.testing.assert_allclose(vals[:, 1], traj.qd[1:], atol=1e-11)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"t": [0.0, 0.0, 1.0]}, "trajectory.t"),
        ({"t": [0.0, np.nan, 1.0]}, "trajectory.t"),
        ({"q": np.zeros((3, 3))}, "trajectory.q"),
        ({"qd": np.full((3, 2), np.inf)}, "trajectory.qd"),
        ({"qdd": np.zeros(3)}, "trajectory.qdd"),
        ({"joint_names": ("a", "a")}, "trajectory.joint_names"),
    ],
)
def test_bad_fields_raise_naming_the_field(kwargs: dict, field: str) -> None:
    args: dict[str, Any] = {"joint_names": NAMES, "t": [0.0, 0.5, 1.0], "q": np.zeros((3, 2)),
            "qd": np.zeros((3, 2)), "qdd": np.zeros((3, 2))}  # fmt: skip
    args.update(kwargs)
    with pytest.raises(InputError, match=field):
        Trajectory(**args)


def test_one_knot_holds_still() -> None:
    tr = Trajectory(NAMES, np.zeros(1), np.array([[1.0, 2.0]]), np.zeros((1, 2)), np.zeros((1, 2)))
    assert tr.duration == 0.0
    np.testing.assert_array_equal(tr.sample([0.0, 5.0]), [[1.0, 2.0], [1.0, 2.0]])


def test_resample_fixed_rate_keeps_the_end(traj: Trajectory) -> None:
    r = traj.resample(1000.0)
    assert r.t.size == 1001
    np.testing.assert_allclose(np.diff(r.t), 1e-3, atol=1e-12)
    np.testing.assert_allclose(r.q, traj.sample(r.t), atol=1e-12)
    odd = Trajectory(NAMES, np.array([0.0, 0.45]), traj.q[:2], traj.qd[:2], traj.qdd[:2]).resample(
        10.0
    )
    assert odd.t[-1] == pytest.approx(0.45) and odd.t.size == 6
    with pytest.raises(InputError, match="rate_hz"):
        traj.resample(0.0)


def test_concatenate_shifts_and_checks_continuity(traj: Trajectory) -> None:
    t = np.array([0.0, 0.5])
    q, qd, qdd = _poly(np.array([1.0, 1.5]))
    tail = Trajectory(NAMES, t + 7.0, q, qd, qdd)
    joined = Trajectory.concatenate([traj, tail])
    assert joined.duration == pytest.approx(1.5)
    assert joined.t.size == traj.t.size + 1
    np.testing.assert_allclose(joined.sample([1.25]), _poly(np.array([1.25]))[0], atol=1e-9)
    jump = Trajectory(NAMES, t, q + 0.1, qd, qdd)
    with pytest.raises(InputError, match=r"trajs\[1\]\.q"):
        Trajectory.concatenate([traj, jump])
    other = Trajectory(("a", "c"), t, q, qd, qdd)
    with pytest.raises(InputError, match="joint_names"):
        Trajectory.concatenate([traj, other])
    with pytest.raises(InputError, match="at least one"):
        Trajectory.concatenate([])


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_save_load_round_trip(traj: Trajectory, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"traj{suffix}"
    traj.save(path)
    back = Trajectory.load(path)
    assert back.joint_names == traj.joint_names
    for field in ("t", "q", "qd", "qdd"):
        np.testing.assert_array_equal(getattr(back, field), getattr(traj, field))


def test_json_form_is_plain_and_checked(traj: Trajectory, tmp_path: Path) -> None:
    path = tmp_path / "traj.json"
    traj.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == 1
    assert doc["joint_names"] == ["a", "b"] and len(doc["q"]) == 4
    doc["version"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="version"):
        Trajectory.load(path)
    del doc["qd"]
    doc["version"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="qd"):
        Trajectory.load(path)
    with pytest.raises(InputError, match=r"\.npz or \.json"):
        traj.save(tmp_path / "traj.csv")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.npz", None, "no such file"),
        ("junk.npz", b"not an archive", "not a readable .npz"),
        ("cut.npz", b"PK\x03\x04 cut short", "not a readable .npz"),
        ("junk.json", b"\xff\xfe{", "not valid JSON"),
    ],
)
def test_load_of_a_bad_file_names_it(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        Trajectory.load(path)
    assert name in str(info.value)
