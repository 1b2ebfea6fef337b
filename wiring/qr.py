"""QR scanners: a serial (line-terminated) scanner and a USB HID (keyboard-wedge) scanner.

Both run one reader thread each, in the style of the OSDP bus thread
(``accessd.reader_osdp.BusThread``): ``select()`` on the device and a wake
pipe, bytes or key events decoded by :mod:`accessd.protocols.qr`, and every
resulting event handed to ``deliver(event, now)`` **on that thread** —
``event`` is a :class:`~accessd.protocols.qr.QrText` or
:class:`~accessd.protocols.qr.QrInvalid`, ``now`` the ``clock()`` (monotonic
seconds) when the data was read.  The daemon passes a ``deliver`` that hops to
its event loop with ``loop.call_soon_threadsafe``.

* :class:`SerialQrScanner` opens any pyserial URL through
  :class:`accessd.wiring.serial_port.SerialPort` (``serial_for_url``, exclusive).
* :class:`EvdevQrScanner` opens an input event device with python-evdev
  (imported only when such a scanner is built; ``pip install accessd[qr-hid]``)
  and ``grab()``\\ s it, so the scanner's keystrokes reach no console, X session
  or other program.  Use a stable path such as ``/dev/input/by-id/usb-…-event-kbd``.

A device that is missing at start or goes away (unplugged) is retried every
``reopen_interval`` seconds; ``on_status(status, reason)`` is called on the
thread with ``"connected"`` or ``"not_connected"`` (and why) whenever that
changes, and :attr:`status` / :attr:`last_error` can be read at any time.
``stop()`` wakes the thread, joins it and releases the device (ungrab, close).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from accessd.protocols.qr import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_TERMINATOR,
    EV_KEY,
    HidDecoder,
    LineAssembler,
    QrConfigError,
    QrEvent,
    check_max_length,
    check_terminator,
)

from .errors import ScannerError, ScannerLost
from .serial_port import PortLost, SerialPort, SerialPortError

log = logging.getLogger("accessd.qr")

Deliver = Callable[[QrEvent, float], None]
OnStatus = Callable[[str, "str | None"], None]


class _ScannerThread:
    """The reader thread shared by both scanners; subclasses open, read and close the device."""

    thread_name = "qr-scanner"

    def __init__(self, device: str, deliver: Deliver, *, on_status: OnStatus | None,
                 clock: Callable[[], float], reopen_interval: float) -> None:
        if reopen_interval <= 0:
            raise ValueError(f"reopen_interval must be positive, got {reopen_interval}")
        self.device = device
        self.deliver = deliver
        self.on_status = on_status
        self.clock = clock
        self.reopen_interval = reopen_interval
        self.status = "not_connected"
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._closed = False

    # ------------------------------------------------------------ subclass hooks
    def open(self) -> None:  # raises a WiringError naming the device
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _fileno(self) -> int | None:
        raise NotImplementedError

    def _read(self, ready: bool) -> list[QrEvent]:  # raises a WiringError when the device is lost
        raise NotImplementedError

    def _is_open(self) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the reader thread (it opens the device, and reopens it when lost)."""
        if self._closed:
            raise RuntimeError(f"{self.device}: scanner was stopped; make a new one")
        if self._thread is not None:
            raise RuntimeError(f"{self.device}: scanner already started")
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and release the device; safe to call twice or before ``start``."""
        if self._closed:
            return
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("%s: reader thread did not stop within %g s", self.device, timeout)
                return
        self.close()
        self._closed = True
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------ the thread
    def _set_status(self, status: str, reason: str | None) -> None:
        changed = status != self.status or reason != self.last_error
        self.status, self.last_error = status, reason
        if status == "connected":
            log.info("QR scanner %s connected", self.device)
        elif changed:
            log.warning("QR scanner %s not connected: %s; retrying every %g s", self.device, reason,
                        self.reopen_interval)
        if changed and self.on_status is not None:
            try:
                self.on_status(status, reason)
            except Exception:
                log.exception("QR scanner %s: on_status callback failed", self.device)

    def _try_open(self) -> None:
        try:
            self.open()
        except (ScannerError, SerialPortError) as exc:
            self._set_status("not_connected", str(exc))
            return
        self._set_status("connected", None)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug, not a device problem: say so instead of dying silently
            log.exception("QR scanner %s: reader thread failed", self.device)
            self._set_status("not_connected", f"reader thread failed ({exc!r})")

    def _loop(self) -> None:
        next_open = 0.0
        while not self._stop.is_set():
            if not self._is_open() and self.clock() >= next_open:
                next_open = self.clock() + self.reopen_interval
                self._try_open()
            fd = self._fileno() if self._is_open() else None
            if self._is_open():
                timeout = None if fd is not None else 0.005  # a URL without a descriptor (loop://): poll
            else:
                timeout = max(0.0, next_open - self.clock())
            rlist = [self._wake_r] if fd is None else [self._wake_r, fd]
            ready, _, _ = select.select(rlist, [], [], timeout)
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 64)
                except BlockingIOError:
                    pass
            if self._stop.is_set():
                break
            if self._is_open() and (fd is None or fd in ready):
                try:
                    events = self._read(fd is not None)
                except (ScannerLost, PortLost) as exc:
                    self.close()
                    self._set_status("not_connected", str(exc))
                    next_open = self.clock() + self.reopen_interval
                    continue
                if events:
                    now = self.clock()
                    for event in events:
                        try:
                            self.deliver(event, now)
                        except Exception:
                            log.exception("QR scanner %s: deliver callback failed", self.device)


class SerialQrScanner(_ScannerThread):
    """A serial QR scanner on any pyserial URL; texts end with ``terminator``."""

    thread_name = "qr-serial"

    def __init__(self, url: str, deliver: Deliver, *, baud: int = 9600,
                 terminator: bytes | str = DEFAULT_TERMINATOR, max_length: int = DEFAULT_MAX_LENGTH,
                 on_status: OnStatus | None = None, clock: Callable[[], float] = time.monotonic,
                 reopen_interval: float = 1.0) -> None:
        self.lines = LineAssembler(terminator=terminator, max_length=max_length)
        self.port = SerialPort(url, baud=baud)
        super().__init__(url, deliver, on_status=on_status, clock=clock, reopen_interval=reopen_interval)

    def open(self) -> None:
        self.port.open()  # SerialPortError names the port
        self.lines.reset()

    def close(self) -> None:
        self.port.close()

    def _is_open(self) -> bool:
        return self.port.is_open

    def _fileno(self) -> int | None:
        return self.port.fileno()

    def _read(self, ready: bool) -> list[QrEvent]:
        data = self.port.read(ready=ready)
        return self.lines.feed(data) if data else []


def _open_evdev(path: str) -> Any:
    import evdev  # only when an evdev scanner is configured

    return evdev.InputDevice(path)


class EvdevQrScanner(_ScannerThread):
    """A USB HID scanner that types like a US keyboard, read (and grabbed) through evdev.

    ``open_device(path)`` returns an object like ``evdev.InputDevice``
    (``fileno()``, ``read()`` yielding events with ``type``/``code``/``value``,
    ``grab()``, ``ungrab()``, ``close()``); it defaults to ``evdev.InputDevice``,
    and python-evdev missing is a :class:`ScannerError` at construction.
    """

    thread_name = "qr-evdev"

    def __init__(self, path: str, deliver: Deliver, *, max_length: int = DEFAULT_MAX_LENGTH,
                 grab: bool = True, on_status: OnStatus | None = None,
                 clock: Callable[[], float] = time.monotonic, reopen_interval: float = 1.0,
                 open_device: Callable[[str], Any] | None = None) -> None:
        if open_device is None:
            try:
                import evdev  # noqa: F401
            except ImportError:
                raise ScannerError(f"evdev {path}", "python-evdev is not installed "
                                   "(pip install 'accessd[qr-hid]', or Debian's python3-evdev)") from None
            open_device = _open_evdev
        self.keys = HidDecoder(max_length=max_length)
        self.grab = grab
        self.open_device = open_device
        self._dev: Any = None
        super().__init__(path, deliver, on_status=on_status, clock=clock, reopen_interval=reopen_interval)

    def open(self) -> None:
        if self._dev is not None:
            return
        name = f"evdev {self.device}"
        try:
            dev = self.open_device(self.device)
        except FileNotFoundError:
            raise ScannerError(name, "not found (is the scanner plugged in and the path right?)") from None
        except PermissionError:
            raise ScannerError(name, "permission denied (add the service user to the input group)") from None
        except OSError as exc:
            raise ScannerError(name, f"cannot open ({exc})") from None
        if self.grab:
            try:
                dev.grab()
            except OSError as exc:
                try:
                    dev.close()
                except OSError:
                    pass
                reason = ("grabbed by another program" if exc.errno == errno.EBUSY else f"cannot grab ({exc})")
                raise ScannerError(name, reason) from None
        self.keys.reset()
        self._dev = dev

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        if self.grab:
            try:
                dev.ungrab()
            except OSError:
                pass  # already gone (unplugged)
        try:
            dev.close()
        except OSError:
            pass

    def _is_open(self) -> bool:
        return self._dev is not None

    def _fileno(self) -> int | None:
        return self._dev.fileno()

    def _read(self, ready: bool) -> list[QrEvent]:
        out: list[QrEvent] = []
        try:
            for event in self._dev.read():
                if event.type == EV_KEY:
                    try:
                        out += self.keys.feed(event.code, event.value)
                    except ValueError as exc:  # not a key event evdev documents
                        log.warning("QR scanner %s: ignored %s", self.device, exc)
        except BlockingIOError:
            pass
        except OSError as exc:
            raise ScannerLost(f"evdev {self.device}", f"lost ({exc})") from None
        return out


def make_scanner(deliver: Deliver, *, port: str | None = None, evdev: str | None = None, baud: int = 9600,
                 terminator: bytes | str = DEFAULT_TERMINATOR, max_length: int = DEFAULT_MAX_LENGTH,
                 grab: bool = True, on_status: OnStatus | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 reopen_interval: float = 1.0) -> SerialQrScanner | EvdevQrScanner:
    """The scanner a ``[reader.qr]`` section describes: ``port`` (serial) or ``evdev`` (HID), not both.

    Keyword names are the config keys.  A wrong setting is a ``ValueError``
    naming the key (``reader.qr.terminator: …``); ``evdev`` set without
    python-evdev installed is a :class:`ScannerError`.  The scanner is not started.
    """
    if (port is None) == (evdev is None):
        raise ValueError("reader.qr: set either port (a serial scanner) or evdev (a HID scanner), not "
                         + ("both" if port is not None else "neither"))
    try:
        check_terminator(terminator)
        check_max_length(max_length)
    except QrConfigError as exc:
        raise ValueError(f"reader.qr.{exc}") from None
    if port is not None:
        if not isinstance(port, str) or not port:
            raise ValueError(f"reader.qr.port: expected a device path or pyserial URL, got {port!r}")
        if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"reader.qr.baud: expected a positive integer, got {baud!r}")
        return SerialQrScanner(port, deliver, baud=baud, terminator=terminator, max_length=max_length,
                               on_status=on_status, clock=clock, reopen_interval=reopen_interval)
    if not isinstance(evdev, str) or not evdev:
        raise ValueError(f"reader.qr.evdev: expected an input event device path, got {evdev!r}")
    if not isinstance(grab, bool):
        raise ValueError(f"reader.qr.grab: expected true or false, got {grab!r}")
    return EvdevQrScanner(evdev, deliver, max_length=max_length, grab=grab, on_status=on_status,
                          clock=clock, reopen_interval=reopen_interval)
