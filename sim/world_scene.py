"""A world as the planners' sphere-model scene: fixtures, parts where they are, held parts.

A :class:`~sim.world.WorldSpec` names URDF bodies; the batched collision model
(:class:`planners.collision.CollisionModel`) wants primitives. :class:`WorldScene` turns
every body into its collision primitives once (:func:`planners.scene_urdf.obstacles_from_urdf`)
and builds, on demand and cached, the model of one arm with some parts held at the TCP
(attachments at their grips) and some parts put down away from their start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from planners.arm import Arm
from planners.collision import CollisionModel
from planners.errors import UnknownNameError
from planners.scene import Attachment, Obstacle, Scene
from planners.scene_urdf import obstacles_from_urdf
from planners.urdf import model_dir
from sim.world import WorldSpec

__all__ = ["WorldScene"]

Poses = Mapping[str, NDArray[np.float64]]


class WorldScene:
    """Sphere models of one arm in a world, by held and moved parts.

    Args:
        spec: The world.
        arm: The arm (with its tool).
        padding: Added to every distance [m] (planning keeps this far from contact).
    """

    def __init__(self, spec: WorldSpec, arm: Arm, padding: float = 0.0) -> None:
        self.spec = spec
        self.arm = arm
        self.padding = float(padding)
        self._bodies: dict[str, tuple[Obstacle, ...]] = {}
        self._models: dict[tuple[object, ...], CollisionModel] = {}
        for body in spec.bodies:
            path = model_dir(body.model) / f"{body.model}.urdf"
            self._bodies[body.name] = obstacles_from_urdf(path, body.pose, prefix=body.name)
        self._local: dict[str, tuple[Obstacle, ...]] = {}

    def part_shapes(self, part: str) -> tuple[Obstacle, ...]:
        """A body's collision primitives in its own frame."""
        if part not in self._local:
            spec = next((b for b in self.spec.bodies if b.name == part), None)
            if spec is None:
                raise UnknownNameError("body", part, [b.name for b in self.spec.bodies])
            path = model_dir(spec.model) / f"{spec.model}.urdf"
            self._local[part] = obstacles_from_urdf(path, np.eye(4), prefix=part)
        return self._local[part]

    def model(self, held: Poses | None = None, moved: Poses | None = None) -> CollisionModel:
        """The arm's model with ``held`` parts at their grips and ``moved`` parts placed.

        Args:
            held: Grip (``T_tcp_part``, 4x4) of each part at the TCP.
            moved: World pose of each part put down away from its start.
        """
        h = tuple(sorted((held or {}).items()))
        m = tuple(sorted((moved or {}).items()))
        key = tuple((n, np.round(T, 9).tobytes()) for n, T in (*h, ("|", np.eye(4)), *m))
        model = self._models.get(key)
        if model is None:
            held_names = {name for name, _ in h}
            poses = dict(m)
            obstacles: list[Obstacle] = list(self.spec.obstacles)
            for name, shapes in self._bodies.items():
                if name in held_names:
                    continue
                if name in poses:
                    T = poses[name]
                    obstacles.extend(replace(o, pose=T @ o.pose) for o in self.part_shapes(name))
                else:
                    obstacles.extend(shapes)
            attachments = tuple(
                Attachment(name, self.arm.tcp_link, grip, self.part_shapes(name))
                for name, grip in h
            )
            scene = Scene(tuple(obstacles), attachments, padding=self.padding)
            model = CollisionModel(self.arm, scene)
            self._models[key] = model
        return model
