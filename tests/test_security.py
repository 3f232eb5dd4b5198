"""CURVE keys, refusal to start insecurely, and the allowlist: an unknown key gets nothing."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import zmq
import zmq.auth
from streaming_helpers import IdealArm, endpoint_thread, short_dir, ur5e_like_limits

from cells.arm_core import ArmCore, Mode
from cells.arm_endpoint import ArmEndpoint
from cells.command_client import CommandClient
from cells.motion import quintic_move
from cells.security import (
    SecurityError,
    ServerSecurity,
    apply_client,
    check_secret_file,
    create_keys,
    is_loopback,
    key_paths,
)
from cells.streamer import StreamConfig, Streamer


def test_create_keys_writes_private_secret_files() -> None:
    paths = create_keys(short_dir() + "/k")
    for secret in (paths.server_secret, paths.client_secret):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        check_secret_file(secret)
    assert (paths.allowed / "client.key").read_bytes() == paths.client_public.read_bytes()


def test_exposed_or_missing_secret_key_refuses_to_start() -> None:
    keys = short_dir() + "/k"
    paths = create_keys(keys)
    os.chmod(paths.server_secret, 0o644)
    with zmq.Context() as ctx, pytest.raises(SecurityError, match="0644"):
        ServerSecurity(ctx, keys)
    paths.server_secret.unlink()
    with zmq.Context() as ctx, pytest.raises(SecurityError, match="not found"):
        ServerSecurity(ctx, keys)


def test_curve_is_the_default_and_plaintext_is_loopback_only() -> None:
    with zmq.Context() as ctx:
        with pytest.raises(SecurityError, match="CURVE is on by default"):
            ServerSecurity(ctx, None)
        sec = ServerSecurity(ctx, None, insecure_plaintext=True)
        with ctx.socket(zmq.ROUTER) as s:
            with pytest.raises(SecurityError, match="loopback"):
                sec.apply(s, "tcp://0.0.0.0:5555")
            sec.apply(s, "tcp://127.0.0.1:5555")
            with pytest.raises(SecurityError, match="loopback"):
                apply_client(s, "tcp://10.0.0.1:5555", None, insecure_plaintext=True)
        sec.close()


@pytest.mark.parametrize(
    ("endpoint", "loop"),
    [
        ("tcp://127.0.0.1:1", True),
        ("tcp://localhost:1", True),
        ("ipc:///tmp/x", True),
        ("inproc://x", True),
        ("tcp://0.0.0.0:1", False),
        ("tcp://*:1", False),
        ("tcp://192.168.1.2:1", False),
        ("udp://127.0.0.1:1", False),
    ],
)
def test_is_loopback(endpoint: str, loop: bool) -> None:
    assert is_loopback(endpoint) is loop


def test_unknown_client_key_gets_nothing_executed() -> None:
    """Specified: a client whose key is not in the allowlist is refused by ZAP during the
    handshake; the arm never sees a message from it (counters stay 0) and never moves."""
    d = short_dir()
    keys = d + "/k"
    create_keys(keys)
    _, rogue_secret = zmq.auth.create_certificates(d, "rogue")
    os.chmod(rogue_secret, 0o600)
    limits = ur5e_like_limits()
    q0 = np.array([0.0, -1.5, 1.0, -1.0, 0.5, 0.0])
    arm = IdealArm(limits, q0)
    core = ArmCore(arm, 1000.0)
    core.arm_motion()
    endpoint = ArmEndpoint(core, f"ipc://{d}/arm", keys_dir=keys)
    rows = quintic_move(q0, q0 + 0.3, limits, 1000.0)
    with endpoint_thread(endpoint):
        cfg = StreamConfig(
            f"ipc://{d}/arm", keys_dir=keys, client_secret=str(rogue_secret),
            handshake_timeout_s=1.0,
        )  # fmt: skip
        with Streamer(cfg) as rogue:
            res = rogue.stream(rows, limits.names)
        assert res.code.value == "ARM_UNREACHABLE" and res.sent == 0
        with CommandClient(f"ipc://{d}/arm.cmd", keys, client_secret=str(rogue_secret)) as c:
            assert c.call("estop", timeout_s=0.5) is None
        # the allowed client does get through
        with CommandClient(f"ipc://{d}/arm.cmd", keys) as c:
            reply = c.call("status", timeout_s=2.0)
            assert reply is not None and reply.ok
    assert core.counters.received == 0 and core.rejected == 0
    assert core.mode is Mode.ARMED
    assert all(np.array_equal(q, q0) for q in arm.commands)
    assert key_paths(keys).allowed.is_dir()


def test_refuses_to_start_without_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = short_dir() + "/k"
    create_keys(keys)
    monkeypatch.setattr(zmq, "has", lambda capability: False)
    with zmq.Context() as ctx, pytest.raises(SecurityError, match="without CURVE"):
        ServerSecurity(ctx, keys)
    with pytest.raises(SecurityError, match="without CURVE"):
        create_keys(short_dir() + "/k2")
