"""Every package's ``__all__`` is sorted and every name in it resolves."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["planners", "sim", "cells", "bench"])
def test_all_names_resolve_and_are_sorted(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names), f"{package}.__all__ is not sorted"
    for name in names:
        assert hasattr(module, name), f"{package}.__all__ names {name!r}, which does not exist"


def test_planners_imports_no_simulator_or_sockets() -> None:
    import subprocess
    import sys

    code = (
        "import sys, planners; "
        "print(sorted(m for m in ('pybullet', 'zmq', 'sim', 'cells') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
