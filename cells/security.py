"""CURVE keys, the client allowlist and the ZAP authenticator.

Layout of a key directory written by :func:`create_keys` (``cellctl keys DIR``)::

    DIR/server/server.key          server public key (give it to clients)
    DIR/server/server.key_secret   server secret key (mode 0600)
    DIR/client/client.key          client public key
    DIR/client/client.key_secret   client secret key (mode 0600)
    DIR/allowed/client.key         allowlist: every public key here may connect

A server (:class:`ServerSecurity`) runs pyzmq's ``ThreadAuthenticator`` with
``configure_curve(location=DIR/allowed)``: a client whose key is not in the allowlist
fails the CURVE handshake and nothing it sends reaches the application. Servers refuse
to start when libzmq has no CURVE or a secret key file is readable by group or others.
Plain text is possible only when asked for explicitly and only on a loopback endpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from planners.errors import InputError, RobotCellError

__all__ = [
    "KeyPaths",
    "SecurityError",
    "ServerSecurity",
    "apply_client",
    "check_secret_file",
    "create_keys",
    "is_loopback",
    "key_paths",
]

ZAP_DOMAIN = "robotcell"

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


class SecurityError(RobotCellError):
    """Security cannot be set up as asked (no CURVE, exposed key, plain text off loopback)."""


@dataclass(frozen=True)
class KeyPaths:
    """The files of a key directory (see the module docstring)."""

    server_public: Path
    server_secret: Path
    client_public: Path
    client_secret: Path
    allowed: Path


def key_paths(directory: str | Path) -> KeyPaths:
    """The paths of the key files under ``directory`` (they need not exist)."""
    d = Path(directory)
    return KeyPaths(
        d / "server" / "server.key",
        d / "server" / "server.key_secret",
        d / "client" / "client.key",
        d / "client" / "client.key_secret",
        d / "allowed",
    )


def _require_curve() -> None:
    if not zmq.has("curve"):
        raise SecurityError("libzmq was built without CURVE; refusing to start")


def create_keys(directory: str | Path) -> KeyPaths:
    """Write a server and a client certificate and allow the client key.

    Secret key files get mode 0600 and their folders 0700.

    Raises:
        SecurityError: CURVE is unavailable.
    """
    _require_curve()
    paths = key_paths(directory)
    for folder in (paths.server_public.parent, paths.client_public.parent, paths.allowed):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    zmq.auth.create_certificates(paths.server_public.parent, "server")
    zmq.auth.create_certificates(paths.client_public.parent, "client")
    shutil.copyfile(paths.client_public, paths.allowed / "client.key")
    for secret in (paths.server_secret, paths.client_secret):
        os.chmod(secret, 0o600)
    logger.info("wrote CURVE keys to %s", directory)
    return paths


def check_secret_file(path: str | Path) -> None:
    """Refuse a secret key file that is missing or readable by group or others.

    Raises:
        SecurityError: the file is missing or its mode has any of 0o077.
    """
    p = Path(path)
    if not p.is_file():
        raise SecurityError(f"{p}: secret key file not found (create keys with `cellctl keys`)")
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        raise SecurityError(f"{p}: mode {mode:04o} lets others read the secret key; chmod 600 it")


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint`` stays on this machine (tcp to 127.x or ::1, ipc, inproc)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://") :].rsplit(":", 1)[0]
    return host.startswith("127.") or host in ("localhost", "[::1]")


def _load_secret(path: Path) -> tuple[bytes, bytes]:
    check_secret_file(path)
    public, secret = zmq.auth.load_certificate(path)
    if secret is None:
        raise SecurityError(f"{path}: holds no secret key")
    return public, secret


class ServerSecurity:
    """The server side of CURVE: server keys plus a running ZAP authenticator.

    Args:
        context: The ZeroMQ context whose sockets it secures.
        keys_dir: Key directory; ``None`` together with ``insecure_plaintext`` for plain text.
        insecure_plaintext: Allow plain text (loopback endpoints only, see :meth:`apply`).

    Raises:
        SecurityError: no CURVE, missing or exposed secret key, or no key directory
            without ``insecure_plaintext``.
    """

    def __init__(
        self,
        context: zmq.Context,
        keys_dir: str | Path | None,
        insecure_plaintext: bool = False,
    ) -> None:
        self.insecure = bool(insecure_plaintext)
        self._auth: ThreadAuthenticator | None = None
        if self.insecure:
            if keys_dir is not None:
                raise InputError("keys_dir: give either a key directory or insecure plain text")
            logger.warning("CURVE is off: plain text, loopback only")
            return
        if keys_dir is None:
            raise SecurityError("no key directory: CURVE is on by default (see `cellctl keys`)")
        _require_curve()
        paths = key_paths(keys_dir)
        self.public, self.secret = _load_secret(paths.server_secret)
        if not paths.allowed.is_dir():
            raise SecurityError(f"{paths.allowed}: allowlist folder not found")
        self._auth = ThreadAuthenticator(context, log=logging.getLogger(__name__ + ".zap"))
        self._auth.start()
        self._auth.configure_curve(domain=ZAP_DOMAIN, location=str(paths.allowed))

    def apply(self, socket: zmq.Socket, endpoint: str) -> None:
        """Make ``socket`` a CURVE server (before it binds), or check plain text is loopback.

        Raises:
            SecurityError: plain text on an endpoint that is not loopback.
        """
        if self.insecure:
            if not is_loopback(endpoint):
                raise SecurityError(f"{endpoint}: plain text is allowed on loopback only")
            return
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True
        socket.zap_domain = ZAP_DOMAIN.encode()

    def close(self) -> None:
        """Stop the authenticator (idempotent)."""
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def __enter__(self) -> ServerSecurity:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def apply_client(
    socket: zmq.Socket,
    endpoint: str,
    keys_dir: str | Path | None,
    insecure_plaintext: bool = False,
    client_secret: str | Path | None = None,
) -> None:
    """Make ``socket`` a CURVE client of the server in ``keys_dir`` (before it connects).

    Args:
        socket: The client socket.
        endpoint: Where it will connect (checked to be loopback for plain text).
        keys_dir: Key directory holding ``server/server.key`` and the client keys.
        insecure_plaintext: Plain text instead (loopback only).
        client_secret: Another client secret key file instead of ``client/client.key_secret``.

    Raises:
        SecurityError: as :class:`ServerSecurity`.
    """
    if insecure_plaintext:
        if not is_loopback(endpoint):
            raise SecurityError(f"{endpoint}: plain text is allowed on loopback only")
        return
    if keys_dir is None:
        raise SecurityError("no key directory: CURVE is on by default (see `cellctl keys`)")
    _require_curve()
    paths = key_paths(keys_dir)
    public, secret = _load_secret(Path(client_secret) if client_secret else paths.client_secret)
    server_public, _ = zmq.auth.load_certificate(paths.server_public)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
