"""The lock relay on gpiozero's MockFactory: normal at start, on every way out."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from accessd.wiring import relay as relay_mod
from accessd.wiring.relay import Relay
from gpiozero.pins.mock import MockFactory, MockPin

ROOT = Path(__file__).resolve().parents[2]


class RecordingPin(MockPin):
    """A mock pin that remembers every level it was driven to, including the first."""

    def __init__(self, factory, info):
        super().__init__(factory, info)
        self.levels: list[bool] = []

    def _change_state(self, value):
        self.levels.append(bool(value))
        return super()._change_state(value)


@pytest.fixture
def factory():
    f = MockFactory(pin_class=RecordingPin)
    yield f
    f.reset()
    f.close()


@pytest.mark.parametrize("normal_state, active_high, locked_level", [
    ("open", True, False),
    ("closed", True, True),
    ("open", False, True),
    ("closed", False, False),
])
def test_line_is_at_normal_level_from_construction(factory, normal_state, active_high, locked_level):
    r = Relay(22, normal_state=normal_state, active_high=active_high, pin_factory=factory)
    pin = factory.pin(22)
    assert pin.function == "output"
    assert pin.state == locked_level
    # the line never showed the unlocked level before the first command
    assert (not locked_level) not in pin.levels
    assert r.status()["state"] == "locked"
    r.unlock()
    assert pin.state == (not locked_level)
    assert r.unlocked and r.energized == (normal_state == "open")
    r.lock()
    assert pin.state == locked_level
    r.close()


def test_set_unlocked_reports_changes(factory):
    r = Relay(22, pin_factory=factory, clock=lambda: 42.0)
    assert r.unlock() is True
    assert r.unlock() is False
    assert r.changed_at == 42.0 and r.changes == 1
    assert r.lock() is True
    assert r.changes == 2
    r.close()


def test_to_normal_forces_level_even_if_line_was_changed_behind_our_back(factory):
    r = Relay(22, pin_factory=factory)
    r._device.on()  # something drove the line without going through the relay
    assert factory.pin(22).state is True
    assert r.to_normal() is True
    assert factory.pin(22).state is False
    r.close()


def test_close_drives_normal_and_rejects_unlock(factory):
    r = Relay(22, pin_factory=factory)
    r.unlock()
    pin = factory.pin(22)
    r.close()
    assert pin.levels[-1] is False  # normal level written before release
    assert r.closed
    with pytest.raises(RuntimeError, match="pin 22 is closed"):
        r.unlock()
    assert r.lock() is False  # locking a closed relay is harmless
    r.close()  # idempotent


def test_with_block_exception_restores_normal(factory):
    pin = factory.pin(22)
    with pytest.raises(ZeroDivisionError):
        with Relay(22, normal_state="open", pin_factory=factory) as r:
            r.unlock()
            assert pin.state is True
            raise ZeroDivisionError("mid-unlock")
    assert pin.levels[-1] is False


def test_all_to_normal_reaches_every_live_relay(factory):
    a = Relay(22, pin_factory=factory)
    b = Relay(5, normal_state="closed", pin_factory=factory)
    a.unlock()
    b.unlock()
    assert relay_mod.all_to_normal() >= 2
    assert factory.pin(22).state is False and factory.pin(5).state is True
    a.close()
    b.close()


def test_bad_normal_state(factory):
    with pytest.raises(ValueError, match="normal_state: expected one of"):
        Relay(22, normal_state="NO", pin_factory=factory)


# --- real subprocesses: SIGTERM, uncaught exception, interpreter exit ---------------------------

CHILD = textwrap.dedent("""
    import sys, time, os
    from gpiozero.pins.mock import MockFactory, MockPin
    from accessd.wiring.relay import Relay, guard_signals

    class Tell(MockPin):
        def _change_state(self, value):
            print("level", int(bool(value)), flush=True)
            return super()._change_state(value)

    r = Relay(22, normal_state=sys.argv[1], pin_factory=MockFactory(pin_class=Tell))
    if sys.argv[2] == "signal":
        guard_signals()
    r.unlock()
    print("unlocked", flush=True)
    if sys.argv[2] == "signal":
        time.sleep(30)
    elif sys.argv[2] == "raise":
        raise RuntimeError("boom")
    elif sys.argv[2] == "exit":
        sys.exit(0)
""")


def run_child(normal_state: str, how: str) -> tuple[int, list[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, normal_state, how], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    if how == "signal":
        lines.append(proc.stdout.readline().strip())  # level at construction
        lines.append(proc.stdout.readline().strip())  # unlocked level
        assert proc.stdout.readline().strip() == "unlocked"
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    lines += [line for line in out.splitlines() if line.startswith("level")]
    return proc.returncode, lines, err


@pytest.mark.parametrize("normal_state, locked", [("open", "level 0"), ("closed", "level 1")])
def test_sigterm_in_real_process_drives_normal(normal_state, locked):
    code, lines, err = run_child(normal_state, "signal")
    assert code == -signal.SIGTERM, err  # still reported as killed by SIGTERM
    assert lines[-1] == locked, lines
    assert lines[-2] != locked


def test_uncaught_exception_in_real_process_drives_normal():
    code, lines, err = run_child("open", "raise")
    assert code == 1 and "RuntimeError: boom" in err
    assert "level 1" in lines and lines[-1] == "level 0", lines


def test_interpreter_exit_drives_normal():
    code, lines, err = run_child("closed", "exit")
    assert code == 0, err
    assert lines[-1] == "level 1" and "level 0" in lines


@pytest.mark.parametrize("normal_state, active_high, pull", [
    ("open", True, "down"), ("closed", True, "up"), ("open", False, "up"), ("closed", False, "down"),
])
def test_released_line_is_pulled_to_the_normal_level(factory, normal_state, active_high, pull):
    r = Relay(22, normal_state=normal_state, active_high=active_high, pin_factory=factory)
    r.unlock()
    r.close()
    pin = factory.pin(22)
    assert pin.function == "input"
    assert pin.pull == pull == r.hold_level()
    assert pin.state == (pull == "up")
