"""QR scanners on real file descriptors: a serial scanner on a pty, an evdev scanner.

The evdev scanner is tested two ways: with a real virtual keyboard through
/dev/uinput where the kernel has it (CONFIG_INPUT_UINPUT), and everywhere with
a stand-in device that is a real pipe carrying the kernel's ``struct input_event``
records, read by the same thread and decoded by the same HidDecoder.
"""

from __future__ import annotations

import errno
import os
import pty
import queue
import struct
import sys
import time
import types

import pytest
from accessd.protocols.qr import QrInvalid, QrText
from accessd.wiring.errors import ScannerError, WiringError
from accessd.wiring.qr import EvdevQrScanner, SerialQrScanner, make_scanner
from accessd.wiring.serial_port import SerialPort

WAIT = 10.0  # generous upper bound for a thread hop on a loaded 2-core box; never a timing assertion


class Collector:
    """``deliver`` and ``on_status`` callbacks that queue what they get."""

    def __init__(self):
        self.events = queue.Queue()
        self.statuses = queue.Queue()

    def deliver(self, event, now):
        self.events.put((event, now))

    def on_status(self, status, reason):
        self.statuses.put((status, reason))

    def next_event(self):
        return self.events.get(timeout=WAIT)

    def texts(self, n):
        return [self.next_event()[0] for _ in range(n)]

    def status(self):
        return self.statuses.get(timeout=WAIT)


def make_pty():
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


# --------------------------------------------------------------------- serial

def test_serial_scanner_delivers_texts_with_a_monotonic_time():
    master, name = make_pty()
    got = Collector()
    scanner = SerialQrScanner(name, got.deliver, on_status=got.on_status)
    scanner.start()
    try:
        assert got.status() == ("connected", None)
        assert scanner.status == "connected"
        before = time.monotonic()
        os.write(master, b"AQ1-FIRST\r")
        event, at = got.next_event()
        assert event == QrText(text="AQ1-FIRST")
        assert before <= at <= time.monotonic()
        # CRLF, split writes, two texts in one write
        os.write(master, b"AQ1-SEC")
        os.write(master, b"OND\r\nAQ1-THIRD\r\n")
        assert got.texts(2) == [QrText(text="AQ1-SECOND"), QrText(text="AQ1-THIRD")]
        # a CR really reaches the scanner as CR (the pty is raw, no ICRNL)
        os.write(master, "Grüße\r".encode())
        assert got.texts(1) == [QrText(text="Grüße")]
    finally:
        scanner.stop()
        os.close(master)


def test_serial_scanner_terminator_and_limit():
    master, name = make_pty()
    got = Collector()
    scanner = SerialQrScanner(name, got.deliver, terminator="\n", max_length=8, baud=115200,
                              on_status=got.on_status)
    with scanner:
        assert got.status()[0] == "connected"  # pyserial flushes input on open: write after it
        os.write(master, b"12345678\n123456789\nok\n\xff\n")
        events = got.texts(3 + 1)
    os.close(master)
    assert events[0] == QrText(text="12345678")
    assert isinstance(events[1], QrInvalid) and events[1].reason == "too_long"
    assert events[2] == QrText(text="ok")
    assert isinstance(events[3], QrInvalid) and events[3].reason == "not_utf8" and events[3].data == b"\xff"


def test_serial_scanner_stop_releases_the_port():
    master, name = make_pty()
    got = Collector()
    scanner = SerialQrScanner(name, got.deliver, on_status=got.on_status)
    scanner.start()
    assert got.status()[0] == "connected"
    scanner.stop()
    scanner.stop()  # twice is fine
    with SerialPort(name):  # exclusive: only possible once the scanner let go
        pass
    os.close(master)
    with pytest.raises(RuntimeError, match="stopped"):
        scanner.start()


def test_serial_scanner_missing_port_is_reported_and_retried():
    got = Collector()
    opens = []
    scanner = SerialQrScanner("/dev/ttyQRMISSING", got.deliver, on_status=got.on_status, reopen_interval=0.05)
    real_open = scanner.port.open

    def counting_open():
        opens.append(1)
        return real_open()

    scanner.port.open = counting_open
    with scanner:
        status, reason = got.status()
        assert status == "not_connected"
        assert reason == "serial port /dev/ttyQRMISSING: not found (is the adapter plugged in and the path right?)"
        deadline = time.monotonic() + WAIT
        while len(opens) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(opens) >= 3  # it keeps trying
        assert got.statuses.empty()  # the same failure is reported once
        assert scanner.last_error == reason


def test_serial_scanner_reports_a_lost_port():
    master, name = make_pty()
    got = Collector()
    with SerialQrScanner(name, got.deliver, on_status=got.on_status, reopen_interval=0.05) as scanner:
        assert got.status()[0] == "connected"
        os.close(master)  # the far end goes away: reads fail with EIO
        status, reason = got.status()
        assert status == "not_connected"
        assert reason.startswith(f"serial port {name}: ")
        assert scanner.status == "not_connected"


def test_a_failing_callback_does_not_stop_the_scanner():
    master, name = make_pty()
    seen = queue.Queue()

    def deliver(event, now):
        seen.put(event)
        if event.text == "boom":
            raise RuntimeError("subscriber bug")

    status = Collector()
    with SerialQrScanner(name, deliver, on_status=status.on_status):
        assert status.status()[0] == "connected"
        os.write(master, b"boom\r")
        assert seen.get(timeout=WAIT) == QrText(text="boom")
        os.write(master, b"after\r")
        assert seen.get(timeout=WAIT) == QrText(text="after")
    os.close(master)


def test_serial_scanner_over_a_pyserial_url_without_a_descriptor():
    """``loop://`` has no fd: the thread polls it (any pyserial URL works)."""
    got = Collector()
    scanner = SerialQrScanner("loop://", got.deliver)
    with scanner:
        deadline = time.monotonic() + WAIT
        while not scanner.port.is_open and time.monotonic() < deadline:
            time.sleep(0.01)
        scanner.port.write(b"AQ1-LOOP\r")
        assert got.texts(1) == [QrText(text="AQ1-LOOP")]


def test_bad_settings_fail_at_construction():
    with pytest.raises(ValueError, match="terminator"):
        SerialQrScanner("/dev/null", print, terminator=b"")
    with pytest.raises(ValueError, match="baud"):
        SerialQrScanner("/dev/null", print, baud=0)
    with pytest.raises(ValueError, match="reopen_interval"):
        SerialQrScanner("/dev/null", print, reopen_interval=0)


# --------------------------------------------------------------------- evdev

INPUT_EVENT = struct.Struct("llHHi")  # struct input_event: timeval, type, code, value (this platform's C layout)
EV_SYN, EV_KEY, EV_MSC = 0, 1, 4


def record(type_, code, value):
    return INPUT_EVENT.pack(0, 0, type_, code, value)


def keyboard_report(keys):
    """What the kernel sends for a list of (code, value): each key with its MSC_SCAN and a SYN_REPORT."""
    out = b""
    for code, value in keys:
        out += record(EV_MSC, 4, 0x70000 + code) + record(EV_KEY, code, value) + record(EV_SYN, 0, 0)
    return out


class PipeInputDevice:
    """Stands in for evdev.InputDevice: a real pipe carrying ``struct input_event`` records."""

    def __init__(self, path, *, busy=False):
        self.path = path
        self.busy = busy
        self.fd, self.w = os.pipe()
        os.set_blocking(self.fd, False)
        self.grabbed = False
        self.closed = False
        self.calls = []

    def fileno(self):
        return self.fd

    def grab(self):
        self.calls.append("grab")
        if self.busy:
            raise OSError(errno.EBUSY, "Device or resource busy")
        self.grabbed = True

    def ungrab(self):
        self.calls.append("ungrab")
        self.grabbed = False

    def close(self):
        self.calls.append("close")
        if self.closed:
            return
        self.closed = True
        os.close(self.fd)
        if self.w is not None:
            os.close(self.w)

    def unplug(self):
        os.close(self.w)
        self.w = None

    def read(self):  # like evdev: BlockingIOError when nothing waits, OSError(ENODEV) once unplugged
        data = os.read(self.fd, 4096)
        if not data:
            raise OSError(errno.ENODEV, "No such device")
        for i in range(0, len(data), INPUT_EVENT.size):
            _, _, type_, code, value = INPUT_EVENT.unpack_from(data, i)
            yield types.SimpleNamespace(type=type_, code=code, value=value)


def press(code):
    return [(code, 1), (code, 0)]


SHIFT, ENTER = 42, 28
# "AQ1-x" as a US-layout scanner types it, then Enter
AQ1_X = [(SHIFT, 1), *press(30), *press(16), (SHIFT, 0), *press(2), *press(12), *press(45), *press(ENTER)]


def test_evdev_scanner_grabs_and_delivers_texts():
    devices = []

    def open_device(path):
        devices.append(PipeInputDevice(path))
        return devices[-1]

    got = Collector()
    scanner = EvdevQrScanner("/dev/input/by-id/usb-scanner-event-kbd", got.deliver, on_status=got.on_status,
                             open_device=open_device)
    scanner.start()
    try:
        assert got.status() == ("connected", None)
        [dev] = devices
        assert dev.path == "/dev/input/by-id/usb-scanner-event-kbd"
        assert dev.grabbed
        before = time.monotonic()
        os.write(dev.w, keyboard_report(AQ1_X))
        event, at = got.next_event()
        assert event == QrText(text="AQ1-x")
        assert before <= at <= time.monotonic()
        os.write(dev.w, keyboard_report(AQ1_X) + keyboard_report([*press(30), *press(ENTER)]))
        assert got.texts(2) == [QrText(text="AQ1-x"), QrText(text="a")]
    finally:
        scanner.stop()
    assert devices[0].calls[-2:] == ["ungrab", "close"]


def test_evdev_scanner_without_grab_never_grabs():
    dev = PipeInputDevice("/dev/input/event9")
    got = Collector()
    with EvdevQrScanner("/dev/input/event9", got.deliver, grab=False, open_device=lambda p: dev):
        os.write(dev.w, keyboard_report(AQ1_X))
        assert got.texts(1) == [QrText(text="AQ1-x")]
    assert "grab" not in dev.calls and dev.closed


def test_evdev_unknown_key_is_named():
    dev = PipeInputDevice("/dev/input/event9")
    got = Collector()
    with EvdevQrScanner("/dev/input/event9", got.deliver, open_device=lambda p: dev):
        os.write(dev.w, keyboard_report([*press(30), *press(63), *press(ENTER)]))
        [event] = got.texts(1)
    assert event == QrInvalid(reason="unknown_key", data=b"a", offset=1,
                              detail="KEY_F5 (63) types no character in the US layout")


def test_evdev_scanner_reopens_after_unplug():
    devices = []

    def open_device(path):
        devices.append(PipeInputDevice(path))
        return devices[-1]

    got = Collector()
    with EvdevQrScanner("/dev/input/event9", got.deliver, on_status=got.on_status, open_device=open_device,
                        reopen_interval=0.05):
        assert got.status() == ("connected", None)
        os.write(devices[0].w, keyboard_report([(SHIFT, 1), *press(30)]))  # unplugged mid-text, shift held
        devices[0].unplug()
        status, reason = got.status()
        assert (status, reason) == ("not_connected", "evdev /dev/input/event9: lost ([Errno 19] No such device)")
        assert got.status() == ("connected", None)
        assert len(devices) == 2 and devices[0].closed
        os.write(devices[1].w, keyboard_report([*press(30), *press(ENTER)]))
        assert got.texts(1) == [QrText(text="a")]  # the stale "A" and shift state were dropped


def test_evdev_busy_device_is_named():
    dev = PipeInputDevice("/dev/input/event9", busy=True)
    got = Collector()
    with EvdevQrScanner("/dev/input/event9", got.deliver, on_status=got.on_status, open_device=lambda p: dev):
        assert got.status() == ("not_connected", "evdev /dev/input/event9: grabbed by another program")
    assert dev.closed  # not left open when the grab fails


@pytest.mark.parametrize(("exc", "reason"), [
    (FileNotFoundError(errno.ENOENT, "No such file"), "not found (is the scanner plugged in and the path right?)"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied (add the service user to the input group)"),
])
def test_evdev_open_errors_are_typed_and_named(exc, reason):
    def open_device(path):
        raise exc

    scanner = EvdevQrScanner("/dev/input/event9", print, open_device=open_device)
    with pytest.raises(ScannerError) as info:
        scanner.open()
    assert str(info.value) == f"evdev /dev/input/event9: {reason}"
    assert isinstance(info.value, WiringError) and info.value.device == "evdev /dev/input/event9"
    scanner.stop()


def test_a_thread_failure_is_reported_not_silent():
    def open_device(path):
        raise RuntimeError("bug in the opener")

    got = Collector()
    with EvdevQrScanner("/dev/input/event9", got.deliver, on_status=got.on_status, open_device=open_device):
        assert got.status() == ("not_connected", "reader thread failed (RuntimeError('bug in the opener'))")


def test_evdev_default_opener_is_real_evdev():
    """Without ``open_device`` the real python-evdev opens the path (imported lazily)."""
    scanner = EvdevQrScanner("/dev/input/event-qr-missing", print)
    with pytest.raises(ScannerError, match="evdev /dev/input/event-qr-missing: not found"):
        scanner.open()
    scanner.stop()


def test_missing_python_evdev_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "evdev", None)  # makes ``import evdev`` fail
    with pytest.raises(ScannerError, match=r"python-evdev is not installed \(pip install 'accessd\[qr-hid\]'"):
        EvdevQrScanner("/dev/input/event9", print)


def test_wiring_qr_imports_evdev_only_when_asked():
    import subprocess

    code = ("import sys; import accessd.wiring.qr as q; "
            "q.SerialQrScanner('/dev/null', print).stop(); "
            "print('evdev' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_real_evdev_reads_the_records_the_pipe_device_sends():
    """python-evdev's own reader (its C extension, the kernel's struct layout) on the pipe:
    the records the stand-in device sends are what a real device sends, and the scanner
    decodes evdev's InputEvent objects."""
    from evdev import InputDevice

    class PipeEvdev(InputDevice):
        def __init__(self, fd):  # no ioctls: a pipe is not an input device
            self.fd = fd
            self.path = "pipe"

    r, w = os.pipe()
    os.set_blocking(r, False)
    got = Collector()
    with EvdevQrScanner("/dev/input/event9", got.deliver, grab=False, open_device=lambda p: PipeEvdev(r)):
        os.write(w, keyboard_report(AQ1_X))
        assert got.texts(1) == [QrText(text="AQ1-x")]
    os.close(w)
    with pytest.raises(OSError):
        os.fstat(r)  # the scanner closed it through InputDevice.close()


@pytest.mark.skipif(not os.path.exists("/dev/uinput"),
                    reason="/dev/uinput is absent (this kernel has no CONFIG_INPUT_UINPUT); "
                           "the pipe-backed device above runs the same thread and decoder")
def test_a_real_virtual_keyboard_through_uinput():
    from evdev import InputDevice, UInput, ecodes  # python-evdev is in the test extra

    keys = sorted({code for code, _ in AQ1_X})
    with UInput({ecodes.EV_KEY: keys}, name="accessd-test-qr-scanner") as ui:
        path = ui.device.path  # the /dev/input/eventN the kernel made for it
        assert ui.device.name == "accessd-test-qr-scanner"
        got = Collector()
        with EvdevQrScanner(path, got.deliver, on_status=got.on_status):
            assert got.status() == ("connected", None)
            other = InputDevice(path)
            with pytest.raises(OSError):
                other.grab()  # grabbed: nobody else gets its keystrokes
            other.close()
            for code, value in AQ1_X:
                ui.write(ecodes.EV_KEY, code, value)
                ui.syn()
            assert got.texts(1) == [QrText(text="AQ1-x")]


# --------------------------------------------------------------------- from the config

def test_make_scanner_from_config_keys():
    master, name = make_pty()
    got = Collector()
    scanner = make_scanner(got.deliver, port=name, baud=19200, terminator="\n", max_length=64,
                           on_status=got.on_status)
    assert isinstance(scanner, SerialQrScanner)
    with scanner:
        assert got.status()[0] == "connected"
        os.write(master, b"AQ1-CFG\n")
        assert got.texts(1) == [QrText(text="AQ1-CFG")]
    os.close(master)
    hid = make_scanner(got.deliver, evdev="/dev/input/event-qr-missing", grab=False)
    assert isinstance(hid, EvdevQrScanner) and hid.grab is False
    hid.stop()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, r"reader.qr: set either port \(a serial scanner\) or evdev \(a HID scanner\), not neither"),
    ({"port": "/dev/ttyUSB0", "evdev": "/dev/input/event3"}, "reader.qr: set either port .* not both"),
    ({"port": ""}, "reader.qr.port: expected a device path or pyserial URL"),
    ({"port": "/dev/ttyUSB0", "baud": 0}, "reader.qr.baud: expected a positive integer, got 0"),
    ({"port": "/dev/ttyUSB0", "terminator": ""}, "reader.qr.terminator: expected 1 to 4 bytes"),
    ({"evdev": "/dev/input/event3", "max_length": 0}, "reader.qr.max_length: expected 1–7089, got 0"),
    ({"evdev": 3}, "reader.qr.evdev: expected an input event device path, got 3"),
    ({"evdev": "/dev/input/event3", "grab": "yes"}, "reader.qr.grab: expected true or false"),
])
def test_make_scanner_names_the_wrong_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_scanner(print, **kwargs)


def test_into_an_asyncio_loop_as_the_daemon_will():
    """deliver hops to the loop with call_soon_threadsafe; the text becomes a qr Credential there."""
    import asyncio

    from accessd.protocols.credential import Credential

    master, name = make_pty()

    async def main():
        loop = asyncio.get_running_loop()
        presented = asyncio.Queue()
        connected = asyncio.Event()

        def on_loop(event, now):
            assert isinstance(event, QrText)
            presented.put_nowait((Credential(kind="qr", qr=event.text), now))

        scanner = make_scanner(lambda e, now: loop.call_soon_threadsafe(on_loop, e, now), port=name,
                               on_status=lambda s, r: loop.call_soon_threadsafe(connected.set),
                               clock=loop.time)
        scanner.start()
        try:
            await asyncio.wait_for(connected.wait(), WAIT)
            os.write(master, b"AQ1-LOOP\r")
            credential, at = await asyncio.wait_for(presented.get(), WAIT)
            assert at <= loop.time()
            return credential
        finally:
            scanner.stop()

    assert asyncio.run(main()) == Credential(kind="qr", qr="AQ1-LOOP")
    os.close(master)
