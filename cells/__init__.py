"""The cell: cell files, tightening judgement, records, ZeroMQ streaming and control.

The command line lives in :mod:`cells.cli`; the protocol in :mod:`cells.protocol`
(specified in ``docs/protocol.md``).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are resolved on first use: importing ``cells`` (and so starting ``cellctl``)
# does not load PyBullet or ZeroMQ until something needs them.
_LAZY = {
    "ArmCore": "cells.arm_core",
    "ArmEndpoint": "cells.arm_endpoint",
    "ArmInterface": "cells.arm_interface",
    "Cell": "cells.cell_model",
    "CellController": "cells.controller",
    "CellFileError": "cells.cell_file",
    "CheckConfig": "cells.setpoint_checks",
    "ControlEndpoint": "cells.control_endpoint",
    "ControlState": "cells.control_endpoint",
    "CycleResult": "cells.cycle_results",
    "Fixture": "cells.cell_model",
    "Hole": "cells.cell_model",
    "Injection": "cells.cycle_results",
    "Judgement": "cells.tightening",
    "Mode": "cells.arm_core",
    "Part": "cells.cell_model",
    "PlanningError": "cells.program",
    "Program": "cells.program",
    "Reaction": "cells.tightening",
    "ReactionPolicy": "cells.tightening",
    "Reason": "cells.tightening",
    "RecordsError": "cells.records",
    "ResultsStore": "cells.records",
    "Robot": "cells.cell_model",
    "Screw": "cells.cell_model",
    "ScrewFeed": "cells.cell_model",
    "ScrewOrder": "cells.cell_model",
    "SecurityError": "cells.security",
    "Segment": "cells.program",
    "SetpointChecker": "cells.setpoint_checks",
    "SpeedLimits": "cells.cell_model",
    "StreamConfig": "cells.streamer",
    "StreamResult": "cells.streamer",
    "Streamer": "cells.streamer",
    "StreamerProcess": "cells.streamer",
    "TaskPlanner": "cells.tasks",
    "classify": "cells.tightening",
    "create_keys": "cells.security",
    "inspect_plots": "cells.inspection",
    "inspect_target": "cells.inspection",
    "load_cell": "cells.cell_file",
    "parse_injection": "cells.cycle_results",
    "run_cell": "cells.run_job",
}

__all__ = [
    "ArmCore",
    "ArmEndpoint",
    "ArmInterface",
    "Cell",
    "CellController",
    "CellFileError",
    "CheckConfig",
    "ControlEndpoint",
    "ControlState",
    "CycleResult",
    "Fixture",
    "Hole",
    "Injection",
    "Judgement",
    "Mode",
    "Part",
    "PlanningError",
    "Program",
    "Reaction",
    "ReactionPolicy",
    "Reason",
    "RecordsError",
    "ResultsStore",
    "Robot",
    "Screw",
    "ScrewFeed",
    "ScrewOrder",
    "SecurityError",
    "Segment",
    "SetpointChecker",
    "SpeedLimits",
    "StreamConfig",
    "StreamResult",
    "Streamer",
    "StreamerProcess",
    "TaskPlanner",
    "classify",
    "create_keys",
    "inspect_plots",
    "inspect_target",
    "load_cell",
    "parse_injection",
    "run_cell",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cells' has no attribute {name!r}")
