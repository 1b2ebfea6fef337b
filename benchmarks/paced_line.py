"""A paced RS485 line for benchmarks: a pty whose bytes move at the wire's speed.

The CP opens ``line.port`` (the pty's slave) like a serial port.  Every byte the CP
writes is put on the simulated wire 10 bits / baud after the previous one (start bit,
8 data bits, stop bit) and delivered to every PD at that moment; a PD's reply starts
``turnaround`` seconds after the PD wrote it (its driver turn-around and processing, or
later if the wire is busy), is paced the same way and reaches the CP and every other PD
(all transceivers hear the bus, except a transmitter its own bytes).  The wire is half
duplex: one byte at a time, whoever sends.

PDs are libosdp ``PeripheralDevice`` objects serviced by one thread every ``service``
seconds (1 ms: a PD that services its UART promptly, as an embedded reader does; the
Python binding's own thread would add up to 20 ms per reply, which is the PD, not the
line).  Replies reach the CP only (``echo=False``): libosdp 3.2.9's PD treats another
PD's reply as a framing error and resets, so on this harness PDs do not hear each other.  :func:`wire_limit` is what an ideal CP could reach on such a line.
"""

from __future__ import annotations

import heapq
import itertools
import os
import pty
import select
import threading
import time
import tty

import osdp

POLL_BYTES = 8  # plaintext osdp_POLL with CRC
ACK_BYTES = 8  # plaintext osdp_ACK with CRC
RAW26_BYTES = 16  # osdp_RAW with a 26-bit card: header 5, code 1, reader/format/count 4, data 4, CRC 2


def byte_time(baud: int) -> float:
    return 10 / baud


def wire_limit(n_pds: int, baud: int, turnaround: float, *, silent: int = 0, reply_timeout: float = 0.2,
               probe_interval: float = 1.0) -> dict:
    """Card-to-decision latency an ideal CP reaches: a card presented at a random moment
    waits for its PD's next POLL (half a poll cycle on average, up to a whole one), then
    the POLL, the PD's turnaround and the RAW reply are on the wire.  A silent PD's probe
    (a POLL-sized command, then the reply timeout) every ``probe_interval`` adds its share."""
    bt = byte_time(baud)
    exchange = (POLL_BYTES + ACK_BYTES) * bt + turnaround
    cycle = n_pds * exchange
    tail = POLL_BYTES * bt + turnaround + RAW26_BYTES * bt
    probe = POLL_BYTES * bt + reply_timeout
    # a card lands inside a probe with probability probe/probe_interval and then waits half of it more
    probe_cost = silent * (probe / probe_interval) * probe / 2
    return {"cycle": cycle, "median": cycle / 2 + tail + probe_cost, "p99": 0.99 * cycle + tail + silent * probe}


class Channel(osdp.Channel):
    """One PD's transceiver on the line: an idle-line UART (DMA plus an idle interrupt, the
    usual way an embedded reader receives), which hands the firmware what arrived once the
    line has been idle for one character time.  libosdp 3.2.9's PD needs that: it drops a
    packet whose bytes reach it over two reads."""

    def __init__(self, line: PacedLine) -> None:
        super().__init__()
        self.line = line
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.muted = False

    def push(self, data: bytes) -> None:
        if not self.muted:
            with self.lock:
                self.buf += data

    def read(self, max_bytes: int) -> bytes:
        with self.lock:
            out = bytes(self.buf[:max_bytes])
            del self.buf[:max_bytes]
        return out

    def write(self, buf: bytes) -> int:
        if not self.muted:
            self.line.transmit(self, bytes(buf))
        return len(buf)

    def flush(self) -> None:
        pass


class PacedLine:
    def __init__(self, baud: int, turnaround: float = 0.002, service: float = 0.001, echo: bool = False) -> None:
        self.baud = baud
        self.echo = echo
        self.bt = byte_time(baud)
        self.turnaround = turnaround
        self.service = service
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self._slave)
        self.channels: list[Channel] = []
        self.pds: list[osdp.PeripheralDevice] = []
        self._due: list[tuple[float, int, object, bytes]] = []  # (time, seq, destination, byte)
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._wire_free = 0.0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stop = False
        self._threads = [threading.Thread(target=self._relay, name="paced-line", daemon=True),
                         threading.Thread(target=self._service_pds, name="pd-service", daemon=True)]
        for t in self._threads:
            t.start()

    # -- PDs
    def add_pd(self, address: int, caps) -> osdp.PeripheralDevice:
        ch = Channel(self)
        info = osdp.PDInfo(address, ch, id=osdp.PdId(2, 17, 0x00A1B2, 1000 + address, 0x010203))
        pd = osdp.PeripheralDevice(info, osdp.PDCapabilities(caps), log_level=osdp.LogLevel.Emergency)
        pd.lock = threading.Lock()  # serviced by this line's thread, not the binding's 20 ms thread
        with self._lock:
            self.channels.append(ch)
            self.pds.append(pd)
        return pd

    def _service_pds(self) -> None:
        while not self._stop:
            for pd in list(self.pds):
                with pd.lock:
                    pd.ctx.refresh()
            time.sleep(self.service)

    # -- the wire
    def _schedule(self, start: float, data: bytes, dests: list) -> None:
        """Bytes on the wire one after the other: the CP gets each byte when its stop bit is
        done; a PD's idle-line UART gets the burst one character time after its last byte."""
        with self._lock:
            t = max(start, self._wire_free)
            for b in data:
                t += self.bt
                if "cp" in dests:
                    heapq.heappush(self._due, (t, next(self._seq), "cp", bytes((b,))))
            for d in dests:
                if d != "cp":
                    heapq.heappush(self._due, (t + self.bt, next(self._seq), d, bytes(data)))
            self._wire_free = t
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def transmit(self, sender: Channel, data: bytes) -> None:
        """A PD's reply: after its turnaround, to the CP (and to the other PDs with ``echo``)."""
        dests = ["cp", *[c for c in self.channels if c is not sender and self.echo]]
        self._schedule(time.monotonic() + self.turnaround, data, dests)

    def _relay(self) -> None:
        while not self._stop:
            with self._lock:
                nxt = self._due[0][0] if self._due else None
            timeout = 0.05 if nxt is None else max(0.0, nxt - time.monotonic())
            r, _, _ = select.select([self.master, self._wake_r], [], [], timeout)
            now = time.monotonic()
            if self._wake_r in r:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            if self.master in r:
                try:
                    data = os.read(self.master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data:  # the CP's command: to every PD
                    self._schedule(now, data, list(self.channels))
            out: dict = {}
            with self._lock:
                while self._due and self._due[0][0] <= now:
                    _, _, dest, b = heapq.heappop(self._due)
                    out.setdefault(id(dest), [dest, bytearray()])[1].extend(b)
            for dest, data in out.values():
                if dest == "cp":
                    try:
                        os.write(self.master, bytes(data))
                    except OSError:
                        pass
                else:
                    dest.push(bytes(data))

    def close(self) -> None:
        self._stop = True
        for t in self._threads:
            t.join(2)
        for fd in (self.master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)
