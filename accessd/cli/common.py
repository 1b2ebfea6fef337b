"""What every ``accessd-cli`` command shares: the socket client, output and exit codes.

Exit codes: 0 success / granted, 1 denied or not found, 2 usage or validation error,
3 daemon unreachable.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from ..errors import EXIT_CODES

DEFAULT_SOCKET = "/run/accessd/accessd.sock"


class Exit(Exception):
    """Leave the CLI with ``code`` after printing ``message`` to stderr."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def socket_path(args) -> str:
    return getattr(args, "socket", None) or os.environ.get("ACCESSD_SOCKET") or DEFAULT_SOCKET


class Client:
    """A blocking JSON Lines client of the daemon's socket."""

    def __init__(self, path: str, timeout: float | None = 30.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise Exit(3, f"accessd-cli: cannot reach the daemon at {path}: {exc.strerror or exc}") from None
        self.file = self.sock.makefile("rb")
        self.greeting = self.read()
        if "accessd" not in self.greeting:
            # refused in place of the greeting (too many clients, …): never taken for success
            self.sock.close()
            err = self.greeting.get("error") or {}
            raise Exit(EXIT_CODES.get(err.get("kind"), 3),
                       f"accessd-cli: the daemon at {path} refused the connection: {err.get('message', self.greeting)}")
        self._next_id = 0
        self.pending_events: list[dict] = []

    def read(self) -> dict:
        try:
            line = self.file.readline()
        except TimeoutError:
            raise Exit(3, f"accessd-cli: the daemon at {self.path} did not answer in time") from None
        except OSError as exc:
            raise Exit(3, f"accessd-cli: lost the daemon at {self.path}: {exc}") from None
        if not line:
            raise Exit(3, f"accessd-cli: the daemon at {self.path} closed the connection")
        try:
            msg = json.loads(line)
        except ValueError:
            raise Exit(3, f"accessd-cli: the daemon at {self.path} sent a line that is not JSON: {line[:80]!r}") from None
        if not isinstance(msg, dict):
            raise Exit(3, f"accessd-cli: the daemon at {self.path} sent {line[:80]!r}, not a JSON object")
        return msg

    def request(self, cmd: str, params: dict | None = None) -> dict:
        """Send one request; return its result or raise :class:`Exit` with the mapped code."""
        self._next_id += 1
        rid = self._next_id
        try:
            self.sock.sendall(json.dumps({"id": rid, "cmd": cmd, "params": params or {}}).encode() + b"\n")
        except OSError as exc:  # BrokenPipeError included: the daemon went away, which is no success
            raise Exit(3, f"accessd-cli: lost the daemon at {self.path}: {exc.strerror or exc}") from None
        while True:
            msg = self.read()
            if msg.get("id") == rid and "ok" in msg:
                break
            if "ok" in msg and msg.get("id") is None:  # an error not tied to this request
                break
            self.pending_events.append(msg)  # events streamed to a subscriber meanwhile
        if msg.get("ok") is True and isinstance(msg.get("result"), dict):
            return msg["result"]
        err = msg.get("error") if isinstance(msg.get("error"), dict) else {}
        raise Exit(EXIT_CODES.get(err.get("kind"), 2), f"accessd-cli: {err.get('message', msg)}")

    def close(self) -> None:
        self.sock.close()


def call(args, cmd: str, **params) -> dict:
    """One request on a fresh connection (params that are None are left out)."""
    client = Client(socket_path(args))
    try:
        return client.request(cmd, {k: v for k, v in params.items() if v is not None})
    finally:
        client.close()


def emit(args, data, human: str) -> None:
    """Print ``data`` as JSON with ``--json``, else the human text."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human)


def fail(message: str, code: int = 2) -> Exit:
    return Exit(code, f"accessd-cli: {message}")


def add_json(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def write_error(message: str) -> None:
    if message:
        print(message, file=sys.stderr)
