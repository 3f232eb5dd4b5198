"""A conservative clearance screen for the sweep: the sphere model and a pair screen.

The sphere model (:class:`planners.collision.CollisionModel`) encloses every link,
tool and held part in spheres. Its distance to a world body is a lower bound on the
exact one (spheres only over-cover), so a sample whose bound for a body is comfortably
positive needs no exact query against that body: :func:`sim.sweep.sweep` queries
PyBullet only where a body's bound is within a margin of contact and, for the minimum
clearance, in increasing order of the bound until it exceeds the best exact value found.
The bounds come per mover (the arm, a held part) and world body
(:func:`sim.screen_kernel.body_bounds`: spheres carried by the samples' joint products,
a held part made of boxes measured as boxes against the bodies' boxes), with the pairs
allowed to touch left out.

The world becomes a scene through :class:`sim.world_scene.WorldScene` (the one the cell's
planner uses): primitive obstacles as they are, every URDF body through its collision
primitives, and a held part as an attachment of the TCP link at its grip.

Self-collision is screened over every pair of links PyBullet checks
(:meth:`WorldScreen.self_check`): by the pair's sphere gap, or for the pairs the sphere
model leaves out (:attr:`WorldScreen.unscreened`: their spheres overlap at ``home``) by
exact distances cached per cell of the joints they depend on
(:class:`sim.pair_screen.PairScreen`), each with a bound on how fast the pair's distance
can change. The screen keeps the sweep's exact queries, caches and buffers between
sweeps of its world.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from planners.collision import CollisionModel
from planners.poe import Screws, screws_of
from planners.scene import Box, Obstacle
from sim.pair_screen import PairScreen, checked_pairs
from sim.screen_kernel import BodyPrimitives, body_bounds, chunks, compile_bodies, self_flags
from sim.sweep_queries import SweepQueries
from sim.sweep_samples import SampleBuffers
from sim.world import World
from sim.world_scene import WorldScene

__all__ = ["WorldScreen"]


@dataclass(frozen=True)
class _Compiled:
    """The kernel's view of one screen state (parts held and put down, allowed pairs)."""

    X0: NDArray[np.float64]  # (S, 4) spheres at the zero configuration
    gstart: NDArray[np.int64]
    gjoint: NDArray[np.int64]
    gball: NDArray[np.float64]
    gmover: NDArray[np.int64]
    gchunk: NDArray[np.int64]
    cstart: NDArray[np.int64]
    cball: NDArray[np.float64]
    hstart: NDArray[np.int64]  # held parts made of boxes: each group's boxes
    hpose: NDArray[np.float64]
    hhalf: NDArray[np.float64]
    prims: BodyPrimitives
    allowed: NDArray[np.bool_]


class WorldScreen:
    """Sphere-model clearance bounds for one arm of a world.

    Args:
        world: The world (its spec gives the geometry).
        arm_name: The arm being swept.

    Attributes:
        bodies: World body names, the columns of :meth:`body_bounds`.
        screws: The arm's screws (the sweep's kinematics).
        pairs: The self-collision screen: every pair of links PyBullet checks.
        buffers: Memory for a sweep's samples, kept from one sweep to the next.
        unscreened: Link pairs PyBullet checks for self-collision but the sphere model
            does not (sorted name pairs).
    """

    def __init__(self, world: World, arm_name: str) -> None:
        self.world = world
        self.arm = world.arm(arm_name).arm
        self.scene = WorldScene(world.spec, self.arm)  # the sphere models, by held parts
        base = self._model(())
        ignored = {tuple(sorted(p)) for p in base.ignored}
        self.unscreened: frozenset[tuple[str, str]] = frozenset(
            (a, b) for a, b in ignored - set(world.adjacent[arm_name])
        )
        self.pairs = PairScreen(world.arm(arm_name), checked_pairs(world, arm_name))
        self.screws: Screws = screws_of(self.arm)
        self.arm_name = arm_name
        self.bodies: tuple[str, ...] = tuple(world.bodies)
        self._compiled: dict[tuple[object, ...], _Compiled] = {}
        # Self pairs: by their spheres where both links have spheres that do not overlap
        # at home, else by exact queries.
        index = {name: g for g, (name, _, _) in enumerate(base.sphere_groups())}
        by_spheres, exact = [], []
        for p, (a, b) in enumerate(self.pairs.pairs):
            if a in index and b in index and tuple(sorted((a, b))) not in self.unscreened:
                by_spheres.append((p, index[a], index[b]))
            else:
                exact.append(p)
        self._sphere_pairs = np.array([(g, h) for _, g, h in by_spheres], np.int64).reshape(-1, 2)
        self._sphere_rates = np.ascontiguousarray(
            self.pairs.rates[[p for p, _, _ in by_spheres]].reshape(-1, self.arm.dof)
        )
        self._exact_pairs = exact
        self._queries: dict[tuple[object, ...], SweepQueries] = {}
        self.buffers = SampleBuffers(self.arm.dof)  # the sweep's samples, between sweeps
        self._work = (np.empty((0, 0, 3)), np.empty((0, 0)))  # body_bounds' work space

    def _model(
        self,
        held: tuple[tuple[str, NDArray[np.float64]], ...],
        moved: tuple[tuple[str, NDArray[np.float64]], ...] = (),
    ) -> CollisionModel:
        return self.scene.model(dict(held), dict(moved))

    def _compile(
        self,
        held: tuple[tuple[str, NDArray[np.float64]], ...],
        moved: tuple[tuple[str, NDArray[np.float64]], ...],
        allowed: frozenset[tuple[str, str]],
    ) -> _Compiled:
        model = self._model(held, moved)
        key = (id(model), allowed)
        out = self._compiled.get(key)
        if out is not None:
            return out
        primitive_names = {o.name for o in self.world.spec.obstacles}
        shapes: dict[str, list[Obstacle]] = {name: [] for name in self.bodies}
        for o in model.scene.obstacles:
            body = o.name if o.name in primitive_names else o.name.split("/")[0]
            shapes[body].append(o)
        movers = [self.arm_name, *(name for name, _ in held)]
        groups = model.sphere_groups()
        gstart = np.array([0] + [stop for _, _, stop in groups], np.int64)
        dof = self.arm.dof
        X0 = model.spheres(np.zeros((1, dof)))[0]
        # the last joint that moves a group carries it (a serial chain)
        moves = (
            np.linalg.norm(model.spheres(np.eye(dof) * 0.7)[:, :, :3] - X0[None, :, :3], axis=2)
            > 1e-12
        )
        gjoint = np.full(len(groups), -1, np.int64)
        gball = np.zeros((len(groups), 4))
        for g, (_, lo, hi) in enumerate(groups):
            moving = np.flatnonzero(moves[:, lo:hi].any(axis=1))
            gjoint[g] = moving.max() if moving.size else -1
            C = X0[lo:hi, :3]
            c = (C.min(axis=0) + C.max(axis=0)) / 2
            gball[g, :3] = c
            gball[g, 3] = np.max(np.linalg.norm(C - c, axis=1) + X0[lo:hi, 3]) * (1 + 1e-9) + 1e-12
        gmover = np.array(
            [movers.index(name) if name in movers[1:] else 0 for name, _, _ in groups], np.int64
        )
        mask = np.array(
            [[m == b or tuple(sorted((m, b))) in allowed for b in self.bodies] for m in movers],
            dtype=np.bool_,
        ).reshape(len(movers), len(self.bodies))
        order, cstart, cball, gchunk = chunks(X0, gstart)
        X0 = np.ascontiguousarray(X0[order])  # each chunk's spheres contiguous
        # held parts made only of boxes are also measured as boxes
        grips = dict(held)
        counts = []
        hT0: list[NDArray[np.float64]] = []
        hhalf: list[NDArray[np.float64]] = []
        for name, _, _ in groups:
            own = self.scene.part_shapes(name) if name in grips else ()
            if own and all(isinstance(o, Box) for o in own):
                for o in own:
                    assert isinstance(o, Box)
                    hT0.append((self.screws.T0_tcp @ grips[name] @ o.pose)[:3])
                    hhalf.append(np.asarray(o.half_extents))
                counts.append(len(own))
            else:
                counts.append(0)
        hstart = np.cumsum([0, *counts]).astype(np.int64)
        out = _Compiled(
            X0, gstart, gjoint, gball, gmover, gchunk, cstart, cball, hstart,
            np.array(hT0).reshape(-1, 3, 4), np.array(hhalf).reshape(-1, 3),
            compile_bodies([shapes[name] for name in self.bodies]), mask,
        )  # fmt: skip
        self._compiled[key] = out
        return out

    def body_bounds(
        self,
        P: NDArray[np.float64],
        Q: NDArray[np.float64],
        held: Mapping[str, NDArray[np.float64]] | None = None,
        moved: Mapping[str, NDArray[np.float64]] | None = None,
        *,
        allowed: Iterable[tuple[str, str]] = (),
        cap: float = 0.1,
    ) -> NDArray[np.float64]:
        """(N, movers, B) lower bounds [m] on each world body's distance to each mover.

        The movers are the arm and the held parts in name order; the columns follow
        :attr:`bodies`. Pairs allowed to touch, a held part against the arm and a body
        with nothing near count as ``cap``.

        Args:
            P: (N, dof, 3, 4) joint products of the samples
                (:func:`planners.poe.joint_products` with :attr:`screws`).
            Q: (N, dof) the samples' joint positions.
            held: Grip (``T_tcp_part``, 4x4) of each part held during these samples.
            moved: World pose of each part that was put down away from its start.
            allowed: Pairs of body names (the arm's name for the arm) never checked.
            cap: Bounds above this [m] are reported as ``cap``.
        """
        items = tuple(sorted((held or {}).items()))
        placed = tuple(sorted((moved or {}).items()))
        pairs = frozenset(tuple(sorted(p)) for p in allowed)
        c = self._compile(items, placed, pairs)  # type: ignore[arg-type]
        p = c.prims
        G = len(c.gjoint)
        if self._work[0].shape[0] < len(Q) or self._work[0].shape[1] < G:
            size = max(len(Q), self._work[0].shape[0])
            self._work = (np.empty((size, G + 2, 3)), np.empty((G + 2, size)))
        C, travel = self._work
        return body_bounds(
            P, Q, self.screws.revolute, c.X0, c.gjoint, c.gball, c.gmover, c.gchunk, c.cstart,
            c.cball, c.hstart, c.hpose, c.hhalf, p.kind, p.inv, p.param, p.pball, p.start,
            p.ball, c.allowed, cap, cap + 0.1, C, travel,
        )  # fmt: skip

    def self_check(
        self,
        P: NDArray[np.float64],
        Q: NDArray[np.float64],
        touch_tolerance: float,
        margin: float,
    ) -> tuple[NDArray[np.bool_], int, int]:
        """(N,) samples where two links PyBullet checks may touch, for the contact query.

        Pairs the sphere model covers are proved clear by their spheres' gap less
        ``margin`` (PyBullet's geometry may stand that far outside them) and the pair's
        rate bound; the others by exact distances (:meth:`PairScreen.check`). Sets the
        arm's joints (the caller restores them).

        Args:
            P: (N, dof, 3, 4) joint products of the samples; Q: (N, dof) positions.
            touch_tolerance: Penetration [m] that is still touching.
            margin: How far [m] PyBullet's geometry may stand outside the spheres.

        Returns:
            The flags, the number of sphere gaps computed and of exact queries made.
        """
        c = self._compile((), (), frozenset())
        flagged = np.zeros(len(Q), np.bool_)
        limit = margin + self.pairs.slack - touch_tolerance
        gaps = self_flags(
            P, Q, c.X0, c.gjoint, c.gball, c.gchunk, c.cstart, c.cball, self._sphere_pairs,
            self._sphere_rates, limit, flagged,
        )  # fmt: skip
        exact, queries = self.pairs.check(Q, touch_tolerance, self._exact_pairs)
        flagged[exact] = True
        return flagged, gaps, queries

    def queries(
        self, parts: Sequence[str], allowed: Iterable[tuple[str, str]], touch_tolerance: float
    ) -> SweepQueries:
        """The sweep's exact queries for this arm, kept between sweeps and read afresh.

        Args:
            parts: Bodies the trajectory picks up or puts down.
            allowed: Pairs of body names that may touch.
            touch_tolerance: Penetration [m] up to which two bodies only touch.
        """
        pairs = frozenset((min(a, b), max(a, b)) for a, b in allowed)
        key = (tuple(dict.fromkeys(parts)), pairs, touch_tolerance)
        q = self._queries.get(key)
        if q is None:
            body = self.world.arm(self.arm_name)
            links = [(body.link_index(a), body.link_index(b)) for a, b in self.pairs.pairs]
            q = SweepQueries(self.world, self.arm_name, key[0], set(pairs), links, touch_tolerance)
            self._queries[key] = q
        else:
            q.refresh()
        return q
