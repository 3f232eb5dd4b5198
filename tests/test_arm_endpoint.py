"""The arm endpoint over real sockets: fuzzed stream and command frames, commands, stats."""

from __future__ import annotations

import time

import msgpack
import numpy as np
import zmq
from streaming_helpers import IdealArm, endpoint_thread, hello_frames, short_dir, ur5e_like_limits

from cells.arm_core import ArmCore, Mode
from cells.arm_endpoint import ArmEndpoint, LatencyLog, command_endpoint_for
from cells.command_client import CommandClient
from cells.protocol import MAGIC, Code, Reply, decode_reply, decode_stream

LIMITS = ur5e_like_limits()
Q0 = np.array([0.0, -1.5, 1.0, -1.0, 0.5, 0.0])


def test_command_endpoint_default() -> None:
    assert command_endpoint_for("tcp://127.0.0.1:5555") == "tcp://127.0.0.1:5556"
    assert command_endpoint_for("ipc:///tmp/a") == "ipc:///tmp/a.cmd"


def test_latency_log_summary() -> None:
    log = LatencyLog()
    for k in range(100):
        log.add(k * 1_000_000 + 100_000 + (5_000_000 if k == 50 else 0), k * 1_000_000)
    s = log.summary(1_000_000)
    assert s["received"] == 100 and s["late"] == 1
    assert s["latency_median_us"] == 100.0 and s["latency_max_us"] == 5100.0


def test_fuzzed_frames_over_real_sockets_execute_nothing() -> None:
    """2,000 hostile stream frames from the session's own peer and 500 command frames:
    the endpoint keeps answering, the arm never leaves its held position."""
    d = short_dir()
    arm = IdealArm(LIMITS, Q0)
    core = ArmCore(arm, 1000.0)
    core.arm_motion()
    ep = f"ipc://{d}/arm"
    endpoint = ArmEndpoint(core, ep, insecure_plaintext=True)
    rng = np.random.default_rng(5)
    with endpoint_thread(endpoint), zmq.Context() as ctx:
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect(ep)
        s.send(hello_frames(9, LIMITS.names)[0])
        assert s.poll(5000)
        welcome = decode_stream([s.recv()])
        assert getattr(welcome, "code", None) is Code.OK
        for i in range(2000):
            body = rng.bytes(int(rng.integers(0, 120)))
            if i % 2:
                body = msgpack.packb([MAGIC, 1, 0, "sp", 9])[:-1] + body
            if i % 97 == 0:
                s.send_multipart([body, body])
            else:
                s.send(body)
        c = ctx.socket(zmq.DEALER)
        c.linger = 0
        c.connect(ep + ".cmd")
        # In batches of 50 (the command socket's high-water mark is 100): a client that never
        # reads its replies loses them by design (the arm never blocks on a slow peer).
        replies = 0
        for _ in range(10):
            for _ in range(50):
                c.send_multipart([b"", rng.bytes(int(rng.integers(0, 80)))])
            expected = replies + 50
            end = time.monotonic() + 10
            while replies < expected and time.monotonic() < end:
                if c.poll(100):
                    r = decode_reply(c.recv_multipart()[-1:])
                    assert isinstance(r, Reply) and not r.ok
                    replies += 1
        assert replies == 500
        with CommandClient(ep + ".cmd", insecure_plaintext=True) as client:
            end = time.monotonic() + 10
            while core.counters.received + core.rejected < 1000 and time.monotonic() < end:
                time.sleep(0.05)
            status = client.call("status", timeout_s=2.0)
            assert status is not None and status.ok
            assert client.call("bogus").code is Code.UNKNOWN_COMMAND  # type: ignore[union-attr]
            assert client.call("release").code is Code.BAD_STATE  # type: ignore[union-attr]
            assert client.call("estop").ok  # type: ignore[union-attr]
            assert client.call("release").ok  # type: ignore[union-attr]
            assert client.call("reset").ok  # type: ignore[union-attr]
            assert client.call("arm").ok  # type: ignore[union-attr]
            stats = client.call("stats")
            assert stats is not None and "latency_p99_us" in stats.data
        s.close()
        c.close()
    assert core.rejected >= 1000
    assert core.counters.accepted == 0
    assert core.mode is Mode.ARMED
    assert all(np.array_equal(q, Q0) for q in arm.commands)
    assert arm.closed


def test_rejected_command_replies_echo_the_request_id() -> None:
    """docs/protocol.md §6: a wrong version or ``args`` that is not a map is answered with
    the request's own id (over the arm's real command socket)."""
    d = short_dir()
    core = ArmCore(IdealArm(LIMITS, Q0), 1000.0)
    ep = f"ipc://{d}/arm"
    endpoint = ArmEndpoint(core, ep, insecure_plaintext=True)
    with endpoint_thread(endpoint), zmq.Context() as ctx:
        c = ctx.socket(zmq.DEALER)
        c.linger = 0
        c.connect(ep + ".cmd")
        for request, code in (
            ({"magic": MAGIC, "v": [3, 0], "id": 77, "cmd": "status"}, Code.BAD_VERSION),
            ({"magic": MAGIC, "v": [1, 0], "id": 78, "cmd": "arm", "args": "x"}, Code.BAD_MESSAGE),
        ):
            c.send_multipart([b"", msgpack.packb(request)])
            assert c.poll(5000)
            reply = decode_reply(c.recv_multipart()[-1:])
            assert isinstance(reply, Reply) and reply.code is code, reply
            assert reply.id == request["id"]
        c.close()
    assert core.mode is Mode.DISARMED  # the rejected "arm" did nothing
