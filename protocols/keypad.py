"""Sans-IO PIN assembly from keypad presses, shared by every reader protocol.

A reader (Wiegand keypress frames, OSDP ``osdp_KEYPAD`` replies) turns its wire
data into key characters — ``"0"``…``"9"``, ``"*"`` and ``"#"`` — and feeds
them here with the time they arrived.  :class:`PinAssembler` turns the keys
into typed events:

* ``#`` submits the digits entered so far → :class:`PinEntered` (a ``#`` with
  no digits does nothing);
* ``*`` clears them → :class:`PinCleared` (nothing when already empty);
* with a fixed ``length`` (1–32) the PIN is submitted as soon as that many
  digits are in; with ``length=0`` there is no fixed length and ``#`` submits
  (at most 32 digits: the 32nd digit submits);
* when ``timeout`` seconds (3–50) pass after the last key with digits pending,
  :meth:`PinAssembler.tick` returns :class:`PinTimeout` and drops them (the
  daemon reports it as ``access.denied`` with reason ``pin_timeout``).

Timers are data: :meth:`PinAssembler.next_deadline` says when ``tick`` must be
called next (``None`` when nothing is pending); the caller owns the clock and
passes ``now`` (any monotonic seconds) to :meth:`feed` and :meth:`tick`.

Typical use in a reader component::

    pins = PinAssembler(length=0, timeout=10.0)
    for event in pins.feed("1234#", now):
        if isinstance(event, PinEntered):
            access.present(Credential(kind="pin", pin=event.pin), reader_id)
    # in the loop's timer: for event in pins.tick(now): PinTimeout → deny
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KEYS = frozenset("0123456789*#")
MAX_DIGITS = 32
TIMEOUT_RANGE = (3.0, 50.0)


class InvalidKey(ValueError):
    """A key that is not ``0``–``9``, ``*`` or ``#``; carries the key and its index."""

    def __init__(self, keys: str, offset: int) -> None:
        self.keys = keys
        self.offset = offset
        super().__init__(
            f"keypad key {keys[offset]!r} at position {offset} of {keys!r} "
            "is not one of 0-9, '*', '#'"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PinEntered:
    """A PIN was submitted (by ``#`` or by reaching the fixed length)."""

    pin: str
    by: Literal["hash", "length"]

    def __post_init__(self) -> None:
        if not self.pin.isdigit() or not 1 <= len(self.pin) <= MAX_DIGITS:
            raise ValueError(f"a PIN is 1 to {MAX_DIGITS} decimal digits, got {len(self.pin)} characters")
        if self.by not in ("hash", "length"):
            raise ValueError(f"PinEntered.by must be 'hash' or 'length', got {self.by!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PinCleared:
    """``*`` dropped ``digits`` pending digits."""

    digits: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PinTimeout:
    """``digits`` pending digits were dropped because no key came in time."""

    digits: int
    last_key: float


PinEvent = PinEntered | PinCleared | PinTimeout


class PinAssembler:
    """Collects keypad keys into PINs.  See the module docstring."""

    __slots__ = ("length", "timeout", "_digits", "_last")

    def __init__(self, *, length: int = 0, timeout: float = 10.0) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= MAX_DIGITS:
            raise ValueError(f"PIN length: expected 0 (no fixed length) to {MAX_DIGITS}, got {length!r}")
        lo, hi = TIMEOUT_RANGE
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not lo <= timeout <= hi:
            raise ValueError(f"PIN timeout: expected {lo:g}–{hi:g} seconds, got {timeout!r}")
        self.length = length
        self.timeout = float(timeout)
        self._digits: list[str] = []
        self._last: float | None = None

    @property
    def pending(self) -> int:
        """How many digits are waiting for ``#``/the fixed length."""
        return len(self._digits)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next, or ``None`` when no digit is pending."""
        if not self._digits or self._last is None:
            return None
        return self._last + self.timeout

    def tick(self, now: float) -> list[PinEvent]:
        """Expire pending digits whose timeout has passed at ``now``."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        event = PinTimeout(digits=len(self._digits), last_key=self._last)
        self._digits.clear()
        self._last = None
        return [event]

    def reset(self) -> None:
        """Drop pending digits silently (e.g. the reader went away)."""
        self._digits.clear()
        self._last = None

    def feed(self, keys: str, now: float) -> list[PinEvent]:
        """Feed one or more keys that arrived at ``now``; returns the events they cause.

        A timeout that expired before ``now`` is applied first, so a late key
        starts a new PIN instead of extending a stale one.  The whole string is
        checked before any key is applied: an invalid key raises
        :class:`InvalidKey` and changes nothing.
        """
        for i, key in enumerate(keys):
            if key not in KEYS:
                raise InvalidKey(keys, i)
        events: list[PinEvent] = self.tick(now)
        limit = self.length or MAX_DIGITS
        for key in keys:
            if key == "*":
                if self._digits:
                    events.append(PinCleared(digits=len(self._digits)))
                self._digits.clear()
                self._last = None
            elif key == "#":
                if self._digits:
                    events.append(PinEntered(pin="".join(self._digits), by="hash"))
                self._digits.clear()
                self._last = None
            else:
                self._digits.append(key)
                self._last = now
                if len(self._digits) >= limit:
                    events.append(PinEntered(pin="".join(self._digits), by="length"))
                    self._digits.clear()
                    self._last = None
        return events
