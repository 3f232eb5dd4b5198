"""A conservative clearance screen for the sweep, from the batched sphere model.

The sphere model (:class:`planners.collision.CollisionModel`) encloses every link,
tool and held part in spheres and measures them against the world's primitives, for
thousands of configurations per millisecond. Its clearance is a lower bound on the
exact one (spheres only over-cover), so a sample whose bound is comfortably positive
needs no exact query: :func:`sim.sweep.sweep` queries PyBullet only where the bound
is within ``margin`` of contact and, for the minimum clearance, in increasing order of
the bound until the bound exceeds the best exact value found.

The world becomes a scene: primitive obstacles as they are, every URDF body through
its collision primitives (:func:`planners.scene_urdf.obstacles_from_urdf`), and a held
part as an attachment of the TCP link at its grip. Pairs of links the sphere model
treats as adjacent but PyBullet checks are listed in :attr:`WorldScreen.unscreened`;
the sweep checks those exactly, where their rate bound (:class:`sim.pair_screen.PairScreen`)
cannot prove them clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from planners.collision import CollisionModel
from planners.scene import Attachment, Obstacle, Scene
from planners.scene_urdf import obstacles_from_urdf
from planners.urdf import model_dir
from sim.pair_screen import PairScreen
from sim.world import World

__all__ = ["WorldScreen"]


class WorldScreen:
    """Sphere-model clearance bounds for one arm of a world.

    Args:
        world: The world (its spec gives the geometry).
        arm_name: The arm being swept.

    Attributes:
        unscreened: Link pairs PyBullet checks for self-collision but the sphere model
            does not (sorted name pairs); the sweep checks them exactly.
        pairs: The exact check of the :attr:`unscreened` pairs.
    """

    def __init__(self, world: World, arm_name: str) -> None:
        self.world = world
        self.arm = world.arm(arm_name).arm
        self._bodies: dict[str, tuple[Obstacle, ...]] = {}
        for body in world.spec.bodies:
            path = model_dir(body.model) / f"{body.model}.urdf"
            self._bodies[body.name] = obstacles_from_urdf(path, body.pose, prefix=body.name)
        self._local: dict[str, tuple[Obstacle, ...]] = {}
        self._models: dict[tuple[tuple[str, bytes], ...], CollisionModel] = {}
        base = self._model(())
        ignored = {tuple(sorted(p)) for p in base.ignored}
        self.unscreened: frozenset[tuple[str, str]] = frozenset(
            (a, b) for a, b in ignored - set(world.adjacent[arm_name])
        )
        self.pairs = PairScreen(world.arm(arm_name), self.unscreened)

    def _part_shapes(self, part: str) -> tuple[Obstacle, ...]:
        """A part's collision primitives in its own frame."""
        if part not in self._local:
            spec = next(b for b in self.world.spec.bodies if b.name == part)
            path = model_dir(spec.model) / f"{spec.model}.urdf"
            self._local[part] = obstacles_from_urdf(path, np.eye(4), prefix=part)
        return self._local[part]

    def _model(
        self,
        held: tuple[tuple[str, NDArray[np.float64]], ...],
        moved: tuple[tuple[str, NDArray[np.float64]], ...] = (),
    ) -> CollisionModel:
        key = tuple((n, np.round(T, 9).tobytes()) for n, T in (*held, ("|", np.eye(4)), *moved))
        model = self._models.get(key)
        if model is None:
            held_names = {name for name, _ in held}
            poses = dict(moved)
            obstacles: list[Obstacle] = list(self.world.spec.obstacles)
            for name, shapes in self._bodies.items():
                if name in held_names:
                    continue
                if name in poses:  # a part put down elsewhere: its shapes at its new pose
                    T = poses[name]
                    obstacles.extend(replace(o, pose=T @ o.pose) for o in self._part_shapes(name))
                else:
                    obstacles.extend(shapes)
            attachments = tuple(
                Attachment(name, self.arm.tcp_link, grip, self._part_shapes(name))
                for name, grip in held
            )
            model = CollisionModel(self.arm, Scene(tuple(obstacles), attachments))
            self._models[key] = model
        return model

    def bounds(
        self,
        Q: NDArray[np.float64],
        held: Mapping[str, NDArray[np.float64]] | None = None,
        moved: Mapping[str, NDArray[np.float64]] | None = None,
    ) -> NDArray[np.float64]:
        """(N,) lower bounds [m] on the clearance of (N, dof) configurations.

        Args:
            Q: Configurations.
            held: Grip (``T_tcp_part``, 4x4) of each part held during these samples.
            moved: World pose of each part that was put down away from its start.
        """
        items = tuple(sorted((held or {}).items()))
        placed = tuple(sorted((moved or {}).items()))
        return self._model(items, placed).clearance(Q)
