"""Pure-math planning: robot models, kinematics, IK (no pybullet, no pyzmq)."""

from planners.arm import Arm, Tool, arm_names, load_arm, load_tool, tool_names
from planners.chain import KinematicChain
from planners.errors import InputError, ModelError, RobotCellError, UnknownNameError
from planners.ik import IKResult, IKStatus, pose_error, solve_ik, solve_ik_batch
from planners.limits import JointLimits
from planners.urdf import model_dir, model_names, resolve_urdf, urdf_root

__all__ = [
    "Arm",
    "IKResult",
    "IKStatus",
    "InputError",
    "JointLimits",
    "KinematicChain",
    "ModelError",
    "RobotCellError",
    "Tool",
    "UnknownNameError",
    "arm_names",
    "load_arm",
    "load_tool",
    "model_dir",
    "model_names",
    "pose_error",
    "resolve_urdf",
    "solve_ik",
    "solve_ik_batch",
    "tool_names",
    "urdf_root",
]
