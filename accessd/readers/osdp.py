"""The OSDP reader component: runs the sans-IO control panel on the RS485 port.

``create(daemon)`` returns None unless ``reader.protocol = "osdp"``.  The CP
(:mod:`accessd.protocols.osdp.cp`) runs on a dedicated bus thread (:class:`BusThread`):
``select()`` on the port with the CP's next deadline as timeout, events handed to
the event loop with ``call_soon_threadsafe``.  :class:`BusLoop` runs the same CP
inside the asyncio loop instead; ``benchmarks/bench_osdp.py`` measures both
(BENCHMARKS.md): card-to-decision latency is the same within noise, the thread
idled lower in two of three runs (0.9 % vs 1.5 % of a core) and keeps polling
while the loop is blocked, so the daemon uses :class:`BusThread`.

What it publishes: ``reader.connecting`` / ``reader.connected`` /
``reader.disconnected`` per PD, ``tamper`` on LSTATR tamper/power changes,
``security.<kind>`` on a downgrade, wrong key, MAC failure…, ``reader.provisioned``
after install mode.  Card data (RAW, wire-order bits) and keypad keys go through each
PD's :class:`~accessd.protocols.pipeline.ReaderPipeline` (the same interpretation as
every other reader: ``[reader.osdp]`` has the same card keys as ``[reader.wiegand]``)
to the sink (the access component);
``feedback(granted)`` shows green/red on the reader LED and sounds the buzzer.
Install-mode provisioning is recorded in ``state_dir/osdp-provisioned.json`` (a
key fingerprint per PD address) so a restart never re-enters install mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path

from accessd.errors import ConfigError
from accessd.protocols.keypad import PinAssembler
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp import trace as tr
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from accessd.protocols.pipeline import CardInterpreter, ReaderPipeline
from accessd.protocols.wiegand.errors import UnknownFormat
from accessd.wiring.serial_port import PortLost, SerialPort, SerialPortError

log = logging.getLogger("accessd.osdp")

STATE_NAMES = {"online": "connected", "offline": "not_connected"}  # every other CP state: connecting


class Tracer:
    """Writes every packet to ``path`` as JSON Lines or pcap (commissioning aid)."""

    def __init__(self, path: str, fmt: str = "jsonl") -> None:
        self.fmt = fmt
        self._fh = open(path, "ab" if fmt == "pcap" else "a", buffering=1 if fmt == "jsonl" else -1)  # noqa: SIM115
        if fmt == "pcap" and self._fh.tell() == 0:
            self._fh.write(tr.pcap_header())

    def write(self, packet: ev.Packet) -> None:
        ts = time.time()
        if self.fmt == "pcap":
            self._fh.write(tr.pcap_record(packet.raw, ts))
        else:
            self._fh.write(tr.jsonl_line(packet.direction, packet.raw, ts))

    def close(self) -> None:
        self._fh.close()


class BusThread:
    """Run ``cp`` on ``port`` in a dedicated thread; ``deliver(events)`` is called on that thread."""

    def __init__(self, cp: ControlPanel, port: SerialPort, deliver: Callable[[list], None], *,
                 clock: Callable[[], float] = time.monotonic, reopen_interval: float = 1.0,
                 tracer: Tracer | None = None) -> None:
        self.cp = cp
        self.port = port
        self.deliver = deliver
        self.clock = clock
        self.reopen_interval = reopen_interval
        self.tracer = tracer
        self.lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.port_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="osdp-bus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def submit(self, address: int, command: p.Payload) -> int:
        with self.lock:
            handle = self.cp.submit(address, command)
        self._wake()
        return handle

    def info(self, address: int) -> dict:
        with self.lock:
            return self.cp.info(address)

    def _run(self) -> None:
        cp, port = self.cp, self.port
        next_reopen = 0.0
        while not self._stop:
            with self.lock:
                now = self.clock()
                cp.tick(now)
                out = cp.data_to_send()
                events = cp.events()
                deadline = cp.next_deadline()
            if events:
                self._events(events)
            if not port.is_open and now >= next_reopen:
                next_reopen = now + self.reopen_interval
                if port.reopen():
                    if self.port_error:
                        log.warning("serial port %s is open again", port.url)
                    self.port_error = None
                else:
                    self.port_error = port.last_error
            if out and port.is_open:
                try:
                    port.write(out)
                except PortLost as exc:
                    self._lost(exc)
            timeout = 1.0 if deadline is None else max(0.0, deadline - self.clock())
            if not port.is_open:
                timeout = min(timeout, max(0.0, next_reopen - self.clock()))
            fd = port.fileno() if port.is_open else None
            rlist = [self._wake_r] if fd is None else [self._wake_r, fd]
            if fd is None and port.is_open:
                timeout = min(timeout, 0.005)  # URL without a file descriptor: poll
            ready, _, _ = select.select(rlist, [], [], timeout)
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            if port.is_open and (fd is None or fd in ready):
                try:
                    data = port.read(ready=fd is not None)
                except PortLost as exc:
                    self._lost(exc)
                    continue
                if data:
                    with self.lock:
                        cp.receive(data, self.clock())

    def _lost(self, exc: Exception) -> None:
        self.port_error = str(exc)
        log.error("%s; reopening every %g s", exc, self.reopen_interval)

    def _events(self, events: list) -> None:
        for e in events:
            if isinstance(e, ev.ComChanged) and e.baud != self.port.baud:
                log.warning("OSDP PD %d moved to %d baud (COMSET); the port follows", e.address, e.baud)
                self.port.set_baud(e.baud)  # every PD on this bus must be moved too
        if self.tracer is not None:
            rest = []
            for e in events:
                if isinstance(e, ev.Packet):
                    self.tracer.write(e)
                else:
                    rest.append(e)
            events = rest
        if events:
            self.deliver(events)


class BusLoop:
    """Run ``cp`` on ``port`` inside an asyncio loop (``add_reader`` + ``call_at``)."""

    def __init__(self, cp: ControlPanel, port: SerialPort, deliver: Callable[[list], None], loop, *,
                 reopen_interval: float = 1.0, tracer: Tracer | None = None) -> None:
        self.cp = cp
        self.port = port
        self.deliver = deliver
        self.loop = loop
        self.clock = loop.time
        self.reopen_interval = reopen_interval
        self.tracer = tracer
        self._timer = None
        self._fd: int | None = None
        self.port_error: str | None = None
        self._stopped = False

    def start(self) -> None:
        self._attach()
        if not self.port.is_open:
            self.loop.call_later(self.reopen_interval, self._reopen)
        self._pump()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        self._detach()

    def submit(self, address: int, command: p.Payload) -> int:
        handle = self.cp.submit(address, command)
        self.loop.call_soon(self._pump)
        return handle

    def info(self, address: int) -> dict:
        return self.cp.info(address)

    def _attach(self) -> None:
        if self.port.is_open:
            self._fd = self.port.fileno()
            if self._fd is not None:
                self.loop.add_reader(self._fd, self._readable)

    def _detach(self) -> None:
        if self._fd is not None:
            self.loop.remove_reader(self._fd)
            self._fd = None

    def _readable(self) -> None:
        try:
            data = self.port.read(ready=True)
        except PortLost as exc:
            self._lost(exc)
            return
        if data:
            self.cp.receive(data, self.clock())
        self._pump()

    def _lost(self, exc: Exception) -> None:
        self.port_error = str(exc)
        log.error("%s; reopening every %g s", exc, self.reopen_interval)
        self._detach()
        self.loop.call_later(self.reopen_interval, self._reopen)

    def _reopen(self) -> None:
        if self._stopped:
            return
        if self.port.reopen():
            self.port_error = None
            self._attach()
            self._pump()
        else:
            self.port_error = self.port.last_error
            self.loop.call_later(self.reopen_interval, self._reopen)

    def _pump(self) -> None:
        if self._stopped:
            return
        cp = self.cp
        cp.tick(self.clock())
        out = cp.data_to_send()
        if out and self.port.is_open:
            try:
                self.port.write(out)
            except PortLost as exc:
                self._lost(exc)
        events = cp.events()
        if events:
            BusThread._events(self, events)  # same tracer split
        deadline = cp.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
        if self._fd is None and self.port.is_open:
            deadline = min(deadline or 1e18, self.clock() + 0.005)
        self._timer = self.loop.call_at(deadline, self._pump) if deadline is not None else None


# ------------------------------------------------------------------------------ provisioning record

def key_fingerprint(scbk: bytes) -> str:
    return hashlib.sha256(b"accessd-osdp-scbk" + scbk).hexdigest()[:16]


def load_provisioned(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.error("%s: unreadable provisioning record (%s); treating readers as not provisioned", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_provisioned(path: Path, record: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ the component

class _Reader:
    """One PD as the access component and ``status`` see it."""

    def __init__(self, owner: OsdpReader, address: int, reader_id: str, cards: CardInterpreter) -> None:
        self.owner = owner
        self.address = address
        self.id = reader_id
        cfg = owner.cfg
        self.pipeline = ReaderPipeline(cards=cards, pins=PinAssembler(length=cfg.pin_length, timeout=cfg.pin_timeout))

    def feedback(self, granted: bool) -> None:
        self.owner.feedback(self.address, granted)

    def status(self) -> dict:
        return self.owner.reader_status(self.address)


class OsdpReader:
    def __init__(self, daemon, sink) -> None:
        self.daemon = daemon
        self.sink = sink
        self.cfg = cfg = daemon.config.reader.osdp
        base = daemon.config.reader.id
        addresses = [cfg.address, *cfg.addresses]
        try:
            cards = CardInterpreter(daemon.formats, cfg.card_settings())
        except UnknownFormat as exc:
            key = "format" if exc.name == cfg.format else "convert_to" if exc.name == cfg.convert_to else "preference"
            raise ConfigError(f"reader.osdp.{key}", str(exc)) from None
        self.by_address: dict[int, _Reader] = {}
        for i, addr in enumerate(addresses):
            rid = base if i == 0 else f"{base}.{addr}"
            self.by_address[addr] = _Reader(self, addr, rid, cards)
        self.readers = list(self.by_address.values())
        daemon.scheduler.add("osdp keypads", self._pin_deadline, self._pin_tick)
        self.scbk = bytes.fromhex(cfg.scbk) if cfg.scbk else None
        self.record_path = Path(daemon.state_dir) / "osdp-provisioned.json"
        self.bus: BusThread | BusLoop | None = None
        self.port: SerialPort | None = None
        self.tracer: Tracer | None = None
        if cfg.trace:
            try:
                self.tracer = Tracer(cfg.trace, cfg.trace_format)
            except OSError as exc:
                raise ConfigError("reader.osdp.trace", f"cannot open the packet trace {cfg.trace}: {exc.strerror}") \
                    from None
        self._states: dict[int, str] = {a: "connecting" for a in addresses}
        self._security: dict[int, str | None] = {a: None for a in addresses}
        self._tamper: dict[int, tuple[bool, bool] | None] = {a: None for a in addresses}

    # -- lifecycle
    async def start(self) -> None:
        cfg = self.cfg
        record = load_provisioned(self.record_path)
        fp = key_fingerprint(self.scbk) if self.scbk else None
        pds = []
        for addr in self.by_address:
            done = fp is not None and record.get(str(addr), {}).get("key") == fp
            if cfg.install_mode and done:
                log.info("OSDP PD %d is already provisioned with this key; install mode not entered", addr)
            pds.append(PdConfig(address=addr, scbk=self.scbk, install_mode=cfg.install_mode, provisioned=done))
        self.cp = ControlPanel(pds, random=os.urandom, now=self.daemon.clock(), poll_interval=cfg.poll_interval,
                               reply_timeout=cfg.reply_timeout, offline_after=cfg.offline_after, baud=cfg.baud,
                               probe_interval=cfg.probe_interval, switch_gap=cfg.switch_gap,
                               trace=cfg.trace is not None)
        self.port = SerialPort(cfg.port, baud=cfg.baud, rs485=cfg.rs485)
        try:
            self.port.open()
        except SerialPortError as exc:
            log.error("%s; retrying every second", exc)
        loop = self.daemon.loop
        self.bus = BusThread(self.cp, self.port, lambda evs: loop.call_soon_threadsafe(self.on_events, evs),
                             tracer=self.tracer)
        self.bus.start()

    async def stop(self) -> None:
        if self.bus is not None:
            self.bus.stop()
        if self.port is not None:
            self.port.close()
        if self.tracer is not None:
            self.tracer.close()

    # -- status / feedback
    def reader_status(self, address: int) -> dict:
        out = {"state": self._states[address], "protocol": "osdp", "address": address,
               "port": self.cfg.port, "secure_channel_required": self.scbk is not None}
        if self.bus is not None:
            info = self.bus.info(address)
            out.update(secure=info["secure"], provisioned=info["provisioned"], pdid=info["pdid"],
                       tamper=info["tamper"], power_failure=info["power_failure"])
            if self.bus.port_error:
                out["port_error"] = self.bus.port_error
        if self._security[address]:
            out["security_alert"] = self._security[address]
        return out

    def feedback(self, address: int, granted: bool) -> None:
        if self.bus is None or self._states.get(address) != "connected":
            return
        color = p.LED_COLORS["green" if granted else "red"]
        led = p.Led(records=(p.LedRecord(temp_control=2, temp_on_time=20, temp_off_time=0, temp_on_color=color,
                                         temp_off_color=color, temp_timer=20),))
        buz = p.Buzzer(tone=2, on_time=2, off_time=0, count=1) if granted else \
            p.Buzzer(tone=2, on_time=1, off_time=1, count=3)
        self.bus.submit(address, led)
        self.bus.submit(address, buz)

    # -- events from the bus (loop thread)
    def on_events(self, events: list) -> None:
        for e in events:
            try:
                self._on_event(e)
            except Exception:  # one bad event must not stop the rest
                log.exception("handling %r failed", e)

    def _publish(self, type_: str, **fields) -> None:
        self.daemon.publish(type_, **fields)

    def _on_event(self, e) -> None:
        if isinstance(e, ev.ComChanged) and e.old_address != e.address and e.old_address in self.by_address:
            r = self.by_address.pop(e.old_address)
            r.address = e.address
            self.by_address[e.address] = r
            for table in (self._states, self._security, self._tamper):
                table[e.address] = table.pop(e.old_address)
            log.warning("OSDP reader %s moved from address %d to %d (COMSET)", r.id, e.old_address, e.address)
            return
        r = self.by_address.get(e.address)
        if r is None:
            return
        rid = r.id
        if isinstance(e, ev.CardRead):
            for outcome in r.pipeline.card(e.bits):
                self.sink.submit(outcome, rid)
        elif isinstance(e, ev.KeypadKeys):
            self._keys(r, e.keys)
        elif isinstance(e, ev.Connecting):
            self._states[e.address] = "connecting"
            self._publish("reader.connecting", reader=rid, protocol="osdp", address=e.address)
        elif isinstance(e, ev.Online):
            self._states[e.address] = "connected"
            self._security[e.address] = None
            self._publish("reader.connected", reader=rid, protocol="osdp", address=e.address, secure=e.secure,
                          pdid=e.pdid)
        elif isinstance(e, ev.Offline):
            self._states[e.address] = "not_connected" if e.reason != "re-handshake" else "connecting"
            self._publish("reader.disconnected", reader=rid, protocol="osdp", address=e.address, reason=e.reason)
        elif isinstance(e, ev.LocalStatus):
            before = self._tamper[e.address]
            self._tamper[e.address] = (e.tamper, e.power_failure)
            if before is None and not (e.tamper or e.power_failure):
                return  # first report, all normal
            if before is None or before[0] != e.tamper:
                self._publish("tamper", reader=rid, input="reader_tamper", state="active" if e.tamper else "inactive")
            if before is None or before[1] != e.power_failure:
                self._publish("tamper", reader=rid, input="reader_power",
                              state="active" if e.power_failure else "inactive")
        elif isinstance(e, ev.SecurityAlert):
            self._security[e.address] = e.kind
            log.warning("OSDP security: %s", e.detail)
            self._publish(f"security.{e.kind}", reader=rid, address=e.address, detail=e.detail)
        elif isinstance(e, ev.Provisioned):
            record = load_provisioned(self.record_path)
            record[str(e.address)] = {"key": key_fingerprint(self.scbk), "time": time.time()}
            save_provisioned(self.record_path, record)
            self._publish("reader.provisioned", reader=rid, address=e.address)
        elif isinstance(e, ev.CommandDone) and not e.ok:
            log.info("OSDP PD %d: %s failed: %s", e.address, e.command, e.detail)
        elif isinstance(e, ev.BusError):
            log.debug("OSDP bus: %s", e.error)

    def _keys(self, r: _Reader, keys: str) -> None:
        for outcome in r.pipeline.keys(keys, self.daemon.clock()):
            self.sink.submit(outcome, r.id)
        self.daemon.scheduler.poke()

    def _pin_deadline(self) -> float | None:
        return min((d for r in self.readers if (d := r.pipeline.next_deadline()) is not None), default=None)

    def _pin_tick(self, now: float) -> None:
        for r in self.readers:
            for outcome in r.pipeline.tick(now):
                self.sink.submit(outcome, r.id)


def create(daemon, sink) -> OsdpReader | None:
    if daemon.config.reader.protocol != "osdp":
        return None
    return OsdpReader(daemon, sink)
