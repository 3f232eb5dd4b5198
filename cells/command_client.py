"""A client of a command socket (the arm endpoint's or the control endpoint's).

A DEALER socket speaking the request/reply messages of :mod:`cells.protocol`, with a
timeout on every call so a vanished server never blocks the caller.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import zmq

from cells.protocol import Reply, Request, decode_reply, encode_request
from cells.security import apply_client

__all__ = ["CommandClient"]


class CommandClient:
    """Send commands to ``endpoint``; replies are matched by request id.

    Args:
        endpoint: The command socket, e.g. ``tcp://127.0.0.1:5556``.
        keys_dir: CURVE key directory (``None`` with ``insecure_plaintext``).
        insecure_plaintext: Plain text, loopback only.
        client_secret: Another client secret key file instead of the directory's.
    """

    def __init__(
        self,
        endpoint: str,
        keys_dir: str | None = None,
        insecure_plaintext: bool = False,
        client_secret: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._ctx = zmq.Context()
        try:
            s = self._ctx.socket(zmq.DEALER)
            s.linger = 0
            s.sndtimeo = 0
            apply_client(s, endpoint, keys_dir, insecure_plaintext, client_secret)
            s.connect(endpoint)
        except BaseException:
            self._ctx.destroy(linger=0)
            raise
        self._sock = s
        self._id = 0

    def call(
        self, cmd: str, args: Mapping[str, Any] | None = None, timeout_s: float = 1.0
    ) -> Reply | None:
        """Send ``cmd`` with ``args``; the reply, or ``None`` after ``timeout_s`` [s]."""
        self._id += 1
        with contextlib.suppress(zmq.Again):  # queued nowhere: the wait below times out
            self._sock.send_multipart(
                [b"", encode_request(Request(self._id, cmd, dict(args or {})))], zmq.NOBLOCK
            )
        end = time.monotonic() + timeout_s
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self._sock.poll(max(1, int(left * 1000))):
                return None
            frames = self._sock.recv_multipart()
            reply = decode_reply(frames[-1:])
            if isinstance(reply, Reply) and reply.id == self._id:
                return reply

    def close(self) -> None:
        """Close the socket and context (idempotent)."""
        if not self._ctx.closed:
            self._sock.close(linger=0)
            self._ctx.term()

    def __enter__(self) -> CommandClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
