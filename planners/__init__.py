"""Pure-math planning: robot models, kinematics, IK, collision model, planning, timing.

Nothing here imports pybullet or pyzmq.
"""

from planners.arm import Arm, Tool, arm_names, load_arm, load_tool, tool_names
from planners.cartesian import (
    CartesianResult,
    CartesianStatus,
    cartesian_along_tool,
    cartesian_line,
    line_poses,
)
from planners.chain import KinematicChain
from planners.collision import CollisionModel, Contact
from planners.errors import InputError, ModelError, RobotCellError, UnknownNameError
from planners.ik import IKResult, IKStatus, pose_error, solve_ik, solve_ik_batch
from planners.limit_check import LimitKind, LimitReport, check_limits
from planners.limits import JointLimits
from planners.plan import plan
from planners.plan_result import PlanResult, PlanStats, PlanStatus, path_length
from planners.rrt import rrt_connect
from planners.scene import (
    Attachment,
    Box,
    Capsule,
    Cylinder,
    Obstacle,
    Scene,
    Sphere,
    obstacle_from_dict,
)
from planners.scene_urdf import obstacles_from_urdf, scene_from_urdf
from planners.shortcut import shortcut
from planners.space import ConfigurationSpace, JointSpace, collision_space
from planners.stop import StopProfile, controlled_stop
from planners.timing import TimingMethod, TimingResult, TimingStats, TimingStatus, time_parameterize
from planners.trajectory import Trajectory
from planners.urdf import model_dir, model_names, resolve_urdf, urdf_root

__all__ = [
    "Arm",
    "Attachment",
    "Box",
    "Capsule",
    "CartesianResult",
    "CartesianStatus",
    "CollisionModel",
    "ConfigurationSpace",
    "Contact",
    "Cylinder",
    "IKResult",
    "IKStatus",
    "InputError",
    "JointLimits",
    "JointSpace",
    "KinematicChain",
    "LimitKind",
    "LimitReport",
    "ModelError",
    "Obstacle",
    "PlanResult",
    "PlanStats",
    "PlanStatus",
    "RobotCellError",
    "Scene",
    "Sphere",
    "StopProfile",
    "TimingMethod",
    "TimingResult",
    "TimingStats",
    "TimingStatus",
    "Tool",
    "Trajectory",
    "UnknownNameError",
    "arm_names",
    "cartesian_along_tool",
    "cartesian_line",
    "check_limits",
    "collision_space",
    "controlled_stop",
    "line_poses",
    "load_arm",
    "load_tool",
    "model_dir",
    "model_names",
    "obstacle_from_dict",
    "obstacles_from_urdf",
    "path_length",
    "plan",
    "pose_error",
    "resolve_urdf",
    "rrt_connect",
    "scene_from_urdf",
    "shortcut",
    "solve_ik",
    "solve_ik_batch",
    "time_parameterize",
    "tool_names",
    "urdf_root",
]
