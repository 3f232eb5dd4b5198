"""Helpers shared by the streaming tests: an ideal arm, a simulated clock, setpoint frames."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from cells.protocol import Hello, Setpoint, encode_hello, encode_setpoint
from planners.limits import JointLimits

PERIOD_NS = 1_000_000


def ur5e_like_limits() -> JointLimits:
    """UR5e limits without loading the model (fast)."""
    n = 6
    return JointLimits(
        names=tuple(f"j{i}" for i in range(n)),
        lower=np.full(n, -2 * np.pi),
        upper=np.full(n, 2 * np.pi),
        velocity=np.full(n, np.pi),
        acceleration=np.array([8.0, 8, 8, 12, 12, 12]),
        jerk=np.array([100.0, 100, 100, 150, 150, 150]),
        effort=np.array([150.0, 150, 150, 28, 28, 28]),
    )


class IdealArm:
    """An arm that is exactly where it was commanded; records every command."""

    def __init__(self, limits: JointLimits, q0: npt.ArrayLike) -> None:
        self._limits = limits
        self.q = np.array(q0, dtype=np.float64)
        self.qd = np.zeros_like(self.q)
        self.commands: list[NDArray[np.float64]] = []
        self.estops = 0
        self.closed = False

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._limits.names

    @property
    def limits(self) -> JointLimits:
        return self._limits

    def read(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self.q.copy(), self.qd.copy()

    def command(self, q: npt.ArrayLike, qd: npt.ArrayLike) -> None:
        self.q = np.array(q, dtype=np.float64)
        self.qd = np.array(qd, dtype=np.float64)
        self.commands.append(self.q.copy())

    def emergency_stop(self) -> None:
        self.estops += 1
        self.qd = np.zeros_like(self.q)
        self.commands.append(self.q.copy())

    def close(self) -> None:
        self.closed = True


def hello_frames(session: int, names: tuple[str, ...], rate_hz: float = 1000.0) -> list[bytes]:
    return [encode_hello(Hello(session, names, rate_hz, 0))]


def sp_frames(
    session: int, seq: int, t_apply_ns: int, q: npt.ArrayLike, final: bool = False
) -> list[bytes]:
    qq = tuple(float(v) for v in np.asarray(q, dtype=np.float64))
    return [
        encode_setpoint(Setpoint(session, seq, max(0, t_apply_ns - 1000), t_apply_ns, qq, final))
    ]


def executed_derivatives(
    commands: list[NDArray[np.float64]], dt: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Velocity, acceleration and jerk of the executed commands (finite differences)."""
    q = np.asarray(commands)
    v = np.diff(q, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    j = np.diff(a, axis=0) / dt
    return v, a, j


# ---------------------------------------------------------------------- real sockets
import multiprocessing as mp  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from cells.command_client import CommandClient  # noqa: E402


def short_dir() -> str:
    """A short temporary folder (ipc:// paths are limited to about 100 characters)."""
    return tempfile.mkdtemp(prefix="rc", dir="/tmp")


@contextmanager
def arm_process(
    bind: str,
    keys: str | None,
    robot: str = "ur5e",
    watchdog_s: float = 0.020,
    start: str | None = None,
) -> Iterator[tuple[mp.process.BaseProcess, CommandClient]]:
    """A simulated arm endpoint in its own (spawned) process, armed (at the named
    configuration ``start``, default ``home``)."""
    from cells.arm_endpoint import command_endpoint_for, serve_arm

    ctx = mp.get_context("spawn")
    proc = ctx.Process(
        target=serve_arm,
        args=(robot, bind, 1000.0, keys, keys is None, watchdog_s),
        kwargs={"exit_with_parent": True, "start": start},
        daemon=True,
    )
    proc.start()
    client = CommandClient(command_endpoint_for(bind), keys, keys is None)
    try:
        reply = None
        end = time.monotonic() + 60
        while reply is None and time.monotonic() < end and proc.is_alive():
            reply = client.call("arm", timeout_s=0.5)
        assert reply is not None and reply.ok, reply
        yield proc, client
    finally:
        if proc.is_alive():
            client.call("shutdown", timeout_s=0.5)
            proc.join(3)
        if proc.is_alive():
            proc.kill()
            proc.join(3)
        client.close()


@contextmanager
def endpoint_thread(endpoint: object) -> Iterator[None]:
    """Serve an ArmEndpoint or ControlEndpoint in a thread until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=endpoint.serve, kwargs={"should_stop": stop.is_set})  # type: ignore[attr-defined]
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        endpoint.close()  # type: ignore[attr-defined]
