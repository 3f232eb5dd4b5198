"""Benchmark: setpoint streaming over TCP loopback with CURVE, streamer and arm in two processes.

The arm endpoint (simulated UR5e, PyBullet) runs in one process, the streamer in
another; both use CURVE with the ZAP allowlist, as in production. The streamer sends
back-and-forth quintic moves for ``seconds``; the arm time-stamps every setpoint it
receives. Reported: how the stream ended (``outcome``: ``OK`` when the whole motion ran,
else the streamer's end code, e.g. ``WATCHDOG`` or ``ARM_LOST`` for a run stopped early),
sent, received, lost (sent - received), late (latency over one period), latency
median/p99/max and inter-arrival jitter p99/max [us].
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import tempfile
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from cells.arm_endpoint import serve_arm
from cells.command_client import CommandClient
from cells.motion import back_and_forth
from cells.protocol import Code
from cells.quiet import import_pybullet_quietly
from cells.security import create_keys
from cells.streamer import StreamConfig, StreamerProcess
from planners.errors import RobotCellError

__all__ = ["print_table", "run"]


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise RobotCellError("no free pair of TCP ports on 127.0.0.1")


def _serve_arm_quietly(*args: Any, **kwargs: Any) -> None:
    """:func:`~cells.arm_endpoint.serve_arm` in the arm's process, PyBullet imported
    without its build banner (as ``cellctl`` does for itself)."""
    import_pybullet_quietly()
    serve_arm(*args, **kwargs)


def run(
    rate_hz: float = 1000.0,
    seconds: float = 20.0,
    progress: Console | None = None,
    realtime_priority: int = 0,
    watchdog_s: float = 0.020,
) -> dict:
    """Stream for ``seconds`` at ``rate_hz`` and measure; see the module docstring.

    Args:
        rate_hz: Setpoint rate [Hz].
        seconds: Streaming time [s].
        progress: Where to print progress.
        realtime_priority: SCHED_FIFO priority of the arm and streamer processes
            (0: normal scheduling).
        watchdog_s: The arm's watchdog [s]; a longer stall stops the motion and the run.
            The streamer's arm-lost timeout is the larger of 50 ms and this.

    Returns:
        ``{"rate_hz", "seconds", "outcome", "sent", "received", "lost", "late",
        "latency_us": {"median", "p99", "max"}, "jitter_us": {"p99", "max"}}``;
        ``outcome`` is the stream's end code (``"OK"``: completed). ``lost`` counts only
        setpoints sent and not received: a run stopped early has few sent and may show
        ``lost: 0``, its ``outcome`` says so.
    """
    from planners.arm import load_arm

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="rc-bench-") as tmp:
        keys = f"{tmp}/keys"
        create_keys(keys)
        port = _free_port_pair()
        bind = f"tcp://127.0.0.1:{port}"
        cmd_ep = f"tcp://127.0.0.1:{port + 1}"
        arm_proc = ctx.Process(
            target=_serve_arm_quietly,
            args=("ur5e", bind, rate_hz, keys),
            kwargs={
                "realtime_priority": realtime_priority,
                "watchdog_s": watchdog_s,
                "exit_with_parent": True,
            },
            daemon=True,
        )
        arm_proc.start()
        client = CommandClient(cmd_ep, keys)
        try:
            reply = None
            end = time.monotonic() + 60
            while reply is None and time.monotonic() < end and arm_proc.is_alive():
                reply = client.call("arm", timeout_s=0.5)
            if reply is None or not reply.ok:
                raise RobotCellError(f"arm endpoint did not arm: {reply}")
            arm = load_arm("ur5e", "screwdriver")
            q0 = np.asarray(reply.data["q"], dtype=np.float64)
            rows = back_and_forth(q0, 0.4, arm.limits, rate_hz, seconds)
            config = StreamConfig(
                bind,
                rate_hz,
                keys_dir=keys,
                realtime_priority=realtime_priority,
                state_timeout_s=max(0.050, watchdog_s),
            )
            if progress is not None:
                progress.print(
                    f"streaming {rows.shape[0]} setpoints at {rate_hz:g} Hz "
                    f"({rows.shape[0] / rate_hz:.1f} s) over {bind} with CURVE"
                )
            t_start = time.monotonic()
            with StreamerProcess(config, rows, arm.joint_names) as streamer:
                last_print = t_start
                while streamer.poll(0.2) is None:
                    if not streamer.process.is_alive():
                        streamer.poll(0.2)
                        break
                    if progress is not None and time.monotonic() - last_print > 10:
                        last_print = time.monotonic()
                        sent = max(
                            (e.get("sent", 0) for e in streamer.events if "sent" in e), default=0
                        )
                        progress.print(f"  {time.monotonic() - t_start:6.0f} s: {sent} sent")
                result = streamer.result or {"code": str(Code.INTERNAL), "detail": "no result"}
            stats = client.call("stats", timeout_s=5.0)
            client.call("shutdown", timeout_s=1.0)
        finally:
            client.close()
            arm_proc.join(5)
            if arm_proc.is_alive():
                arm_proc.kill()
    if stats is None:
        raise RobotCellError("arm endpoint did not report its statistics")
    s = stats.data
    sent = int(result.get("sent", 0))
    received = int(s["received"])
    if progress is not None:
        progress.print(
            f"stream outcome: {result.get('code')} {result.get('detail')}; arm: longest tick "
            f"{s['max_tick_us']:.0f} us, longest gap between ticks {s['max_tick_gap_us']:.0f} us; "
            f"CPU: arm {100 * s['cpu_s'] / max(s['wall_s'], 1e-9):.0f} % of a core, "
            f"streamer {100 * result.get('cpu_s', 0.0) / max(sent / rate_hz, 1e-9):.0f} %"
        )
    return {
        "rate_hz": float(rate_hz),
        "seconds": float(sent / rate_hz),
        "outcome": str(result.get("code", Code.INTERNAL)),
        "sent": sent,
        "received": received,
        "lost": max(0, sent - received),
        "late": int(s["late"]),
        "latency_us": {
            "median": round(float(s["latency_median_us"]), 1),
            "p99": round(float(s["latency_p99_us"]), 1),
            "max": round(float(s["latency_max_us"]), 1),
        },
        "jitter_us": {
            "p99": round(float(s["jitter_p99_us"]), 1),
            "max": round(float(s["jitter_max_us"]), 1),
        },
    }


def print_table(console: Console, result: dict[str, Any]) -> None:
    """One row per run: counts, latency and jitter in microseconds."""
    table = Table(title="Setpoint streaming, TCP loopback, CURVE, two processes")
    for col in (
        "rate [Hz]", "seconds", "outcome", "sent", "received", "lost", "late (> period)",
        "latency median [us]", "latency p99 [us]", "latency max [us]",
        "jitter p99 [us]", "jitter max [us]",
    ):  # fmt: skip
        table.add_column(col, justify="right")
    lat, jit = result["latency_us"], result["jitter_us"]
    table.add_row(
        f"{result['rate_hz']:g}", f"{result['seconds']:.1f}",
        str(result.get("outcome", "?")), str(result["sent"]),
        str(result["received"]), str(result["lost"]), str(result["late"]),
        f"{lat['median']:.0f}", f"{lat['p99']:.0f}", f"{lat['max']:.0f}",
        f"{jit['p99']:.0f}", f"{jit['max']:.0f}",
    )  # fmt: skip
    console.print(table)
