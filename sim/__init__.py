"""PyBullet: worlds built from the project's URDF, validation, simulated arm and spindle."""

from sim.arm_body import ArmBody
from sim.client import BulletClient, bullet_client, direct_client
from sim.exact import ExactChecker
from sim.replay import ReplaySettings, ToolAction, ToolEvent, replay
from sim.screen import WorldScreen
from sim.sim_arm import SimArm
from sim.spindle import Fault, ScrewJoint, SpindleProgram, TighteningTrace, tighten
from sim.sweep import SweepSettings, sweep
from sim.validate import validate
from sim.verdict import Verdict, Violation, ViolationKind
from sim.world import BodySpec, World, WorldSpec
from sim.world_scene import WorldScene

__all__ = [
    "ArmBody",
    "BodySpec",
    "BulletClient",
    "ExactChecker",
    "Fault",
    "ReplaySettings",
    "ScrewJoint",
    "SimArm",
    "SpindleProgram",
    "SweepSettings",
    "TighteningTrace",
    "ToolAction",
    "ToolEvent",
    "Verdict",
    "Violation",
    "ViolationKind",
    "World",
    "WorldScene",
    "WorldScreen",
    "WorldSpec",
    "bullet_client",
    "direct_client",
    "replay",
    "sweep",
    "tighten",
    "validate",
]
