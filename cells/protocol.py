"""The wire protocol: size-limited msgpack messages for streaming and commands.

Every message is one ZeroMQ frame holding one msgpack value. Stream messages (between
a streamer and an arm endpoint) are msgpack arrays whose first four items are
``MAGIC``, the major and minor protocol version and the kind; command messages
(requests and replies on the command sockets) are msgpack maps. ``docs/protocol.md``
is the normative description; this module is its reference implementation.

Decoding never raises on bad input from the network: it returns a :class:`Rejection`
with a :class:`Code`. Encoding raises :class:`~planners.errors.InputError` on misuse.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from planners.errors import InputError

__all__ = [
    "MAGIC",
    "MAX_COMMAND_BYTES",
    "MAX_JOINTS",
    "MAX_STREAM_BYTES",
    "VERSION",
    "Abort",
    "Bye",
    "Code",
    "Counters",
    "Hello",
    "Rejection",
    "Reply",
    "Request",
    "Setpoint",
    "State",
    "Welcome",
    "decode_reply",
    "decode_request",
    "decode_stream",
    "encode_abort",
    "encode_bye",
    "encode_hello",
    "encode_reply",
    "encode_request",
    "encode_setpoint",
    "encode_state",
    "encode_welcome",
]

MAGIC = "RCZ"
VERSION = (1, 0)
MAX_JOINTS = 16
MAX_STREAM_BYTES = 2048
MAX_COMMAND_BYTES = 65536
_U64 = (1 << 64) - 1
FLAG_FINAL = 1


class Code(enum.StrEnum):
    """Reason and error codes, sent as their string value."""

    OK = "OK"
    # framing (stream and command)
    BAD_FRAME = "BAD_FRAME"
    TOO_LARGE = "TOO_LARGE"
    BAD_MAGIC = "BAD_MAGIC"
    BAD_VERSION = "BAD_VERSION"
    BAD_MESSAGE = "BAD_MESSAGE"
    # session and sequence (dropped and counted, never a fault)
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    OLD_SEQUENCE = "OLD_SEQUENCE"
    DUPLICATE = "DUPLICATE"
    LATE = "LATE"
    # setpoint content (a fault: controlled stop, reset required)
    BAD_TIME = "BAD_TIME"
    SHAPE = "SHAPE"
    NOT_FINITE = "NOT_FINITE"
    POSITION_LIMIT = "POSITION_LIMIT"
    VELOCITY_LIMIT = "VELOCITY_LIMIT"
    ACCELERATION_LIMIT = "ACCELERATION_LIMIT"
    JERK_LIMIT = "JERK_LIMIT"
    START_MISMATCH = "START_MISMATCH"
    NOT_ACTIVE = "NOT_ACTIVE"
    # arm events
    WATCHDOG = "WATCHDOG"
    ABORTED = "ABORTED"
    ESTOP = "ESTOP"
    JOINT_MISMATCH = "JOINT_MISMATCH"
    BUSY = "BUSY"
    # command replies
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
    BAD_ARGUMENT = "BAD_ARGUMENT"
    BAD_STATE = "BAD_STATE"
    NOT_AVAILABLE = "NOT_AVAILABLE"
    PLAN_FAILED = "PLAN_FAILED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    ARM_UNREACHABLE = "ARM_UNREACHABLE"
    ARM_LOST = "ARM_LOST"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class Rejection:
    """A message that was not accepted: its code and a human-readable detail.

    ``id`` is the request's id when a rejected command request still had a readable one
    (an unsigned 64-bit integer under ``"id"`` of a map), so the reply can echo it; 0 otherwise.
    """

    code: Code
    detail: str = ""
    id: int = 0


@dataclass(frozen=True)
class Hello:
    """Streamer -> arm: open a session (one motion) with these joints at this rate."""

    session: int
    joint_names: tuple[str, ...]
    rate_hz: float
    t_send_ns: int


@dataclass(frozen=True)
class Welcome:
    """Arm -> streamer: the answer to :class:`Hello`.

    Attributes:
        session: The session of the Hello.
        code: ``OK`` when the session is open; otherwise why not.
        t_arm_ns: The arm's clock when it answered [ns].
        t_echo_ns: ``t_send_ns`` of the Hello [ns] (for the clock offset).
        mode: The arm's mode name.
        q: (dof,) measured joint positions [rad].
    """

    session: int
    code: Code
    t_arm_ns: int
    t_echo_ns: int
    mode: str
    q: tuple[float, ...]


@dataclass(frozen=True)
class Setpoint:
    """Streamer -> arm: joint positions to reach at ``t_apply_ns`` on the arm's clock.

    Attributes:
        session: Session id of the Hello.
        seq: Sequence number, 0 for the first setpoint of the session, +1 each.
        t_send_ns: Streamer's send time, arm clock [ns].
        t_apply_ns: When ``q`` applies, arm clock [ns].
        q: (dof,) joint positions [rad] in the session's joint order.
        final: The last setpoint of the motion.
    """

    session: int
    seq: int
    t_send_ns: int
    t_apply_ns: int
    q: tuple[float, ...]
    final: bool = False


@dataclass(frozen=True)
class Abort:
    """Streamer -> arm: stop now (controlled stop), the session ends in a fault."""

    session: int
    t_send_ns: int


@dataclass(frozen=True)
class Bye:
    """Streamer -> arm: the session is over (after a final setpoint)."""

    session: int


@dataclass(frozen=True)
class Counters:
    """Setpoint counters of the arm for the current session."""

    received: int = 0
    accepted: int = 0
    late: int = 0
    old: int = 0
    duplicate: int = 0
    gaps: int = 0


@dataclass(frozen=True)
class State:
    """Arm -> streamer, once per period: measured state and the arm's mode.

    Attributes:
        session: Session id (0 when none).
        seq: State message number.
        t_arm_ns: Arm clock when measured [ns].
        mode: Mode name (``DISARMED``, ``ARMED``, ``ACTIVE``, ``STOPPING``, ``FAULT``, ``ESTOP``).
        reason: Code of the last fault, ``OK`` when none.
        last_seq: Sequence number of the last accepted setpoint, -1 when none.
        q: (dof,) measured positions [rad].
        qd: (dof,) measured velocities [rad/s].
        counters: Setpoint counters of the session.
    """

    session: int
    seq: int
    t_arm_ns: int
    mode: str
    reason: Code
    last_seq: int
    q: tuple[float, ...]
    qd: tuple[float, ...]
    counters: Counters = field(default_factory=Counters)


@dataclass(frozen=True)
class Request:
    """A command request: ``cmd`` with keyword ``args``; ``id`` is echoed in the reply."""

    id: int
    cmd: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A command reply; ``ok`` is ``code == OK``; ``data`` holds the result."""

    id: int
    code: Code
    detail: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the command succeeded."""
        return self.code is Code.OK


StreamMessage = Hello | Welcome | Setpoint | Abort | Bye | State


# ---------------------------------------------------------------------- encoding
def _header(kind: str) -> list[Any]:
    return [MAGIC, VERSION[0], VERSION[1], kind]


def _floats(values: Sequence[float], name: str) -> list[float]:
    out = [float(v) for v in values]
    if not 0 < len(out) <= MAX_JOINTS:
        raise InputError(f"{name}: expected 1 to {MAX_JOINTS} values, got {len(out)}")
    return out


def encode_hello(msg: Hello) -> bytes:
    """Encode a :class:`Hello`."""
    return msgpack.packb(
        [*_header("hello"), msg.session, list(msg.joint_names), float(msg.rate_hz), msg.t_send_ns]
    )


def encode_welcome(msg: Welcome) -> bytes:
    """Encode a :class:`Welcome`."""
    return msgpack.packb(
        [
            *_header("welcome"),
            msg.session,
            str(msg.code),
            msg.t_arm_ns,
            msg.t_echo_ns,
            msg.mode,
            [float(v) for v in msg.q],
        ]
    )


def encode_setpoint(msg: Setpoint) -> bytes:
    """Encode a :class:`Setpoint` (the hot path: about 2 us)."""
    return msgpack.packb(
        [
            MAGIC,
            VERSION[0],
            VERSION[1],
            "sp",
            msg.session,
            msg.seq,
            msg.t_send_ns,
            msg.t_apply_ns,
            _floats(msg.q, "setpoint.q"),
            FLAG_FINAL if msg.final else 0,
        ]
    )


def encode_abort(msg: Abort) -> bytes:
    """Encode an :class:`Abort`."""
    return msgpack.packb([*_header("abort"), msg.session, msg.t_send_ns])


def encode_bye(msg: Bye) -> bytes:
    """Encode a :class:`Bye`."""
    return msgpack.packb([*_header("bye"), msg.session])


def encode_state(msg: State) -> bytes:
    """Encode a :class:`State`."""
    c = msg.counters
    return msgpack.packb(
        [
            *_header("state"),
            msg.session,
            msg.seq,
            msg.t_arm_ns,
            msg.mode,
            str(msg.reason),
            msg.last_seq,
            [float(v) for v in msg.q],
            [float(v) for v in msg.qd],
            [c.received, c.accepted, c.late, c.old, c.duplicate, c.gaps],
        ]
    )


def encode_request(msg: Request) -> bytes:
    """Encode a command :class:`Request`."""
    out = msgpack.packb(
        {"magic": MAGIC, "v": list(VERSION), "id": msg.id, "cmd": msg.cmd, "args": dict(msg.args)}
    )
    if len(out) > MAX_COMMAND_BYTES:
        raise InputError(f"request: {len(out)} bytes, more than {MAX_COMMAND_BYTES}")
    return out


def encode_reply(msg: Reply) -> bytes:
    """Encode a command :class:`Reply`."""
    return msgpack.packb(
        {
            "magic": MAGIC,
            "v": list(VERSION),
            "id": msg.id,
            "ok": msg.ok,
            "code": str(msg.code),
            "detail": msg.detail,
            "data": dict(msg.data),
        }
    )


# ---------------------------------------------------------------------- decoding
def _unpack(frame: bytes, limit: int, max_array: int) -> Any:
    if len(frame) > limit:
        raise _RejectError(Code.TOO_LARGE, f"{len(frame)} bytes, limit {limit}")
    try:
        return msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_str_len=4096,
            max_bin_len=0,
            max_array_len=max_array,
            max_map_len=64,
            max_ext_len=0,
            use_list=True,
        )
    except Exception as exc:  # msgpack raises many types on garbage; all are bad frames
        raise _RejectError(Code.BAD_FRAME, f"not a msgpack value: {type(exc).__name__}") from None


class _RejectError(Exception):
    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(code, detail)


def _int(value: Any, name: str, lo: int = 0, hi: int = _U64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _RejectError(Code.BAD_MESSAGE, f"{name}: expected an integer in [{lo}, {hi}]")
    return value


def _num(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _RejectError(Code.BAD_MESSAGE, f"{name}: expected a number")
    return float(value)


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _RejectError(Code.BAD_MESSAGE, f"{name}: expected a string")
    return value


def _vec(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_JOINTS:
        raise _RejectError(
            Code.BAD_MESSAGE, f"{name}: expected an array of 1..{MAX_JOINTS} numbers"
        )
    return tuple(_num(v, name) for v in value)


def _check_header(obj: Any) -> str:
    if not isinstance(obj, list) or len(obj) < 4:
        raise _RejectError(Code.BAD_MESSAGE, "expected an array [magic, major, minor, kind, ...]")
    if obj[0] != MAGIC:
        raise _RejectError(Code.BAD_MAGIC, f"magic: expected {MAGIC!r}")
    if obj[1] != VERSION[0] or isinstance(obj[1], bool):
        raise _RejectError(Code.BAD_VERSION, f"major version: expected {VERSION[0]}")
    _int(obj[2], "minor version", 0, 1 << 16)
    return _str(obj[3], "kind")


_LENGTHS = {
    "hello": 8,
    "welcome": 10,
    "sp": 10,
    "abort": 6,
    "bye": 5,
    "state": 13,
}


def decode_stream(frames: Sequence[bytes]) -> StreamMessage | Rejection:
    """Decode one stream message from its frames (exactly one frame is valid).

    Returns:
        The message, or a :class:`Rejection` (framing, size, magic, version, fields).
    """
    if len(frames) != 1:
        return Rejection(Code.BAD_FRAME, f"expected 1 frame, got {len(frames)}")
    try:
        obj = _unpack(bytes(frames[0]), MAX_STREAM_BYTES, 2 * MAX_JOINTS)
        kind = _check_header(obj)
        n = _LENGTHS.get(kind)
        if n is None:
            raise _RejectError(Code.BAD_MESSAGE, f"kind: unknown {kind[:32]!r}")
        if len(obj) != n:
            raise _RejectError(Code.BAD_MESSAGE, f"{kind}: expected {n} items, got {len(obj)}")
        return _decode_kind(kind, obj)
    except _RejectError as rej:
        return rej.rejection


def _decode_kind(kind: str, o: list[Any]) -> StreamMessage:
    session = _int(o[4], "session")
    if kind == "sp":
        flags = _int(o[9], "flags", 0, 255)
        return Setpoint(
            session,
            _int(o[5], "seq"),
            _int(o[6], "t_send_ns", 0, (1 << 63) - 1),
            _int(o[7], "t_apply_ns", 0, (1 << 63) - 1),
            _vec(o[8], "q"),
            bool(flags & FLAG_FINAL),
        )
    if kind == "state":
        counts = o[12]
        if not isinstance(counts, list) or len(counts) != 6:
            raise _RejectError(Code.BAD_MESSAGE, "counters: expected 6 integers")
        reason = _str(o[8], "reason")
        return State(
            session,
            _int(o[5], "seq"),
            _int(o[6], "t_arm_ns", 0, (1 << 63) - 1),
            _str(o[7], "mode"),
            Code(reason) if reason in Code.__members__ else Code.INTERNAL,
            _int(o[9], "last_seq", -1, _U64),
            _vec(o[10], "q"),
            _vec(o[11], "qd"),
            Counters(*(_int(c, "counters") for c in counts)),
        )
    if kind == "hello":
        names = o[5]
        if not isinstance(names, list) or not 0 < len(names) <= MAX_JOINTS:
            raise _RejectError(Code.BAD_MESSAGE, "joint_names: expected 1..16 strings")
        rate = _num(o[6], "rate_hz")
        if not (math.isfinite(rate) and 0 < rate <= 10_000):
            raise _RejectError(Code.BAD_MESSAGE, "rate_hz: expected a number in (0, 10000]")
        return Hello(
            session,
            tuple(_str(n, "joint_names") for n in names),
            rate,
            _int(o[7], "t_send_ns", 0, (1 << 63) - 1),
        )
    if kind == "welcome":
        code = _str(o[5], "code")
        return Welcome(
            session,
            Code(code) if code in Code.__members__ else Code.INTERNAL,
            _int(o[6], "t_arm_ns", 0, (1 << 63) - 1),
            _int(o[7], "t_echo_ns", 0, (1 << 63) - 1),
            _str(o[8], "mode"),
            _vec(o[9], "q"),
        )
    if kind == "abort":
        return Abort(session, _int(o[5], "t_send_ns", 0, (1 << 63) - 1))
    return Bye(session)


def _check_map_header(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _RejectError(Code.BAD_MESSAGE, "expected a map")
    if obj.get("magic") != MAGIC:
        raise _RejectError(Code.BAD_MAGIC, f"magic: expected {MAGIC!r}")
    v = obj.get("v")
    if not isinstance(v, list) or len(v) != 2 or v[0] != VERSION[0] or isinstance(v[0], bool):
        raise _RejectError(Code.BAD_VERSION, f"v: expected [{VERSION[0]}, minor]")
    return obj


def decode_request(frames: Sequence[bytes]) -> Request | Rejection:
    """Decode a command request (one frame); a :class:`Rejection` on bad input."""
    if len(frames) != 1:
        return Rejection(Code.BAD_FRAME, f"expected 1 frame, got {len(frames)}")
    request_id = 0
    try:
        obj = _unpack(bytes(frames[0]), MAX_COMMAND_BYTES, 4096)
        request_id = _readable_id(obj)
        _check_map_header(obj)
        args = obj.get("args", {})
        if not isinstance(args, dict):
            raise _RejectError(Code.BAD_MESSAGE, "args: expected a map")
        return Request(_int(obj.get("id"), "id"), _str(obj.get("cmd"), "cmd")[:64], args)
    except _RejectError as rej:
        return Rejection(rej.rejection.code, rej.rejection.detail, request_id)


def _readable_id(obj: Any) -> int:
    """The ``id`` of a decoded map when it is a valid one, else 0 (for echoing in a reply)."""
    if isinstance(obj, dict):
        value = obj.get("id")
        if not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= _U64:
            return value
    return 0


def decode_reply(frames: Sequence[bytes]) -> Reply | Rejection:
    """Decode a command reply (one frame); a :class:`Rejection` on bad input."""
    if len(frames) != 1:
        return Rejection(Code.BAD_FRAME, f"expected 1 frame, got {len(frames)}")
    try:
        obj = _check_map_header(_unpack(bytes(frames[0]), MAX_COMMAND_BYTES, 4096))
        code = _str(obj.get("code"), "code")
        data = obj.get("data", {})
        if not isinstance(data, dict):
            raise _RejectError(Code.BAD_MESSAGE, "data: expected a map")
        return Reply(
            _int(obj.get("id"), "id"),
            Code(code) if code in Code.__members__ else Code.INTERNAL,
            _str(obj.get("detail", ""), "detail"),
            data,
        )
    except _RejectError as rej:
        return rej.rejection
