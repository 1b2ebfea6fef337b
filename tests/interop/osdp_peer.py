"""libosdp (PyPI ``libosdp``) as a real OSDP reader on a pty pair.

:class:`Bus` owns a pty: our CP opens the slave by name through
:class:`accessd.wiring.serial_port.SerialPort`; the master side is the RS485 wire of one
or more libosdp ``PeripheralDevice`` objects.  A hub thread copies every byte
from the wire to each PD's channel (an RS485 bus is shared); ``mute()`` cuts a
PD's wire (it neither hears nor answers) without touching its state.
"""

from __future__ import annotations

import os
import pty
import select
import threading
import time
import tty

import osdp
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from accessd.wiring.serial_port import SerialPort

from accessd.readers.osdp import BusThread

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")

CAPS = [
    (osdp.Capability.CommunicationSecurity, 1, 1),
    (osdp.Capability.LEDControl, 1, 1),
    (osdp.Capability.AudibleControl, 1, 1),
    (osdp.Capability.CheckCharacter, 1, 0),
    (osdp.Capability.ContactStatusMonitoring, 1, 1),
]


class Channel(osdp.Channel):
    def __init__(self, bus: Bus) -> None:
        super().__init__()
        self.bus = bus
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.muted = False
        self.rewrite = None  # a man in the middle: bytes the PD sends → bytes on the wire

    def push(self, data: bytes) -> None:
        if self.muted:
            return
        with self.lock:
            self.buf += data

    def read(self, max_bytes: int) -> bytes:
        with self.lock:
            out = bytes(self.buf[:max_bytes])
            del self.buf[:max_bytes]
        return out

    def write(self, buf: bytes) -> int:
        if self.muted:
            return len(buf)
        out = self.rewrite(bytes(buf)) if self.rewrite else bytes(buf)
        try:
            os.write(self.bus.master, out)
            return len(buf)
        except OSError:
            return 0

    def flush(self) -> None:
        pass


class Bus:
    def __init__(self) -> None:
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.channels: list[Channel] = []
        self._stop = False
        self._thread = threading.Thread(target=self._hub, name="osdp-wire", daemon=True)
        self._thread.start()

    def channel(self) -> Channel:
        ch = Channel(self)
        self.channels.append(ch)
        return ch

    def _hub(self) -> None:
        while not self._stop:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                time.sleep(0.01)
                continue
            for ch in list(self.channels):
                ch.push(data)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)


class Reader:
    """One libosdp PD on the bus; ``commands`` collects what the CP asked of it."""

    def __init__(self, bus: Bus, address: int = 1, *, scbk: bytes | None = None, install_mode: bool = False,
                 enforce_secure: bool = False, caps=None) -> None:
        self.bus = bus
        self.address = address
        self.channel = bus.channel()
        self.commands: list[dict] = []
        self.keyset: bytes | None = None
        flags = []
        if install_mode:
            flags.append(osdp.LibFlag.InstallMode)
        if enforce_secure:
            flags.append(osdp.LibFlag.EnforceSecure)
        info = osdp.PDInfo(address, self.channel, scbk=scbk, flags=flags,
                           id=osdp.PdId(2, 17, 0x00A1B2, 123456 + address, 0x010203))
        self.pd = osdp.PeripheralDevice(info, osdp.PDCapabilities(caps or CAPS), log_level=osdp.LogLevel.Emergency,
                                        command_handler=self._on_command)
        self.pd.start()

    def _on_command(self, cmd: dict):
        self.commands.append(cmd)
        if cmd.get("command") == osdp.Command.Keyset:
            self.keyset = bytes(cmd["data"])
        return 0, None

    def card(self, bits: str) -> None:
        n = len(bits)
        padded = bits + "0" * (-n % 8)
        data = int(padded, 2).to_bytes(len(padded) // 8, "big")
        self.pd.submit_event({"event": osdp.Event.CardRead, "reader_no": 0, "format": osdp.CardFormat.Wiegand,
                              "direction": 0, "data": data, "length": n})

    def keys(self, keys: str) -> None:
        code = {"*": 0x7F, "#": 0x0D}
        data = bytes(code.get(k, ord(k)) for k in keys)
        self.pd.submit_event({"event": osdp.Event.KeyPress, "reader_no": 0, "data": data})

    def tamper(self, tamper: bool, power: bool = False) -> None:
        self.pd.submit_event({"event": osdp.Event.Status, "type": osdp.StatusReportType.Local,
                              "nr_entries": 2, "report": bytes((int(tamper), int(power)))})

    def stop(self) -> None:
        if self.pd.thread is not None:
            self.pd.stop()
        if self.channel in self.bus.channels:
            self.bus.channels.remove(self.channel)


def wait_for(predicate, timeout: float, step: float = 0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class Cp:
    """Our control panel on the bus thread, collecting (monotonic time, event)."""

    def __init__(self, bus: Bus | None, configs: list[PdConfig], *, port: str | None = None,
                 reopen_interval: float = 1.0, **kw) -> None:
        self.events: list[tuple[float, object]] = []
        self.lock = threading.Lock()
        self.cp = ControlPanel(configs, random=os.urandom, now=time.monotonic(), **kw)
        self.port = SerialPort(port or bus.port, baud=115200).open()
        self.runner = BusThread(self.cp, self.port, self._deliver, reopen_interval=reopen_interval)
        self.runner.start()

    def _deliver(self, events):
        now = time.monotonic()
        with self.lock:
            self.events += [(now, e) for e in events]

    def of(self, *types, address=None):
        with self.lock:
            return [e for _, e in self.events if isinstance(e, types) and (address is None or e.address == address)]

    def when(self, typ, address=None, after=0.0):
        with self.lock:
            return next((t for t, e in self.events if isinstance(e, typ) and t >= after
                         and (address is None or e.address == address)), None)

    def online(self, address=1):
        return self.runner.info(address)["state"] == "online"

    def secure(self, address=1):
        return self.runner.info(address)["secure"]

    def stop(self):
        self.runner.stop()
        self.port.close()
