"""The RS485/serial port of an OSDP bus: pyserial with clear errors and reopening.

``SerialPort(url, baud=..., rs485=False)`` opens any pyserial URL (a device path,
``loop://``, ``socket://``…) non-blocking and exclusive.  Errors name the port:
``SerialPortError("serial port /dev/ttyUSB0: not found (is the adapter plugged in?)")``.
When the device disappears (a USB adapter unplugged) reads and writes raise
:class:`PortLost`; ``reopen()`` tries again and succeeds once it is back.
"""

from __future__ import annotations

import errno
import os
import select

import serial
from serial.rs485 import RS485Settings

from .errors import WiringError


class SerialPortError(WiringError, OSError):
    """The serial port cannot be used; the message names it."""

    def __init__(self, port: str, reason: str) -> None:
        self.port = port
        self.reason = reason
        super().__init__(f"serial port {port}: {reason}")


class PortLost(SerialPortError):
    """The port went away while in use (for example a USB adapter was unplugged)."""


class SerialPort:
    def __init__(self, url: str, *, baud: int = 9600, rs485: bool = False, exclusive: bool = True) -> None:
        if baud <= 0:
            raise ValueError(f"baud must be positive, got {baud}")
        self.url = url
        self.baud = baud
        self.rs485 = rs485
        self.exclusive = exclusive
        self._port: serial.SerialBase | None = None
        self.last_error: str | None = None  # why the last open/reopen failed
        self._fd: int | None = None

    # ---------------------------------------------------------------- lifecycle
    def open(self) -> SerialPort:
        if self._port is not None:
            return self
        url = self.url
        if "://" not in url and not os.path.exists(url):
            raise SerialPortError(url, "not found (is the adapter plugged in and the path right?)")
        try:
            port = serial.serial_for_url(url, baudrate=self.baud, timeout=0, write_timeout=2,
                                         do_not_open=True)
            if self.exclusive and hasattr(port, "exclusive"):
                port.exclusive = True
            port.open()
        except serial.SerialException as exc:
            raise SerialPortError(url, self._explain(exc)) from None
        except (OSError, ValueError) as exc:
            raise SerialPortError(url, self._explain(exc)) from None
        if self.rs485:
            try:
                port.rs485_mode = RS485Settings(rts_level_for_tx=True, rts_level_for_rx=False)
            except (ValueError, OSError, serial.SerialException) as exc:
                port.close()
                raise SerialPortError(url, f"kernel RS485 mode not supported by this device ({exc})") from None
        self._port = port
        try:
            fd = port.fileno()
            os.set_blocking(fd, False)
            self._fd = fd
        except (AttributeError, NotImplementedError, serial.SerialException, OSError):
            self._fd = None  # a URL without a file descriptor (loop://, socket://…)
        return self

    @staticmethod
    def _explain(exc: Exception) -> str:
        text = str(exc)
        err = getattr(exc, "errno", None)
        if err in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text or "busy" in text.lower():
            return "busy (another program has it open)"
        if err == errno.ENOENT or "No such file" in text:
            return "not found (is the adapter plugged in and the path right?)"
        if err == errno.EACCES or "Permission denied" in text:
            return "permission denied (add the service user to the dialout group)"
        return text

    def close(self) -> None:
        port, self._port = self._port, None
        self._fd = None
        if port is not None:
            try:
                port.close()
            except (OSError, serial.SerialException):
                pass

    def reopen(self) -> bool:
        """Close and try to open again; True when the port is usable."""
        self.close()
        try:
            self.open()
        except SerialPortError as exc:
            self.last_error = str(exc)
            return False
        self.last_error = None
        return True

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def __enter__(self) -> SerialPort:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- I/O
    def fileno(self) -> int | None:
        """The file descriptor to wait on, or None for URLs without one (loop://)."""
        if self._port is None:
            raise SerialPortError(self.url, "not open")
        return self._fd

    def read(self, *, ready: bool = False) -> bytes:
        """Whatever is waiting (possibly b""); never blocks.

        ``ready``: the caller's ``select`` said the port is readable, so no data at
        all means the device went away (a USB adapter unplugged).

        With a file descriptor (a real device) this is one ``os.read`` on the
        non-blocking fd: pyserial's ``in_waiting`` ioctl and internal ``select``
        cost more than the OSDP control panel itself on every poll.
        """
        port = self._port
        if port is None:
            raise PortLost(self.url, "not open")
        fd = self._fd
        try:
            if fd is None:
                n = port.in_waiting
                return port.read(n or 1)
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return b""
            if not data and ready:
                raise OSError(errno.EIO, "readable but no data (device disconnected?)")
            return data
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise PortLost(self.url, f"lost ({exc})") from None

    def write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise PortLost(self.url, "not open")
        fd = self._fd
        try:
            if fd is None:
                port.write(data)
                port.flush()
                return
            view = memoryview(data)
            while view:
                try:
                    n = os.write(fd, view)
                except BlockingIOError:
                    select.select([], [fd], [], 0.5)
                    continue
                view = view[n:]
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise PortLost(self.url, f"lost while writing ({exc})") from None

    def set_baud(self, baud: int) -> None:
        self.baud = baud
        if self._port is not None:
            self._port.baudrate = baud
