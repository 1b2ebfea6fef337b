"""The lock relay: one gpiozero output line, driven to its normal state first and last.

``normal_state`` is the relay circuit while the door is locked:

- ``"open"``: coil off while locked, energized to unlock (a fail-secure strike on the
  normally-open contact, or a fail-safe maglock on the normally-closed contact);
- ``"closed"``: coil energized while locked, released to unlock (a maglock on the
  normally-open contact: it unlocks whenever the process or the board loses the line).

The relay is at its normal (locked) level from the moment the line is claimed: gpiozero
is asked for that level as the output's initial value, so there is no glitch between
claiming the line and the first write.  It returns to normal on every way out that
Python can see: :meth:`Relay.close`, leaving a ``with`` block (also by an exception),
interpreter exit (:mod:`atexit`), and fatal signals once :func:`guard_signals` is
installed.  What the line does when no process holds it is the pin factory's and the
kernel's business: see the README's door section.

The relay may be driven from two threads (the event loop and the internal watchdog),
so every write goes through one re-entrant lock: re-entrant because a signal handler
runs on the main thread and may interrupt it while it holds the lock.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable

from gpiozero import DigitalOutputDevice

NORMAL_STATES = ("open", "closed")

_live: weakref.WeakSet[Relay] = weakref.WeakSet()
_live_lock = threading.Lock()


def all_to_normal(*, release: bool = False) -> int:
    """Drive every live relay of this process to its normal state; returns how many."""
    with _live_lock:
        relays = list(_live)
    done = 0
    for relay in relays:
        try:
            if release:
                relay.close()
            else:
                relay.to_normal()
            done += 1
        except Exception:  # noqa: BLE001 - best effort on the way out, keep going
            pass
    return done


# Registered after gpiozero's own exit handler (imported above), so it runs first:
# the relay is at normal and released with its holding pull before gpiozero closes
# whatever is left.
atexit.register(all_to_normal, release=True)


class Relay:
    """The lock relay on BCM ``pin``."""

    def __init__(
        self,
        pin: int | str,
        *,
        normal_state: str = "open",
        active_high: bool = True,
        pin_factory: object = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if normal_state not in NORMAL_STATES:
            raise ValueError(f"relay normal_state: expected one of {NORMAL_STATES}, got {normal_state!r}")
        self.pin = pin
        self.normal_state = normal_state
        self.active_high = bool(active_high)
        self._energized_when_locked = normal_state == "closed"
        self._clock = clock
        self._lock = threading.RLock()
        # The initial value is the normal level: the line never shows the unlocked level.
        self._device = DigitalOutputDevice(
            pin, active_high=self.active_high, initial_value=self._energized_when_locked,
            pin_factory=pin_factory,
        )
        self._unlocked = False
        self.changed_at = clock()
        self.changes = 0
        with _live_lock:
            _live.add(self)

    # -- state ---------------------------------------------------------------------------

    @property
    def unlocked(self) -> bool:
        return self._unlocked

    @property
    def energized(self) -> bool:
        """Whether the coil is driven (the device's logical value, independent of polarity)."""
        return bool(self._device.value) if not self._device.closed else False

    @property
    def closed(self) -> bool:
        return self._device.closed

    @property
    def locked_high(self) -> bool:
        """Whether the line is high while locked (normal state and polarity together)."""
        return self._energized_when_locked == self.active_high

    def status(self) -> dict:
        return {
            "pin": self.pin,
            "normal_state": self.normal_state,
            "active_high": self.active_high,
            "state": "unlocked" if self._unlocked else "locked",
            "energized": self.energized,
            "circuit": ("closed" if self.energized else "open") if not self.closed else None,
        }

    # -- driving -------------------------------------------------------------------------

    def set_unlocked(self, unlocked: bool) -> bool:
        """Drive the relay; returns True when the line changed."""
        with self._lock:
            if self._device.closed:
                if unlocked:
                    raise RuntimeError(f"relay on pin {self.pin} is closed; cannot unlock")
                return False
            unlocked = bool(unlocked)
            level = self._energized_when_locked != unlocked
            changed = unlocked != self._unlocked or bool(self._device.value) != level
            if changed:
                if level:
                    self._device.on()
                else:
                    self._device.off()
                self._unlocked = unlocked
                self.changed_at = self._clock()
                self.changes += 1
            return changed

    def unlock(self) -> bool:
        return self.set_unlocked(True)

    def lock(self) -> bool:
        return self.set_unlocked(False)

    def to_normal(self) -> bool:
        """Force the normal (locked) level, whatever this object believes."""
        with self._lock:
            if self._device.closed:
                return False
            level = self._energized_when_locked
            changed = bool(self._device.value) != level or self._unlocked
            if level:
                self._device.on()
            else:
                self._device.off()
            if changed:
                self._unlocked = False
                self.changed_at = self._clock()
                self.changes += 1
            return changed

    def close(self) -> None:
        """Drive to normal, release the line, and leave it pulled towards the normal level.

        gpiozero releases an output by making it an input without bias (lgpio) or with
        RPi.GPIO's cleanup defaults; a floating relay input may switch the coil.  After
        the release the line is therefore set to an input with the SoC pull resistor on
        the normal level's side (down when the locked level is low), so that level is
        still held, weakly, until something else claims the line.
        """
        with self._lock:
            if self._device.closed:
                return
            self.to_normal()
            locked_high = self.locked_high
            factory = self._device.pin_factory
            self._device.close()
            try:
                pin = factory.pin(self.pin)
                pin.function = "input"
                pin.pull = "up" if locked_high else "down"
            except Exception:  # noqa: BLE001 - a fixed pull, a closed factory: the release stands
                pass
        with _live_lock:
            _live.discard(self)

    def hold_level(self) -> str:
        """Which way the line is pulled after :meth:`close` ("up" or "down")."""
        return "up" if self.locked_high else "down"

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Relay pin={self.pin} normal_state={self.normal_state} "
                f"{'unlocked' if self._unlocked else 'locked'}>")


_guarded: dict[int, object] = {}


def guard_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)) -> None:
    """Install handlers that drive every relay to normal, then do what was done before.

    The previous handler is chained: a Python handler is called, the default action
    (terminate) is re-raised with the default disposition so the exit status stays
    "killed by SIGTERM".  The daemon's own asyncio handlers, installed later, replace
    these; they exist for the window before the loop runs and for tools that drive a
    relay without the daemon.  Only the main thread can install signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("guard_signals() must be called from the main thread")
    for sig in signals:
        if sig in _guarded:
            continue
        previous = signal.getsignal(sig)
        _guarded[sig] = previous

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            all_to_normal()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_IGN:
                return
            else:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)
