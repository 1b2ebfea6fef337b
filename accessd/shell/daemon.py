"""The daemon shell: one asyncio loop owns the socket, the timers, the log and the door.

Start order: the components are constructed in :data:`COMPONENTS` order — the door
component first, whose constructor drives the relay to its normal (locked) state before
anything else exists — then the event log is opened and checked, the socket is bound,
and each component's ``start()`` runs.  SIGTERM/SIGINT stop the door first (the relay
goes to normal at once, whatever the other components do), then the others in reverse
order; then the log is flushed and the socket removed.

The parts are built in one place, :meth:`Daemon._build`, and wired by constructor
(the contract is :mod:`accessd.shell.contract`): the door (its constructor locks the
relay), the access component with the door and the reader registry, then each reader
protocol's component with the access component as the sink of its pipeline.  Every part
receives the daemon as its :class:`~accessd.shell.contract.Shell`:

* ``config``, ``loop``, ``state_dir``, ``pin_factory``, ``mock``, ``formats`` (the card
  format library), ``tz``;
* ``clock()`` monotonic seconds (injectable: tests pass a virtual clock) and
  ``scheduler`` (:mod:`accessd.shell.scheduler`): every machine's ``next_deadline()``
  / ``tick(now)`` behind one loop timer;
* ``publish(type, **fields) -> dict`` (loop thread) and ``publish_threadsafe``;
  ``with relay_first():`` holds the fan-out to subscribers until the block ends;
* ``register_command(name, handler, *, privileged=False, audited=None)``:
  ``handler(params)`` returns a dict or an awaitable of one, or raises
  :class:`~accessd.errors.CommandError`; a privileged command runs only for root, the
  daemon's user and ``admin_group``, and each run publishes ``admin.<command>`` (who,
  what was asked without secrets, the outcome); a refused one ``security.forbidden``;
* ``register_status(name, fn)``: ``status[name] = fn()``; a dotted name nests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from accessd import __version__
from accessd.config import Config
from accessd.errors import CommandError, ConfigError
from accessd.events import Event
from accessd.shell.clock import ClockWatch
from accessd.shell.eventlog import PAGE_MAX, EventLog
from accessd.shell.scheduler import Scheduler
from accessd.shell.sdnotify import Notifier
from accessd.shell.server import Server, inherited_socket, redact
from accessd.timeutil import device_tz, parse_time

log = logging.getLogger("accessd")

# Reader protocol modules: each has ``create(shell, sink) -> ReaderComponent | None``.
READERS: tuple[str, ...] = ("accessd.readers.wiegand", "accessd.readers.osdp", "accessd.readers.qr")


def make_pin_factory(name: str):
    """The gpiozero pin factory for ``daemon.pin_factory``."""
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory

            return MockFactory()
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
    except ImportError as exc:
        extra = {"lgpio": "pi", "rpigpio": "rpigpio"}[name]
        raise RuntimeError(f"daemon.pin_factory = {name!r} needs its library: pip install 'accessd[{extra}]' ({exc})") from exc
    except Exception as exc:  # no GPIO chip on this machine, permission denied …
        raise RuntimeError(f"daemon.pin_factory = {name!r} cannot open the GPIO chip: {exc}") from exc
    raise ValueError(f"unknown pin factory {name!r}")


class Daemon:
    def __init__(self, config: Config, *, clock: Callable[[], float] | None = None,
                 virtual_time: bool = False, wall: Callable[[], float] | None = None) -> None:
        """``clock``: monotonic seconds (default ``time.monotonic``); ``virtual_time``: the
        scheduler's timers are not put on the loop — a test moves time with
        ``scheduler.advance``; ``wall``: Unix time for validity and schedules (default
        ``time.time``)."""
        self.config = config
        self.clock = clock or time.monotonic
        self.wall = wall or time.time
        self.scheduler = Scheduler(self.clock)
        self._virtual = virtual_time
        d = config.daemon
        self.state_dir = Path(d.state_dir)
        self.mock = d.pin_factory == "mock"
        self.tz = device_tz(d.timezone)
        self.formats = config.format_library()
        self.pin_factory = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.log = EventLog(self.state_dir / "events.db", capacity=d.event_capacity, flush_interval=d.flush_interval)
        # events the disk refused past the in-memory backlog: the gap is recorded once writes work again
        self.log.on_lost = lambda first, last, count: self.publish_threadsafe(
            "system.events_lost", first=first, last=last, count=count, via="log")
        self.server = Server(
            max_clients=d.max_clients, queue_size=d.subscriber_queue, max_request=d.max_request,
            max_clients_per_uid=d.max_clients_per_uid, admin_reserve=d.admin_reserve,
            admin_group=d.admin_group, version=__version__, audit=self._audit,
        )
        self.notifier = Notifier()
        self.access = None  # built by _build: the door, the access component, the readers
        self.door = None
        self.readers: dict = {}  # reader id → Reader
        self.components: list = []
        self.event_hooks: list = []  # called with each published event (after the log and subscribers)
        self._status: dict[str, Callable[[], object]] = {}
        self._seq = 0
        self._early: list[tuple[float, str, dict]] = []  # published before the log opened
        self._logging = False
        self._event_reads = asyncio.Semaphore(2)  # event queries at once (each holds a worker thread)
        self._held: list[dict] | None = None  # events whose fan-out waits (relay_first)
        self._stop: asyncio.Event | None = None
        self.started = time.time()
        self.log_corrupt = None

    # -- the contract ------------------------------------------------------------
    def publish(self, type: str, **fields) -> dict:  # noqa: A002 - the event's field name
        if not self._logging:
            Event(seq=1, ts=0, type=type, fields=fields)  # validate now, number later
            self._early.append((time.time(), type, fields))
            return {"type": type, **fields}
        self._seq += 1
        event = Event(seq=self._seq, ts=time.time(), type=type, fields=fields)
        data = event.to_json()
        if self._held is not None:
            self._held.append((event, data))
        else:
            self.log.append(event, data)
            self.server.publish(data)
        for hook in self.event_hooks:  # the rules
            try:
                hook(data)
            except Exception:  # noqa: BLE001 - a rule's failure never costs the event
                log.exception("event hook failed for %s", type)
        return data

    @contextlib.contextmanager
    def relay_first(self):
        """Events published inside are numbered (and stamped) at once but handed to the
        log and to subscribers only on the way out: the reader path moves the relay
        before any fan-out or log encoding.  The cyclic garbage collector waits for the
        block's end too (in the middle of a presentation a young collection took 0.1–0.3
        ms, a middle one 0.7–1.7 ms, a full one 3–9 ms before :meth:`_start` froze the
        start-up heap)."""
        if self._held is not None:  # nested: the outer block sends
            yield
            return
        self._held = []
        collecting = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if collecting:
                gc.enable()
            held, self._held = self._held, None
            for event, data in held:
                self.log.append(event, data)
                self.server.publish(data)

    def publish_threadsafe(self, type: str, **fields) -> None:  # noqa: A002
        self.loop.call_soon_threadsafe(lambda: self.publish(type, **fields))

    def register_command(self, name: str, handler, *, privileged: bool = False, audited=None) -> None:
        self.server.register(name, handler, privileged=privileged, audited=audited)

    def _audit(self, cmd: str, peer, params: dict, result: dict | None, error: str | None) -> None:
        """``admin.<cmd>`` for a privileged command that ran (or failed), ``security.forbidden``
        for one refused; never a PIN, a QR text or a CSV body (:func:`~accessd.shell.server.redact`)."""
        who = {"uid": peer.uid, "gid": peer.gid, "pid": peer.pid}
        if error == "forbidden":
            self.publish("security.forbidden", command=cmd, **who)
            return
        fields = {**who, "params": redact(params), "ok": error is None}
        if error is not None:
            fields["error"] = error
        if isinstance(result, dict):
            holder = result.get("holder") if "holder" in result else result.get("removed")
            if isinstance(holder, dict):
                fields["holder"] = {k: holder.get(k) for k in ("id", "first_name", "last_name")}
            elif "id" in result and "first_name" in result:
                fields["holder"] = {k: result.get(k) for k in ("id", "first_name", "last_name")}
            for key in ("decision", "reason", "added", "rows"):
                if key in result:
                    fields[key] = result[key]
        self.publish("admin." + cmd.replace("-", "_"), **fields)

    def register_status(self, name: str, fn: Callable[[], object]) -> None:
        if name in self._status:
            raise ValueError(f"status {name!r} is registered twice")
        self._status[name] = fn

    # -- built-in commands ---------------------------------------------------------
    def status(self, params: dict | None = None) -> dict:
        out: dict = {
            "daemon": {
                "version": __version__,
                "pid": os.getpid(),
                "uptime": round(time.time() - self.started, 3),
                "pin_factory": self.config.daemon.pin_factory,
                "socket": self.server.path,
                "state_dir": str(self.state_dir),
                "log": {"last_seq": self._seq, "write_error": self.log.write_error, "unwritten": self.log.unwritten,
                        "corrupt_file_kept": self.log_corrupt.kept if self.log_corrupt else None},
            },
            "readers": {rid: r.status() for rid, r in self.readers.items()},
            "counts": {"clients": len(self.server.connections), "subscribers": len(self.server.subscribers)},
        }
        for name, fn in self._status.items():
            *parents, leaf = name.split(".")
            node = out
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = fn()
        return out

    async def events(self, params: dict) -> dict:
        def when(key: str) -> float | None:
            value = params.get(key)
            if value is None:
                return None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            try:
                return parse_time(str(value), self.tz).timestamp()
            except ValueError as exc:
                raise CommandError("invalid", f"events: {key}: {exc}") from None

        def integer(key: str, default: int | None) -> int | None:
            value = params.get(key, default)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise CommandError("invalid", f"events: {key} must be a non-negative integer, got {value!r}")
            return value

        for key in ("type", "search"):
            if params.get(key) is not None and not isinstance(params[key], str):
                raise CommandError("invalid", f"events: {key} must be a string")
        query = dict(
            after_seq=integer("after_seq", 0), max_seq=integer("max_seq", None), since=when("since"),
            until=when("until"), type_glob=params.get("type"), search=params.get("search"),
            limit=integer("limit", 1000),
        )

        def run() -> list[dict]:
            self.log.flush()
            return self.log.query(**query)

        async with self._event_reads:
            rows = await self.loop.run_in_executor(None, run)
        return {"events": rows, "last_seq": self._seq, "more": len(rows) == max(1, min(query["limit"], PAGE_MAX))}

    # -- lifecycle ---------------------------------------------------------------
    async def run(self, *, signals: bool = True) -> None:
        self.loop = asyncio.get_running_loop()
        if not self._virtual:
            self.scheduler.attach(self.loop)
        self._stop = asyncio.Event()
        if signals:  # the main thread only; tests and benchmarks run the loop elsewhere
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # every one stops cleanly: relay, log flushed
                self.loop.add_signal_handler(sig, self._stop.set)
        try:
            await self._start()
            await self._stop.wait()
        finally:
            await self._shutdown()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _start(self) -> None:
        self.pin_factory = make_pin_factory(self.config.daemon.pin_factory)
        from gpiozero import Device

        Device.pin_factory = self.pin_factory  # devices get it explicitly; this catches any that do not
        self._build()
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.log_corrupt = self.log.open()
        self._seq = self.log.last_seq
        self._logging = True
        if self.log_corrupt is not None:
            self.notifier.notify(f"STATUS=event log corrupt, kept as {self.log_corrupt.kept}")
            self.publish("system.log_corrupt", detail=self.log_corrupt.detail, kept=self.log_corrupt.kept)
        for ts, etype, fields in self._early:
            self._seq += 1
            event = Event(seq=self._seq, ts=ts, type=etype, fields=fields)
            self.log.append(event)
        self._early.clear()
        self.register_command("status", self.status)
        self.register_command("events", self.events)
        await self.server.start(self.config.daemon.socket, group=self.config.daemon.socket_group, sock=inherited_socket())
        for component in self.components:
            start = getattr(component, "start", None)
            if start is not None:
                await start()
        self.publish("system.started", version=__version__, pid=os.getpid())
        # What start-up built lives as long as the daemon: freeze it out of the collector's
        # view, so a full collection later scans only what came after (36,000 objects at
        # 1M holders: 3.3–8.7 ms → 0.0 ms).
        gc.collect()
        gc.freeze()
        self.notifier.notify("READY=1", f"STATUS=serving on {self.server.path}")
        interval = self.notifier.watchdog_interval()
        if interval:
            self.loop.create_task(self._watchdog(interval))
        log.info("accessd %s serving on %s", __version__, self.server.path)

    def _build(self) -> None:
        """Build and wire every part, in this order (the door first: it locks the relay)."""
        from accessd.access.component import Access
        from accessd.door.component import DoorController

        self.door = DoorController(self)
        self.components.append(self.door)
        self.clockwatch = ClockWatch(self)
        self.access = Access(self, door=self.door, readers=self.readers)
        self.clockwatch.listeners.append(self.door.clock_changed)
        self.clockwatch.listeners.append(self.access.clock_changed)
        for name in READERS:
            component = importlib.import_module(name).create(self, self.access)
            if component is None:
                continue
            for reader in component.readers:
                if reader.id in self.readers:
                    raise ConfigError("reader.id", f"two readers are named {reader.id!r}")
                self.readers[reader.id] = reader
            self.components.append(component)
        self.components.append(self.access)
        if self.config.rules or self.config.outputs:
            from accessd.rules.component import RulesComponent

            self.rules = RulesComponent(self, door=self.door, store=self.access.store)
            self.components.append(self.rules)
        from accessd.fleet import mqtt

        fleet = mqtt.create(self, log=self.log, door=self.door, status=self.status)
        if fleet is not None:
            self.components.append(fleet)

    async def _watchdog(self, interval: float) -> None:
        # Pinged from the loop itself: a blocked loop stops the pings and systemd restarts us.
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _shutdown(self) -> None:
        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        if self._logging:
            self.publish("system.stopping", pid=os.getpid())
        # the door first (relay to normal at once), then the others in reverse start order
        door_first = sorted(reversed(self.components), key=lambda c: c is not self.door)
        for component in door_first:
            stop = getattr(component, "stop", None)
            if stop is None:
                continue
            try:
                await stop()
            except Exception:  # one failing component must not keep the others (the relay) from stopping
                log.exception("stopping %s failed", type(component).__name__)
        self.scheduler.detach()
        await self.server.stop()
        self.log.close()
        gc.unfreeze()  # what the daemon built may be collected again (tests run many daemons in one process)
