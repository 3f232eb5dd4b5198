"""The wire protocol: round trips, every rejection, and decoder fuzzing (no exception ever)."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cells.protocol import (
    MAGIC,
    MAX_COMMAND_BYTES,
    MAX_STREAM_BYTES,
    Abort,
    Bye,
    Code,
    Counters,
    Hello,
    Rejection,
    Reply,
    Request,
    Setpoint,
    State,
    Welcome,
    decode_reply,
    decode_request,
    decode_stream,
    encode_abort,
    encode_bye,
    encode_hello,
    encode_reply,
    encode_request,
    encode_setpoint,
    encode_state,
    encode_welcome,
)
from planners.errors import InputError

Q = (0.1, -1.5, 1.0, -1.0, 0.5, 0.0)


@pytest.mark.parametrize(
    ("msg", "encode"),
    [
        (Hello(5, ("a", "b"), 1000.0, 123), encode_hello),
        (Welcome(5, Code.OK, 10, 123, "ARMED", Q), encode_welcome),
        (Setpoint(5, 9, 100, 200, Q, True), encode_setpoint),
        (Setpoint(5, 2**64 - 1, 100, 2**63 - 1, Q, False), encode_setpoint),
        (Abort(5, 77), encode_abort),
        (Bye(5), encode_bye),
        (
            State(5, 3, 99, "ACTIVE", Code.WATCHDOG, 8, Q, Q, Counters(1, 2, 3, 4, 5, 6)),
            encode_state,
        ),
    ],
)
def test_stream_round_trip(msg: object, encode: object) -> None:
    frame = encode(msg)  # type: ignore[operator]
    assert len(frame) <= MAX_STREAM_BYTES
    assert decode_stream([frame]) == msg


def test_setpoint_layout_is_the_documented_array() -> None:
    frame = encode_setpoint(Setpoint(5, 9, 100, 200, (1.0, 2.0), True))
    assert msgpack.unpackb(frame) == [MAGIC, 1, 0, "sp", 5, 9, 100, 200, [1.0, 2.0], 1]


def test_command_round_trip() -> None:
    req = Request(3, "run", {"trajectory": "/tmp/x.npz", "rate_hz": 500.0})
    assert decode_request([encode_request(req)]) == req
    rep = Reply(3, Code.NOT_AVAILABLE, "later", {"state": "IDLE"})
    out = decode_reply([encode_reply(rep)])
    assert out == rep and isinstance(out, Reply) and not out.ok


def header(*rest: object) -> bytes:
    return msgpack.packb([MAGIC, 1, 0, *rest])


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([], Code.BAD_FRAME),
        ([b"a", b"b"], Code.BAD_FRAME),
        ([b"\xc1"], Code.BAD_FRAME),
        ([b"\x00" * (MAX_STREAM_BYTES + 1)], Code.TOO_LARGE),
        ([msgpack.packb(["XX", 1, 0, "bye", 1])], Code.BAD_MAGIC),
        ([msgpack.packb([MAGIC, 2, 0, "bye", 1])], Code.BAD_VERSION),
        ([msgpack.packb([MAGIC, True, 0, "bye", 1])], Code.BAD_VERSION),
        ([header("nope", 1)], Code.BAD_MESSAGE),
        ([header("bye")], Code.BAD_MESSAGE),
        ([header("sp", 1, 2, 3, 4, [], 0)], Code.BAD_MESSAGE),
        ([header("sp", 1, 2, 3, 4, ["x"], 0)], Code.BAD_MESSAGE),
        ([header("sp", 1, -2, 3, 4, [1.0], 0)], Code.BAD_MESSAGE),
        ([header("sp", 1, 2, 3, 4, [1.0] * 17, 0)], Code.BAD_MESSAGE),
        ([header("hello", 1, ["a"], math.nan, 0)], Code.BAD_MESSAGE),
        ([msgpack.packb({"magic": MAGIC})], Code.BAD_MESSAGE),
        ([msgpack.packb([MAGIC, 1, 0, "bye", 1]) + b"\x00"], Code.BAD_FRAME),
        ([msgpack.packb([MAGIC, 1, 0, "sp", 1, 2, 3, 4, b"\x00" * 48, 0])], Code.BAD_FRAME),
    ],
)
def test_stream_rejections(frames: list[bytes], code: Code) -> None:
    out = decode_stream(frames)
    assert isinstance(out, Rejection) and out.code is code, out


def test_nan_passes_the_decoder_and_is_left_to_the_checks() -> None:
    frame = encode_setpoint(Setpoint(1, 0, 0, 0, (math.nan, math.inf)))
    out = decode_stream([frame])
    assert isinstance(out, Setpoint) and math.isnan(out.q[0]) and math.isinf(out.q[1])


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([b"x", b"y"], Code.BAD_FRAME),
        ([b"\x00" * (MAX_COMMAND_BYTES + 1)], Code.TOO_LARGE),
        ([msgpack.packb([1, 2])], Code.BAD_MESSAGE),
        ([msgpack.packb({"magic": "no", "v": [1, 0]})], Code.BAD_MAGIC),
        ([msgpack.packb({"magic": MAGIC, "v": [9, 0]})], Code.BAD_VERSION),
        ([msgpack.packb({"magic": MAGIC, "v": [1, 0], "id": -1, "cmd": "x"})], Code.BAD_MESSAGE),
        ([msgpack.packb({"magic": MAGIC, "v": [1, 0], "id": 1, "cmd": 5})], Code.BAD_MESSAGE),
        (
            [msgpack.packb({"magic": MAGIC, "v": [1, 0], "id": 1, "cmd": "x", "args": []})],
            Code.BAD_MESSAGE,
        ),
        ([msgpack.packb({1: 2})], Code.BAD_FRAME),  # non-string map key
    ],
)
def test_request_rejections(frames: list[bytes], code: Code) -> None:
    out = decode_request(frames)
    assert isinstance(out, Rejection) and out.code is code, out


@pytest.mark.parametrize(
    ("request_map", "code", "request_id"),
    [
        ({"magic": MAGIC, "v": [2, 0], "id": 7, "cmd": "status"}, Code.BAD_VERSION, 7),
        ({"magic": "no", "v": [1, 0], "id": 8, "cmd": "status"}, Code.BAD_MAGIC, 8),
        ({"magic": MAGIC, "v": [1, 0], "id": 9, "cmd": "x", "args": [1]}, Code.BAD_MESSAGE, 9),
        ({"magic": MAGIC, "v": [1, 0], "id": 2**64 - 1, "cmd": 5}, Code.BAD_MESSAGE, 2**64 - 1),
        ({"magic": MAGIC, "v": [1, 0], "id": -1, "cmd": "x"}, Code.BAD_MESSAGE, 0),
        ({"magic": MAGIC, "v": [1, 0], "id": True, "cmd": "x"}, Code.BAD_MESSAGE, 0),
        ({"magic": MAGIC, "v": [1, 0], "id": "7", "cmd": "x"}, Code.BAD_MESSAGE, 0),
        ({"magic": MAGIC, "v": [2, 0], "cmd": "x"}, Code.BAD_VERSION, 0),
    ],
)
def test_request_rejection_keeps_a_readable_id(
    request_map: dict, code: Code, request_id: int
) -> None:
    out = decode_request([msgpack.packb(request_map)])
    assert isinstance(out, Rejection) and out.code is code and out.id == request_id, out


def test_encoding_misuse_raises_input_error() -> None:
    with pytest.raises(InputError, match=r"setpoint\.q"):
        encode_setpoint(Setpoint(1, 0, 0, 0, ()))
    with pytest.raises(InputError, match="request"):
        encode_request(Request(1, "x", {"blob": "a" * (MAX_COMMAND_BYTES + 10)}))


def test_random_bytes_never_raise() -> None:
    """30,000 random frames through the three decoders."""
    rng = np.random.default_rng(1)
    for _ in range(10_000):
        frame = rng.bytes(int(rng.integers(0, 64)))
        for decode in (decode_stream, decode_request, decode_reply):
            assert isinstance(
                decode([frame]),
                Rejection | Hello | Setpoint | Abort | Bye | State | Welcome | Request | Reply,
            )


leaf = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(width=64),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.booleans(),
    st.none(),
)
tree = st.one_of(
    leaf, st.lists(leaf, max_size=8), st.dictionaries(st.text(max_size=4), leaf, max_size=3)
)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.lists(tree, max_size=10),
    kind=st.sampled_from(["sp", "hello", "state", "bye", "abort", "welcome", "x"]),
)
def test_structured_fuzz_never_raises(body: list, kind: str) -> None:
    frame = msgpack.packb([MAGIC, 1, 0, kind, *body])
    out = decode_stream([frame])
    assert isinstance(out, Rejection | Hello | Setpoint | Abort | Bye | State | Welcome)
    req = msgpack.packb({"magic": MAGIC, "v": [1, 0], "id": 1, "cmd": kind, "args": {"a": body}})
    assert isinstance(decode_request([req]), Request | Rejection)
