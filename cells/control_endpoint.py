"""The control endpoint: request/reply commands that drive runs of streamed motions.

One ROUTER socket (REQ or DEALER clients) takes the commands of :mod:`cells.protocol`
(``{"cmd": ..., "args": {...}}``) and answers every request with a structured
:class:`~cells.protocol.Reply` and a :class:`~cells.protocol.Code`; a bad request never
takes the endpoint down.

Commands: ``load_cell`` (a cell file, into a :class:`~cells.controller.CellController`),
``plan`` (one cycle's programs), ``validate`` (the exact sweep and physics replay in
PyBullet), ``run`` (the validated cycle, or a saved trajectory file, streamed to an arm
endpoint by a :class:`~cells.streamer.StreamerProcess`), ``pause``, ``resume``,
``stop``, ``abort``, ``reset``, ``status``. A cycle runs only after it was validated,
and a new ``plan`` or ``load_cell`` forgets the validation. ``plan`` and ``validate``
take about 0.1-3 s during which the endpoint does not answer (the streamer runs in its
own process, so a run in progress is not held up).

Controller states::

    IDLE --run--> RUNNING <--pause/resume--> PAUSED
    RUNNING/PAUSED --motion done or stop--> IDLE
    RUNNING/PAUSED --abort, arm fault, arm lost--> FAULT --reset--> IDLE
"""

from __future__ import annotations

import contextlib
import enum
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq

from cells.arm_endpoint import command_endpoint_for
from cells.command_client import CommandClient
from cells.motion import rows_from_file
from cells.pacing import clock_ns
from cells.protocol import (
    MAX_COMMAND_BYTES,
    Code,
    Rejection,
    Reply,
    Request,
    decode_request,
    encode_reply,
)
from cells.security import ServerSecurity
from cells.streamer import StreamConfig, StreamerProcess
from planners.errors import RobotCellError
from planners.trajectory import Trajectory

if TYPE_CHECKING:
    from cells.controller import CellController
    from cells.program import Program

__all__ = ["ControlEndpoint", "ControlState"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


START_TOLERANCE = 0.01
"""Largest distance [rad] of a trajectory's start from the arm's measured position (the
arm's own check uses the same default)."""


class ControlState(enum.StrEnum):
    """The controller's state (see the module docstring)."""

    IDLE = "IDLE"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FAULT = "FAULT"


class _BadRequestError(Exception):
    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ControlEndpoint:
    """Serve the control commands on ``bind``.

    Args:
        bind: Endpoint to bind, e.g. ``tcp://127.0.0.1:5560``.
        keys_dir: CURVE key directory; also the default keys for reaching arm endpoints.
        insecure_plaintext: Plain text (loopback only), also towards arm endpoints.
    """

    def __init__(
        self, bind: str, keys_dir: str | None = None, insecure_plaintext: bool = False
    ) -> None:
        self.bind = bind
        self.keys_dir = keys_dir
        self.insecure = insecure_plaintext
        self.state = ControlState.IDLE
        self.reason = Code.OK
        self.detail = ""
        self.last_result: dict[str, Any] = {}
        self.reported_ns = 0
        self._run: StreamerProcess | None = None
        self._controller: CellController | None = None
        self._programs: list[Program] = []
        self._validated: Path | None = None  # the validated cycle, saved for the streamer
        self._tmp = tempfile.TemporaryDirectory(prefix="cellctl-")
        self._arm: CommandClient | None = None
        self._arm_endpoint = ""
        self._running = False
        self._ctx = zmq.Context()
        self._security: ServerSecurity | None = None
        try:
            self._security = ServerSecurity(self._ctx, keys_dir, insecure_plaintext)
            s = self._ctx.socket(zmq.ROUTER)
            s.linger = 0
            s.sndtimeo = 0
            s.maxmsgsize = MAX_COMMAND_BYTES
            self._security.apply(s, bind)
            s.bind(bind)
            self._sock: zmq.Socket | None = s
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ loop
    def serve(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Answer requests and follow the run until ``shutdown`` or ``should_stop()``."""
        assert self._sock is not None
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        self._running = True
        while self._running and not (should_stop and should_stop()):
            run = self._run
            fd = run.connection.fileno() if run is not None else -1
            if run is not None:
                poller.register(fd, zmq.POLLIN)
            events = dict(poller.poll(5))
            if run is not None:
                poller.unregister(fd)
                if fd in events or not run.process.is_alive():
                    self._follow_run()
            if self._sock in events:
                self._drain()

    def _drain(self) -> None:
        assert self._sock is not None
        for _ in range(100):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            envelope, body = frames[:-1], frames[-1:]
            if len(envelope) not in (1, 2) or (len(envelope) == 2 and envelope[1] != b""):
                continue
            reply = self.handle_frames(body)
            with contextlib.suppress(zmq.ZMQError):
                self._sock.send_multipart([*envelope, encode_reply(reply)], zmq.NOBLOCK)

    def handle_frames(self, frames: list[bytes]) -> Reply:
        """Decode and run one request; always a reply, never an exception."""
        req = decode_request(frames)
        if isinstance(req, Rejection):
            return Reply(req.id, req.code, req.detail)
        try:
            return self.handle(req)
        except _BadRequestError as exc:
            return Reply(req.id, exc.code, exc.detail, self._status())
        except RobotCellError as exc:
            return Reply(req.id, Code.BAD_ARGUMENT, str(exc), self._status())
        except Exception as exc:  # never die on a bad request
            logger.exception("command %s failed", req.cmd)
            return Reply(req.id, Code.INTERNAL, f"{type(exc).__name__}: {exc}", self._status())

    def handle(self, req: Request) -> Reply:
        """Dispatch one decoded request."""
        commands: dict[str, Callable[[dict[str, Any]], None]] = {
            "status": lambda a: None,
            "run": self._cmd_run,
            "pause": lambda a: self._forward("pause", (ControlState.RUNNING,)),
            "resume": lambda a: self._forward("resume", (ControlState.PAUSED,)),
            "stop": lambda a: self._forward("stop", (ControlState.RUNNING, ControlState.PAUSED)),
            "abort": lambda a: self._forward("abort", (ControlState.RUNNING, ControlState.PAUSED)),
            "reset": self._cmd_reset,
            "shutdown": self._cmd_shutdown,
        }
        answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "load_cell": self._cmd_load_cell,
            "plan": self._cmd_plan,
            "validate": self._cmd_validate,
        }
        if req.cmd in answers:
            data = answers[req.cmd](dict(req.args))
            return Reply(req.id, Code.OK, "", {**self._status(), **data})
        action = commands.get(req.cmd)
        if action is None:
            valid = sorted([*commands, *answers])
            return Reply(req.id, Code.UNKNOWN_COMMAND, f"valid: {', '.join(valid)}")
        action(dict(req.args))
        return Reply(req.id, Code.OK, "", self._status())

    # ------------------------------------------------------------------ cells
    def _cmd_load_cell(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.state is not ControlState.IDLE:
            raise _BadRequestError(Code.BAD_STATE, f"load_cell needs IDLE, not {self.state}")
        path = Path(_arg(args, "path", str))
        seed = int(_arg(args, "seed", int, 0))
        if seed < 0:
            raise _BadRequestError(Code.BAD_ARGUMENT, "args.seed: expected an integer >= 0")
        from cells.cell_file import load_cell
        from cells.controller import CellController

        cell = load_cell(path)  # CellFileError: BAD_ARGUMENT with file:key.path
        if self._controller is not None:  # never keep a closed controller, even if the next fails
            self._controller.close()
            self._controller = None
        self._programs, self._validated = [], None
        self._controller = CellController(cell, seed=seed)
        return {
            "cell": cell.name, "takt_s": cell.takt, "robots": list(cell.robots),
            "parts": list(cell.parts), "holes": list(cell.holes),
        }  # fmt: skip

    def _cmd_plan(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._controller is None:
            raise _BadRequestError(Code.BAD_STATE, "plan needs a cell: load_cell first")
        from cells.program import PlanningError

        self._programs, self._validated = [], None
        try:
            programs = self._controller.plan_cycle()
        except PlanningError as exc:
            raise _BadRequestError(Code.PLAN_FAILED, str(exc)) from None
        self._programs = programs
        return {
            "operations": [
                {"kind": p.kind, "target": p.target, "duration_s": p.duration} for p in programs
            ],
            "cycle_time_s": sum(p.duration for p in programs),
        }

    def _cmd_validate(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._controller is None or not self._programs:
            raise _BadRequestError(Code.BAD_STATE, "validate needs a plan: plan first")
        verdict = self._controller.validate(self._programs)
        if not verdict.ok:
            raise _BadRequestError(Code.VALIDATION_FAILED, str(verdict.first))
        path = Path(self._tmp.name) / "cycle.npz"
        Trajectory.concatenate(
            [p.trajectory.shifted(sum(q.duration for q in self._programs[:i]))
             for i, p in enumerate(self._programs)]
        ).save(path)  # fmt: skip
        self._validated = path
        return {"min_clearance_m": verdict.min_clearance, "violations": 0}

    # ------------------------------------------------------------------ commands
    def _cmd_run(self, args: dict[str, Any]) -> None:
        if self.state is not ControlState.IDLE:
            raise _BadRequestError(Code.BAD_STATE, f"run needs state IDLE, not {self.state}")
        if "trajectory" in args:
            path = _arg(args, "trajectory", str)
        elif self._validated is not None:
            path = str(self._validated)
        else:
            raise _BadRequestError(
                Code.BAD_STATE,
                "run needs a validated cycle (load_cell, plan, validate) or args.trajectory",
            )
        arm_ep = _arg(args, "arm", str)
        cmd_ep = _arg(args, "arm_command", str, command_endpoint_for(arm_ep))
        rate = float(_arg(args, "rate_hz", (int, float), 1000.0))
        if not (np.isfinite(rate) and 0 < rate <= 10_000):
            raise _BadRequestError(Code.BAD_ARGUMENT, "rate_hz: expected a number in (0, 10000]")
        if not Path(path).is_file():
            raise _BadRequestError(Code.BAD_ARGUMENT, f"trajectory: {path!r} is not a file")
        if self._arm is None or self._arm_endpoint != cmd_ep:
            if self._arm is not None:
                self._arm.close()
            self._arm = CommandClient(cmd_ep, self.keys_dir, self.insecure)
            self._arm_endpoint = cmd_ep
        status = self._arm.call("arm", timeout_s=1.0)
        if status is None:
            raise _BadRequestError(Code.ARM_UNREACHABLE, f"no reply from the arm at {cmd_ep}")
        if not status.ok:
            raise _BadRequestError(
                Code.BAD_STATE, f"arm is {status.data.get('mode')}: reset it first"
            )
        names = tuple(str(n) for n in status.data.get("joint_names", ()))
        rows = rows_from_file(path, rate, names)
        gap = float(np.max(np.abs(rows[0] - np.asarray(status.data["q"], dtype=np.float64))))
        if gap > START_TOLERANCE:
            raise _BadRequestError(
                Code.START_MISMATCH, f"trajectory starts {gap:.4g} rad from where the arm stands"
            )
        config = StreamConfig(
            arm_ep,
            rate,
            keys_dir=self.keys_dir,
            insecure_plaintext=self.insecure,
            realtime_priority=int(_arg(args, "rt_priority", int, 0)),
        )
        self._run = StreamerProcess(config, rows, names)
        self.state = ControlState.RUNNING
        self.reason, self.detail, self.last_result = Code.OK, "", {}
        logger.info("run %s on %s: %d setpoints", path, arm_ep, rows.shape[0])

    def _forward(self, command: str, allowed: tuple[ControlState, ...]) -> None:
        if self.state not in allowed or self._run is None:
            raise _BadRequestError(
                Code.BAD_STATE, f"{command} is not possible in state {self.state}"
            )
        self._run.send(command)
        if command == "pause":
            self.state = ControlState.PAUSED
        elif command == "resume":
            self.state = ControlState.RUNNING

    def _cmd_reset(self, args: dict[str, Any]) -> None:
        if self.state in (ControlState.RUNNING, ControlState.PAUSED):
            raise _BadRequestError(
                Code.BAD_STATE, "reset needs a finished run: stop or abort first"
            )
        if self._arm is not None:
            reply = self._arm.call("reset", timeout_s=1.0)
            if reply is None:
                raise _BadRequestError(Code.ARM_UNREACHABLE, f"no reply from {self._arm_endpoint}")
            if not reply.ok:
                raise _BadRequestError(reply.code, reply.detail)
        self.state, self.reason, self.detail = ControlState.IDLE, Code.OK, ""

    def _cmd_shutdown(self, args: dict[str, Any]) -> None:
        if self._run is not None:
            self._run.send("abort")
        self._running = False

    # ------------------------------------------------------------------ the run
    def _follow_run(self) -> None:
        run = self._run
        assert run is not None
        result = run.poll(0.0)
        if result is None and not run.process.is_alive():
            result = run.poll(0.05) or {"code": str(Code.INTERNAL), "detail": "streamer died"}
        if result is None:
            return
        self.reported_ns = clock_ns()
        self.last_result = {k: v for k, v in result.items() if k != "event"}
        code = str(result.get("code", Code.INTERNAL))
        self.reason = Code(code) if code in Code.__members__ else Code.INTERNAL
        self.detail = str(result.get("detail", ""))
        self.state = ControlState.IDLE if self.reason is Code.OK else ControlState.FAULT
        if self.state is ControlState.FAULT:
            logger.warning("run ended: %s %s", self.reason, self.detail)
        run.close()
        self._run = None

    def _status(self) -> dict[str, Any]:
        progress = {}
        if self._run is not None:
            self._run.poll(0.0)
            sent = [e for e in self._run.events if e.get("event") == "progress"]
            if sent:
                progress = {"sent": sent[-1]["sent"], "of": sent[-1]["n"]}
        return {
            "state": str(self.state),
            "reason": str(self.reason),
            "detail": self.detail,
            "arm": self._arm_endpoint,
            "progress": progress,
            "last_result": self.last_result,
            "reported_ns": self.reported_ns,
        }

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Abort a run, close the sockets and the authenticator (idempotent)."""
        if getattr(self, "_run", None) is not None:
            assert self._run is not None
            self._run.close()
            self._run = None
        if getattr(self, "_arm", None) is not None:
            assert self._arm is not None
            self._arm.close()
            self._arm = None
        if getattr(self, "_controller", None) is not None:
            assert self._controller is not None
            self._controller.close()
            self._controller = None
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
        if getattr(self, "_sock", None) is not None:
            assert self._sock is not None
            self._sock.close(linger=0)
            self._sock = None
        if self._security is not None:
            self._security.close()
            self._security = None
        if not self._ctx.closed:
            self._ctx.destroy(linger=0)

    def __enter__(self) -> ControlEndpoint:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _arg(args: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if name not in args:
        if default is ...:
            raise _BadRequestError(Code.BAD_ARGUMENT, f"args.{name}: missing")
        return default
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _BadRequestError(Code.BAD_ARGUMENT, f"args.{name}: wrong type {type(value).__name__}")
    return value
