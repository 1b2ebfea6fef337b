"""The serial port wrapper on real pty pairs: I/O, clear errors, reopening."""

from __future__ import annotations

import os
import pty
import select
import time

import pytest
from accessd.wiring.serial_port import PortLost, SerialPort, SerialPortError


def make_pty():
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


def read_until(port, n, timeout=2.0):
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        out += port.read()
        time.sleep(0.005)
    return out


def test_read_write_over_a_pty():
    master, name = make_pty()
    with SerialPort(name, baud=9600) as port:
        assert port.read() == b""  # never blocks
        assert port.read(ready=False) == b""
        os.write(master, b"\x53\x81hello")
        assert read_until(port, 7) == b"\x53\x81hello"
        port.write(b"\xff\x53abc")
        assert os.read(master, 100) == b"\xff\x53abc"
        assert isinstance(port.fileno(), int)
    os.close(master)


def test_missing_port_is_named():
    with pytest.raises(SerialPortError, match=r"serial port /dev/ttyDOESNOTEXIST: not found") as exc:
        SerialPort("/dev/ttyDOESNOTEXIST").open()
    assert exc.value.port == "/dev/ttyDOESNOTEXIST"


def test_busy_port_is_named():
    master, name = make_pty()
    with SerialPort(name):
        with pytest.raises(SerialPortError, match=f"serial port {name}: busy"):
            SerialPort(name).open()
    os.close(master)


def test_bad_url_is_named():
    with pytest.raises(SerialPortError, match="serial port nosuch://x"):
        SerialPort("nosuch://x").open()


def test_loop_url_works_without_a_file_descriptor():
    with SerialPort("loop://", baud=115200) as port:
        port.write(b"abc")
        assert read_until(port, 3) == b"abc"


def test_rs485_mode_on_a_device_without_it_is_a_clear_error():
    master, name = make_pty()
    with pytest.raises(SerialPortError, match=f"serial port {name}: kernel RS485 mode"):
        SerialPort(name, rs485=True).open()
    os.close(master)


def test_adapter_unplugged_and_back(tmp_path):
    """A USB adapter path (a symlink here) disappears and comes back as a new device."""
    link = tmp_path / "ttyUSB0"
    master, name = make_pty()
    link.symlink_to(name)
    port = SerialPort(str(link)).open()
    os.close(master)  # unplugged: the device hangs up
    with pytest.raises(PortLost, match=f"serial port {link}: lost"):
        for _ in range(100):  # as the bus thread does: wait for readiness, then read
            ready, _, _ = select.select([port.fileno()], [], [], 0.05)
            port.read(ready=bool(ready))
    assert not port.is_open
    link.unlink()
    assert port.reopen() is False  # still gone
    assert f"serial port {link}: not found" in port.last_error
    master2, name2 = make_pty()
    link.symlink_to(name2)
    assert port.reopen() is True
    os.write(master2, b"back")
    assert read_until(port, 4) == b"back"
    port.close()
    os.close(master2)
