"""Self-collision of chosen link pairs along a trajectory, from a few exact queries.

Some pairs of an arm's links are checked by PyBullet but not by the sphere model: their
spheres overlap at ``home`` although the links keep a few millimetres apart there (on the
UR5e: base and upper arm, forearm and wrist 2, wrist 1 and wrist 3). Querying them at
every sample of a sweep costs more than the rest of the sweep; a bound on how fast their
distance can change makes most of those queries unnecessary.

Between two links, moving one joint on the chain that connects them by ``dq`` turns one
side about that joint's axis relative to the other. The turned side's points move by at
most ``dq`` times their distance from the axis, and for a cylinder (or capsule) parallel
to the axis the turn is a translation of at most ``dq`` times the offset of its own axis
(zero for a coaxial one: turning it changes nothing). So the signed distance of the pair
changes by at most ``rate . |dq|``, where ``rate[j]`` [m/rad] is the smaller of the two
sides' bound for joint ``j`` (0 for joints off the chain). The pair's distance then
depends only on the joints with a rate, and a cell of those joints around a configuration
whose exact distance is ``d`` is clear while ``rate . half-width`` stays below ``d``: cells
are filled as sweeps visit them and kept. Where a cell cannot prove a sample clear, an
exact distance at the sample proves the following ones while ``rate . |q - q_k|`` stays
below it. Samples where a pair comes into contact are flagged for the sweep's contact
query.

A side whose links are not rigidly attached to the axis (a joint in between) gets the
looser bound ``max |p - o|`` over its geometry, ``o`` a point on the axis, bounded through
the joint origins along the chain.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import numba as nb
import numpy as np
from numpy.typing import NDArray

from planners.urdf_pose import origin_pose
from sim.arm_body import ArmBody
from sim.world import World

__all__ = ["PairScreen", "checked_pairs"]

_REVOLUTE, _PRISMATIC = 0, 1  # PyBullet joint types


@dataclass(frozen=True)
class _Shape:
    """One collision element in the world at the body's current state."""

    centre: NDArray[np.float64]  # (3,) [m]
    axis: NDArray[np.float64] | None  # (3,) unit axis of a cylinder or capsule
    extent: float  # largest distance of a point of the shape from its centre [m]


def _line_distance(p: NDArray[np.float64], o: NDArray[np.float64], u: NDArray[np.float64]) -> float:
    """Distance of point ``p`` from the line through ``o`` along unit ``u``."""
    v = p - o
    return float(np.linalg.norm(v - np.dot(v, u) * u))


@nb.njit(cache=True)
def _cell_runs(
    Q: NDArray[np.float64], active: NDArray[np.int64], scale: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Runs of samples in one cell: (R + 1,) first samples (and N), (R, A) cell keys.

    A sample's key along active joint ``active[a]`` is ``floor(q * scale[a])``.
    """
    N = Q.shape[0]
    A = active.size
    starts = np.empty(N + 1, np.int64)
    keys = np.empty((N, A), np.int64)
    cur = np.empty(A, np.int64)
    r = 0
    for i in range(N):
        same = i > 0
        for a in range(A):
            key = np.int64(np.floor(Q[i, active[a]] * scale[a]))
            if key != cur[a]:
                same = False
            cur[a] = key
        if not same:
            keys[r] = cur
            starts[r] = i
            r += 1
    starts[r] = N
    return starts[: r + 1], keys[:r]


def checked_pairs(world: World, arm_name: str) -> list[tuple[str, str]]:
    """The arm's link pairs PyBullet checks for self-collision, by link index.

    Both links have collision geometry and the pair is not excluded as adjacent
    (:meth:`sim.arm_body.ArmBody.exclude_adjacent_pairs`); each pair and the list are
    ordered by PyBullet link index.
    """
    body = world.arm(arm_name)
    client = world.client
    links = sorted(
        (i, name)
        for name, i in body.link_indices.items()
        if client.getCollisionShapeData(body.body, i)
    )
    excluded = {tuple(sorted(p)) for p in world.adjacent[arm_name]}
    return [
        (a, b)
        for k, (_, a) in enumerate(links)
        for _, b in links[k + 1 :]
        if tuple(sorted((a, b))) not in excluded
    ]


@nb.njit(cache=True)
def _covered(
    Q: NDArray[np.float64], rate: NDArray[np.float64], k: int, budget: float
) -> int:  # fmt: skip
    """First sample after ``k`` whose ``rate . |Q[i] - Q[k]|`` reaches ``budget``."""
    n, dof = Q.shape
    for i in range(k + 1, n):
        w = 0.0
        for j in range(dof):
            w += rate[j] * abs(Q[i, j] - Q[k, j])
        if w >= budget:
            return i
    return n


class PairScreen:
    """Exact self-collision of link pairs of one arm body, queried only where needed.

    Args:
        body: The arm in its PyBullet world (its current state is only used to read
            lengths that do not depend on the configuration).
        pairs: Link name pairs to check.
        reach: Distances are measured up to this [m]; farther counts as ``reach``.
        slack: Margin [m] for PyBullet's numerical error in a distance.

    Attributes:
        pairs: The pairs, each and all ordered by PyBullet link index.
        rates: (P, dof) bound [m per rad or m] on how fast each pair's distance changes
            with each actuated joint.
    """

    def __init__(
        self,
        body: ArmBody,
        pairs: Iterable[tuple[str, str]],
        *,
        reach: float = 0.05,
        slack: float = 1e-4,
    ) -> None:
        self.body = body
        self.reach = reach
        self.slack = slack
        ordered = {}
        for a, b in pairs:
            ia, ib = body.link_index(a), body.link_index(b)
            ordered[min(ia, ib), max(ia, ib)] = (a, b) if ia <= ib else (b, a)
        self.pairs: tuple[tuple[str, str], ...] = tuple(ordered[k] for k in sorted(ordered))
        self._index = [(body.link_index(a), body.link_index(b)) for a, b in self.pairs]
        self._read_model()
        self._closest = body.client.getClosestPoints  # bound once
        limits = body.arm.limits
        self._span = np.asarray(limits.upper - limits.lower, dtype=np.float64)
        self._grid: dict[int, tuple[NDArray[np.int64], NDArray[np.float64], float] | None] = {}
        self._cells: dict[int, dict[tuple[int, ...], float]] = {}
        self.rates = np.zeros((len(self.pairs), body.arm.dof))
        for p, (ia, ib) in enumerate(self._index):
            self.rates[p] = self._pair_rates(ia, ib)

    # ------------------------------------------------------------------ the model

    def _read_model(self) -> None:
        """Link frames, joint axes and collision shapes in the world, at the current state."""
        client, body = self.body.client, self.body.body
        root = ET.fromstring(self.body.arm.urdf_text)
        n = client.getNumJoints(body)
        self._parent = {j: int(client.getJointInfo(body, j)[16]) for j in range(n)}
        self._jtype = {j: int(client.getJointInfo(body, j)[2]) for j in range(n)}
        self._column = {j: c for c, j in enumerate(self.body.joint_indices)}
        names = {index: name for name, index in self.body.link_indices.items()}
        frames = {i: self.body.link_pose(names[i]) for i in [-1, *range(n)]}
        joints = {j.get("name"): j for j in root.iter("joint")}
        self._origin = {j: frames[j][:3, 3] for j in range(n)}
        self._axis = {}
        for j in range(n):
            el = joints.get(client.getJointInfo(body, j)[1].decode())
            axis_el = el.find("axis") if el is not None else None
            local = [1.0, 0.0, 0.0] if axis_el is None else axis_el.get("xyz", "1 0 0").split()
            u = frames[j][:3, :3] @ np.asarray(local, dtype=np.float64)
            norm = float(np.linalg.norm(u))  # 0 for a fixed joint declared with axis 0 0 0
            self._axis[j] = u / norm if norm > 0 else frames[j][:3, 0]
        links = {el.get("name"): el for el in root.iter("link")}
        self._shapes: dict[int, list[_Shape]] = {}
        for i, T_link in frames.items():
            shapes = []
            el = links.get(names[i])
            for col in [] if el is None else el.findall("collision"):
                T = T_link @ origin_pose(col.find("origin"))
                geom = col.find("geometry")
                g = None if geom is None or len(geom) == 0 else geom[0]
                if g is not None and g.tag == "sphere":
                    shapes.append(_Shape(T[:3, 3], None, float(g.get("radius", "nan"))))
                elif g is not None and g.tag in ("cylinder", "capsule"):
                    r, half = float(g.get("radius", "nan")), float(g.get("length", "nan")) / 2
                    extent = half + r if g.tag == "capsule" else math.hypot(half, r)
                    shapes.append(_Shape(T[:3, 3], T[:3, 2], extent))
                elif g is not None and g.tag == "box":
                    size = np.array([float(v) for v in g.get("size", "").split()])
                    shapes.append(_Shape(T[:3, 3], None, float(np.linalg.norm(size) / 2)))
                else:  # a mesh (or anything else): the link's bounding box, margin included
                    lo, hi = (np.asarray(v) for v in client.getAABB(body, i))
                    shapes.append(_Shape((lo + hi) / 2, None, float(np.linalg.norm(hi - lo) / 2)))
            self._shapes[i] = shapes

    def _path(self, a: int, b: int) -> list[tuple[int, int, int]]:
        """Joints on the chain from link ``a`` to link ``b``: (joint, link before, link after)."""

        def up(link: int) -> list[int]:
            out = [link]
            while link >= 0:
                link = self._parent[link]
                out.append(link)
            return out

        ua, ub = up(a), up(b)
        common = next(link for link in ua if link in ub)
        out = [(j, j, self._parent[j]) for j in ua[: ua.index(common)]]
        out += [(j, self._parent[j], j) for j in reversed(ub[: ub.index(common)])]
        return out

    def _turn_rate(self, link: int, j: int) -> float:
        """Bound on how far ``link``'s geometry moves per radian about joint ``j``'s fixed axis."""
        o, u = self._origin[j], self._axis[j]
        worst = 0.0
        for s in self._shapes[link]:
            off = _line_distance(s.centre, o, u)
            if s.axis is not None and np.linalg.norm(np.cross(s.axis, u)) < 1e-9:
                worst = max(worst, off)  # parallel: the turn is a translation by off * dq
            else:
                worst = max(worst, off + s.extent)
        return worst

    def _reach(self, link: int, point: NDArray[np.float64]) -> float:
        """Largest distance of ``link``'s geometry from ``point`` [m]."""
        return max(
            (float(np.linalg.norm(s.centre - point)) + s.extent for s in self._shapes[link]),
            default=0.0,
        )

    def _side_rate(self, side: list[tuple[int, int, int]], link: int, k: int) -> float:
        """Rate of joint ``side[k]`` seen from ``link``, the end of ``side`` before index 0."""
        j = side[k][0]
        moving = [s for s in side[:k] if s[0] in self._column]
        if not moving:  # the axis is rigidly attached to this link
            return self._turn_rate(link, j) if self._jtype[j] == _REVOLUTE else 1.0
        if self._jtype[j] != _REVOLUTE:
            return 1.0
        if any(self._jtype[s[0]] == _PRISMATIC for s in side[:k]):
            return math.inf  # the other side's bound is used
        # |p - o_j| <= |p - c| + |c - o_2| + the fixed distances between the next joint
        # origins, c the foot of o_2 on the first axis: a turn about it keeps |c - o_2|.
        first, second = side[0][0], side[1][0]
        o2 = self._origin[second]
        o1, u1 = self._origin[first], self._axis[first]
        c = o1 + np.dot(o2 - o1, u1) * u1
        total = self._reach(link, c) + float(np.linalg.norm(o2 - c))
        for (j0, _, _), (j1, _, _) in pairwise(side[1 : k + 1]):
            total += float(np.linalg.norm(self._origin[j1] - self._origin[j0]))
        return total

    def _pair_rates(self, a: int, b: int) -> NDArray[np.float64]:
        path = self._path(a, b)
        rates = np.zeros(self.body.arm.dof)
        back = list(reversed(path))
        for k, (j, _, _) in enumerate(path):
            if j not in self._column or self._jtype[j] not in (_REVOLUTE, _PRISMATIC):
                continue
            from_a = self._side_rate(path, a, k)
            from_b = self._side_rate(back, b, len(path) - 1 - k)
            rates[self._column[j]] = min(from_a, from_b)
        return rates

    # ------------------------------------------------------------------ queries

    def distance(self, pair: int) -> float:
        """Signed distance [m] of pair ``pair`` at the body's current state (up to ``reach``)."""
        a, b = self._index[pair]
        body = self.body.body
        points = self._closest(body, body, self.reach, a, b)
        return min((float(p[8]) for p in points), default=self.reach)

    def _cell_runs(
        self, p: int, Q: NDArray[np.float64], limit: float
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], int]:
        """Pair ``p``'s lower bounds from its cached cells, per run of samples in one cell.

        The joints the pair depends on are cut into cells small enough that the rate
        bound over a cell is half the pair's first measured clearance; a cell's bound is
        the exact distance at its centre less the rate bound, computed once and kept for
        every later sweep of this body.

        Returns:
            (R + 1,) the runs' first samples (and N), (R,) their bounds [m] (``-inf``:
            none), and the exact queries made.
        """
        queries = 0
        if p not in self._grid:
            rates = self.rates[p]
            active = np.flatnonzero(rates > 1e-9)
            self.body.set_q(Q[0])
            d0 = self.distance(p)
            queries += 1
            room = (d0 - limit) / 2
            if room <= 0 or active.size == 0:
                self._grid[p] = None
            else:
                half = room / (active.size * rates[active])
                # joints with a rate of rounding noise (a coaxial turn): their whole range
                idle = np.setdiff1d(np.flatnonzero(rates > 0), active)
                slack = float(rates[active] @ half + np.sum(rates[idle] * self._span[idle]))
                self._grid[p] = (active, half, slack)
            self._cells[p] = {}
        grid = self._grid[p]
        if grid is None:
            return np.array([0, len(Q)], np.int64), np.array([-np.inf]), queries
        active, half, slack = grid
        starts, keys = _cell_runs(Q, active, 0.5 / half)
        cells = self._cells[p]
        values = np.empty(len(keys))
        for r, row in enumerate(keys.tolist()):
            key = tuple(row)
            value = cells.get(key)
            if value is None:
                q = Q[starts[r]].copy()
                q[active] = (keys[r] + 0.5) * 2 * half
                self.body.set_q(q)
                queries += 1
                value = cells[key] = self.distance(p) - slack
            values[r] = value
        return starts, values, queries

    def check(
        self,
        Q: NDArray[np.float64],
        touch_tolerance: float,
        pairs: Iterable[int] | None = None,
    ) -> tuple[NDArray[np.int64], int]:
        """Samples of (N, dof) ``Q`` where some pair may penetrate deeper than ``touch_tolerance``.

        A sample is flagged when a pair's exact distance there is below
        ``slack - touch_tolerance``. Every other sample is proved clear by the pair's
        cached cells, or else by a query at an earlier sample and the rate bound. Sets
        the body's joints (the caller restores them).

        Args:
            Q: The samples.
            touch_tolerance: Penetration [m] that is still touching.
            pairs: Indices into :attr:`pairs` to check (default: all).

        Returns:
            The flagged sample indices (sorted) and the number of exact queries made.
        """
        flagged: set[int] = set()
        queries = 0
        Q = np.ascontiguousarray(Q, dtype=np.float64)
        limit = self.slack - touch_tolerance
        todo = range(len(self.pairs)) if pairs is None else pairs
        for p in todo:
            starts, values, made = self._cell_runs(p, Q, limit)
            queries += made
            low = np.flatnonzero(values < limit)
            if not low.size:
                continue
            unsure = np.concatenate([np.arange(starts[r], starts[r + 1]) for r in low])
            at = 0
            while at < unsure.size:
                k = int(unsure[at])
                self.body.set_q(Q[k])
                queries += 1
                d = self.distance(p)
                if d < limit:
                    flagged.add(k)
                    after = k + 1
                else:
                    after = _covered(Q, self.rates[p], k, d - limit)
                at = int(np.searchsorted(unsure, after))
        return np.array(sorted(flagged), np.int64), queries
