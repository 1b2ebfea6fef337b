"""The Unix socket: JSON Lines requests, responses and event subscriptions.

Wire protocol (one JSON object per line, UTF-8):

* on connect the daemon sends a greeting ``{"accessd": VERSION, "protocol": 1}``;
* a request ``{"id": 7, "cmd": "status", "params": {...}}`` is answered by
  ``{"id": 7, "ok": true, "result": {...}}`` or
  ``{"id": 7, "ok": false, "error": {"kind": "invalid", "message": "..."}}``;
* ``{"cmd": "subscribe", "params": {"types": ["door.*"]}}`` streams every later event
  whose type matches a glob, one event object per line (``seq``, ``time``, ``type``, …);
  a subscriber that does not read loses the oldest events of its bounded queue and then
  receives ``{"notice": "missed", "missed": N}`` before the next event.

No client can block the loop: every connection has its own writer task and bounded
queues, requests are limited in size, and a bad line gets an error naming the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fnmatch
import grp
import json
import logging
import os
import pwd
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from accessd.errors import CommandError

log = logging.getLogger(__name__)

PROTOCOL = 1
MAX_PENDING_RESPONSES = 32


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int


# The peer of the request being dispatched: handlers that record who acted (a manual
# unlock carries the uid) read it; it is set only while a privileged command runs.
CURRENT_PEER: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("accessd_peer", default=None)

# Request parameters never copied into audit events (secrets and bulk data).
SECRET_PARAMS = frozenset({"pin", "qr", "text", "digits"})


def redact(params: dict) -> dict:
    """The parameters of a request as an audit event may carry them: no PIN, no QR text,
    no bulk CSV (its size instead)."""
    out = {}
    for key, value in params.items():
        if key in SECRET_PARAMS and value is not None:
            out[key] = f"<{len(value)} characters>" if key == "text" and isinstance(value, str) else "<redacted>"
        else:
            out[key] = value
    return out


def peer_of(sock: socket.socket) -> Peer:
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return Peer(*struct.unpack("3i", data))


def is_admin(peer: Peer, admin_group: str | None) -> bool:
    """Root, the daemon's own user, or a member of ``admin_group`` may change things."""
    if peer.uid in (0, os.getuid()):
        return True
    if not admin_group:
        return False
    try:
        group = grp.getgrnam(admin_group)
    except KeyError:
        return False
    if peer.gid == group.gr_gid:
        return True
    try:
        return pwd.getpwuid(peer.uid).pw_name in group.gr_mem
    except KeyError:
        return False


def encode(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


Handler = Callable[[dict], dict | Awaitable[dict]]


class Connection:
    """One client: reads requests, writes responses and subscribed events in order."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: Peer, admin: bool) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.admin = admin  # read once at connect (group membership is looked up then)
        self.responses: deque[bytes] = deque()
        self.events: deque[dict] = deque(maxlen=server.queue_size)
        self.missed = 0
        self.globs: tuple[str, ...] | None = None
        self.matches: dict[str, bool] = {}  # event type → wanted, per subscription
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closing = False

    # -- outgoing ----------------------------------------------------------------
    def offer(self, event: dict) -> None:
        """Queue a published event if it matches (called for every event: keep it cheap)."""
        if self.globs is None:
            return
        etype = event["type"]
        wanted = self.matches.get(etype)
        if wanted is None:
            wanted = self.matches[etype] = any(fnmatch.fnmatchcase(etype, g) for g in self.globs)
        if not wanted:
            return
        if len(self.events) == self.events.maxlen:
            self.missed += 1  # the deque drops the oldest
        self.events.append(event)
        self.wake.set()

    def respond(self, obj: dict) -> None:
        self.responses.append(encode(obj))
        if len(self.responses) >= MAX_PENDING_RESPONSES:
            self.room.clear()
        self.wake.set()

    async def write_loop(self) -> None:
        try:
            while not self.closing:
                await self.wake.wait()
                self.wake.clear()
                while self.responses or self.events:
                    if self.responses:
                        self.writer.write(self.responses.popleft())
                        if len(self.responses) < MAX_PENDING_RESPONSES:
                            self.room.set()
                    else:
                        if self.missed:
                            self.writer.write(encode({"notice": "missed", "missed": self.missed}))
                            self.missed = 0
                        self.writer.write(encode(self.events.popleft()))
                    await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closing = True

    # -- incoming ----------------------------------------------------------------
    async def read_loop(self) -> None:
        limit = self.server.max_request
        buf = b""
        while not self.closing:
            try:
                chunk = await self.reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if len(line) > limit:
                    self.respond(self._error(None, "invalid", f"request longer than {limit} bytes"))
                    return
                if line.strip():
                    await self.room.wait()
                    await self.handle_line(line)
            if len(buf) > limit:
                self.respond(self._error(None, "invalid", f"request longer than {limit} bytes"))
                return

    @staticmethod
    def _error(rid: object, kind: str, message: str) -> dict:
        return {"id": rid, "ok": False, "error": {"kind": kind, "message": message}}

    async def handle_line(self, line: bytes) -> None:
        try:
            req = json.loads(line, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.respond(self._error(None, "invalid", f"request is not valid JSON: {exc}"))
            return
        except RecursionError:
            self.respond(self._error(None, "invalid", "request is nested too deeply"))
            return
        except ValueError as exc:  # NaN/Infinity, an integer over Python's digit limit
            self.respond(self._error(None, "invalid", f"request is not valid JSON: {exc}"))
            return
        if not isinstance(req, dict):
            self.respond(self._error(None, "invalid", "request must be a JSON object"))
            return
        rid = req.get("id")
        if isinstance(rid, dict | list):
            self.respond(self._error(None, "invalid", "request id must be a string or a number"))
            return
        cmd = req.get("cmd")
        params = req.get("params", {})
        if not isinstance(cmd, str):
            self.respond(self._error(rid, "invalid", "request needs a \"cmd\" string"))
            return
        if not isinstance(params, dict):
            self.respond(self._error(rid, "invalid", "\"params\" must be a JSON object"))
            return
        try:
            result = await self.server.dispatch(self, cmd, params)
        except CommandError as exc:
            self.respond(self._error(rid, exc.kind, exc.message))
        except Exception as exc:  # a bug in a handler must not kill the connection or loop
            log.exception("command %s failed", cmd)
            self.respond(self._error(rid, "invalid", f"{cmd} failed: {type(exc).__name__}: {exc}"))
        else:
            self.respond({"id": rid, "ok": True, "result": result})


def _no_constant(name: str):
    """NaN, Infinity and -Infinity are not JSON (RFC 8259); Python's parser takes them."""
    raise ValueError(f"{name} is not a JSON number")


# audit(cmd, peer, params, result, error_kind): called after every privileged command
# (and every refused one) so the daemon can publish admin.* / security.* events.
Audit = Callable[[str, Peer, dict, dict | None, str | None], None]


@dataclass(slots=True)
class Command:
    handler: Handler
    privileged: bool
    audited: Callable[[dict], bool] | None  # which requests of it publish an audit event (None: all)


class Server:
    def __init__(
        self,
        *,
        max_clients: int = 256,
        queue_size: int = 1024,
        max_request: int = 65536,
        max_clients_per_uid: int = 16,
        admin_reserve: int = 8,
        admin_group: str | None = None,
        version: str = "?",
        audit: Audit | None = None,
    ) -> None:
        self.max_clients = max_clients
        self.max_clients_per_uid = max_clients_per_uid
        self.admin_reserve = min(admin_reserve, max_clients - 1)
        self.audit = audit
        self.queue_size = queue_size
        self.max_request = max_request
        self.admin_group = admin_group
        self.commands: dict[str, Command] = {}
        self.connections: set[Connection] = set()
        self.subscribers: list[Connection] = []
        self._server: asyncio.AbstractServer | None = None
        self.path: str | None = None
        self._owns_path = False
        self.greeting = encode({"accessd": version, "protocol": PROTOCOL})

    def register(self, name: str, handler: Handler, *, privileged: bool = False,
                 audited: Callable[[dict], bool] | None = None) -> None:
        """``privileged``: only root, the daemon's user and ``admin_group`` may run it,
        and each run is audited (``audited(params)`` may narrow which requests are, e.g.
        only the commit of a chunked import)."""
        if name in self.commands:
            raise ValueError(f"command {name!r} is registered twice")
        self.commands[name] = Command(handler, privileged, audited)

    def publish(self, event: dict) -> None:
        for conn in self.subscribers:
            conn.offer(event)

    async def dispatch(self, conn: Connection, cmd: str, params: dict) -> dict:
        if cmd == "subscribe":
            return self._subscribe(conn, params)
        command = self.commands.get(cmd)
        if command is None:
            raise CommandError("invalid", f"unknown command {cmd!r} (known: {', '.join(sorted(self.commands))}, subscribe)")
        if not command.privileged:
            result = command.handler(params)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return result
        if not conn.admin:
            self._audit(cmd, conn.peer, params, None, "forbidden")
            raise CommandError("forbidden", f"{cmd} is privileged: uid {conn.peer.uid} is not root, the daemon's user or in the admin group")
        token = CURRENT_PEER.set(conn.peer)
        try:
            result = command.handler(params)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
        except CommandError as exc:
            if command.audited is None or command.audited(params):
                self._audit(cmd, conn.peer, params, None, exc.kind)
            raise
        finally:
            CURRENT_PEER.reset(token)
        if command.audited is None or command.audited(params):
            self._audit(cmd, conn.peer, params, result, None)
        return result

    def _audit(self, cmd: str, peer: Peer, params: dict, result: dict | None, error: str | None) -> None:
        if self.audit is None:
            return
        try:
            self.audit(cmd, peer, params, result, error)
        except Exception:  # the audit must never turn a done command into an error
            log.exception("auditing %s failed", cmd)

    def _subscribe(self, conn: Connection, params: dict) -> dict:
        types = params.get("types", ["*"])
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
            raise CommandError("invalid", "subscribe: \"types\" must be a non-empty list of type globs")
        conn.globs = tuple(types)
        conn.matches = {}
        if conn not in self.subscribers:
            self.subscribers.append(conn)
        return {"types": types}

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, path: str, *, group: str | None = None, sock: socket.socket | None = None) -> None:
        """Listen on ``path`` (mode 0660, ``group``), or on an inherited socket."""
        owned = sock is None
        if sock is None:
            sock = bind_unix(path, group)
        self.path, self._owns_path = path, owned
        self._server = await asyncio.start_unix_server(self._accept, sock=sock, limit=self.max_request)

    def _refusal(self, peer: Peer, admin: bool) -> str | None:
        """Why a new connection from ``peer`` is refused, or None.

        Admins may use every slot; everyone else leaves ``admin_reserve`` of them free
        and holds at most ``max_clients_per_uid`` connections, so no local user can
        keep root from locking the door."""
        total = len(self.connections)
        if total >= self.max_clients:
            return f"too many clients (max {self.max_clients})"
        if admin:
            return None
        if total >= self.max_clients - self.admin_reserve:
            return f"too many clients ({self.admin_reserve} of {self.max_clients} connections are kept for administrators)"
        mine = sum(1 for c in self.connections if c.peer.uid == peer.uid)
        if mine >= self.max_clients_per_uid:
            return f"too many clients for uid {peer.uid} (max {self.max_clients_per_uid} per user)"
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_of(writer.get_extra_info("socket"))
        except OSError:
            writer.transport.abort()
            return
        admin = is_admin(peer, self.admin_group)
        refusal = self._refusal(peer, admin)
        if refusal is not None:
            # in place of the greeting: a client knows at once that it was refused
            writer.write(encode({"id": None, "ok": False, "error": {"kind": "unavailable", "message": refusal}}))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), 1)
            writer.close()
            return
        conn = Connection(self, reader, writer, peer, admin)
        self.connections.add(conn)
        conn.responses.append(self.greeting)
        conn.wake.set()
        writer_task = asyncio.create_task(conn.write_loop())
        try:
            await conn.read_loop()
            # let the last responses go out, but never wait long on a client that does not read
            for _ in range(200):
                if not conn.responses or writer_task.done():
                    break
                await asyncio.sleep(0.01)
        finally:
            conn.closing = True
            conn.wake.set()
            self.connections.discard(conn)
            if conn in self.subscribers:
                self.subscribers.remove(conn)
            writer_task.cancel()
            writer.transport.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # give clients that read a moment to receive the last events (system.stopping)
            for _ in range(50):
                if not any((c.events or c.responses) and not c.closing for c in self.connections):
                    break
                await asyncio.sleep(0.01)
            for conn in list(self.connections):
                conn.closing = True
                conn.writer.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self.path and self._owns_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def bind_unix(path: str, group: str | None) -> socket.socket:
    """Bind a listening socket created with mode 0660 (umask, so there is no chmod race)."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # a stale socket from a process that died
        except OSError as exc:
            raise OSError(exc.errno, f"cannot use socket path {path}: {exc.strerror}") from exc
        else:
            raise OSError(f"another accessd is already listening on {path}")
        finally:
            probe.close()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    if group:
        try:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        except KeyError as exc:
            sock.close()
            raise OSError(f"daemon.socket_group: no group named {group!r}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def inherited_socket() -> socket.socket | None:
    """The listening socket systemd passed (socket activation), if any."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    if int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    sock = socket.socket(fileno=3)
    sock.setblocking(False)
    return sock
