"""Shared fixtures: models, a seeded generator, a PyBullet client."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from planners import Arm, load_arm
from sim.client import BulletClient, bullet_client

# The arms the reference cells use, each with the tool it carries there.
ARM_TOOLS = (("ur5e", "screwdriver"), ("panda", "franka_hand"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session", params=ARM_TOOLS, ids=[a for a, _ in ARM_TOOLS])
def arm(request: pytest.FixtureRequest) -> Arm:
    name, tool = request.param
    return load_arm(name, tool)


@pytest.fixture
def client() -> Iterator[BulletClient]:
    with bullet_client() as c:
        yield c
