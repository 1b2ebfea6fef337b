"""Door inputs: digital contacts with a normal state and debounce, and supervised loops.

Every input reports one of four states: ``inactive`` (as wired at rest), ``active``,
and for supervised inputs ``cut`` (the loop is open: a cut wire or a removed
resistor) and ``short`` (the loop is bridged).  ``normal_state`` is the circuit at
rest: ``"closed"`` for a door contact that is closed while the door is shut (the usual
reed contact), ``"open"`` for a normally-open push button.

Threads and time: gpiozero calls back from its own thread; the device stamps the raw
level with ``clock()`` and hands it to ``on_edge(input, level, at)`` and nothing else.
The owner (the daemon's loop) then calls :meth:`DigitalInput.edge` /
:meth:`tick` with that stamp; debouncing is data (:class:`Debounce`,
``next_deadline()`` / ``tick(now)``), so tests drive it with numbers and never sleep.

Digital inputs are wired from the GPIO to ground with the internal pull-up (a closed
circuit reads low).  Supervised inputs use an MCP3008 (10 bit) or MCP3208 (12 bit) on
SPI and the standard two-resistor end-of-line wiring::

    3V3 ── R_ref 2.2 kΩ ──┬── ADC channel
                          │
                          └── R_series 2.2 kΩ ──┬── contact ──┬── GND
                                                └── R_par 2.2 kΩ ─┘

    loop resistance     ratio = V / 3.3 V     band (default thresholds)
    0 (short)           0.00                  < 0.25           short
    2.2 kΩ (closed)     0.50                  0.25 – 0.58      circuit closed
    4.4 kΩ (open)       0.67                  0.58 – 0.83      circuit open
    ∞ (cut)             1.00                  ≥ 0.83           cut

The thresholds are configurable (``short_below``, ``closed_below``, ``open_below``) for
other resistor values: a band edge is best put half-way between the ratios
``R_loop / (R_loop + R_ref)`` of its neighbours.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from gpiozero import MCP3008, MCP3208, Device, DigitalInputDevice
from gpiozero.pins.mock import MockSPIDevice

from .errors import BadAdcValue, BadThresholds

STATES = ("inactive", "active", "cut", "short")
NORMAL_STATES = ("open", "closed")
DEFAULT_THRESHOLDS = (0.25, 0.58, 0.83)
ADC_CHIPS = {"MCP3008": (MCP3008, 10), "MCP3208": (MCP3208, 12)}


@dataclass(frozen=True, slots=True, kw_only=True)
class InputChange:
    """An input settled into a new state at ``at`` (the time of the deciding sample)."""

    name: str
    state: str
    previous: str | None
    at: float
    value: float | None = None  # the ADC ratio of a supervised input

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"input {self.name}: state must be one of {STATES}, got {self.state!r}")

    @property
    def fault(self) -> bool:
        return self.state in ("cut", "short")


class Debounce:
    """A level filter: a new value is accepted once it has held for ``seconds``.

    A glitch shorter than ``seconds`` never shows; the accepted change is stamped with
    the time the new level started, not the time it was confirmed.
    """

    def __init__(self, value: Hashable, *, seconds: float, now: float = 0.0) -> None:
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"debounce: expected a number of seconds >= 0, got {seconds!r}")
        self.seconds = float(seconds)
        self.value = value
        self.since = now
        self._pending: Hashable | None = None
        self._pending_since = 0.0
        self._has_pending = False

    def sample(self, value: Hashable, now: float) -> bool:
        """Feed the raw value seen at ``now``; True when the accepted value changed."""
        changed = self.tick(now)
        if value == self.value:
            self._has_pending = False
        elif not self._has_pending or value != self._pending:
            self._pending, self._pending_since, self._has_pending = value, now, True
        return self.tick(now) or changed

    def next_deadline(self) -> float | None:
        return self._pending_since + self.seconds if self._has_pending else None

    def tick(self, now: float) -> bool:
        if self._has_pending and now >= self._pending_since + self.seconds:
            self.value, self.since = self._pending, self._pending_since
            self._has_pending = False
            return True
        return False


def _check_normal(name: str, normal_state: str) -> None:
    if normal_state not in NORMAL_STATES:
        raise ValueError(f"input {name}: normal_state must be one of {NORMAL_STATES}, got {normal_state!r}")


class DigitalInput:
    """A contact on a GPIO line with the internal pull-up, a normal state and debounce."""

    supervised = False

    def __init__(
        self,
        name: str,
        pin: int | str,
        *,
        normal_state: str = "closed",
        debounce: float = 0.05,
        pull_up: bool = True,
        pin_factory: object = None,
        clock: Callable[[], float] = time.monotonic,
        on_edge: Callable[[DigitalInput, bool, float], None] | None = None,
    ) -> None:
        _check_normal(name, normal_state)
        self.name = name
        self.pin = pin
        self.normal_state = normal_state
        self._clock = clock
        self.on_edge = on_edge
        # is_active == circuit closed (pulled up: a closed circuit pulls the line low)
        self._device = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
        now = clock()
        self._debounce = Debounce(self._state_of(self._device.is_active), seconds=debounce, now=now)
        self._device.when_activated = self._edge_cb
        self._device.when_deactivated = self._edge_cb

    def _state_of(self, circuit_closed: bool) -> str:
        return "inactive" if circuit_closed == (self.normal_state == "closed") else "active"

    def _edge_cb(self, device: object = None) -> None:  # gpiozero's thread
        if self.on_edge is not None:
            self.on_edge(self, bool(self._device.is_active), self._clock())

    @property
    def state(self) -> str:
        return self._debounce.value

    @property
    def active(self) -> bool:
        return self.state == "active"

    def raw_state(self) -> str:
        """The undebounced state of the line right now."""
        return self._state_of(bool(self._device.is_active))

    @property
    def debounce(self) -> float:
        return self._debounce.seconds

    def resync(self, now: float) -> None:
        """Accept the line's present level at once (start-up), dropping any pending change."""
        self._debounce = Debounce(self.raw_state(), seconds=self._debounce.seconds, now=now)

    def edge(self, circuit_closed: bool, now: float) -> list[InputChange]:
        """The line changed to ``circuit_closed`` at ``now`` (owner's thread)."""
        before = self.state
        if self._debounce.sample(self._state_of(circuit_closed), now):
            return [InputChange(name=self.name, state=self.state, previous=before, at=self._debounce.since)]
        return []

    def resample(self, now: float) -> list[InputChange]:
        """Read the line now and feed it like an edge: insurance against a lost callback."""
        return self.edge(bool(self._device.is_active), now)

    def next_deadline(self) -> float | None:
        return self._debounce.next_deadline()

    def tick(self, now: float) -> list[InputChange]:
        before = self.state
        if self._debounce.tick(now):
            return [InputChange(name=self.name, state=self.state, previous=before, at=self._debounce.since)]
        return []

    def status(self) -> dict:
        return {"kind": "digital", "pin": self.pin, "normal_state": self.normal_state, "state": self.state}

    def close(self) -> None:
        self._device.close()


@contextlib.contextmanager
def _as_default_factory(pin_factory: object):
    """gpiozero 2.0's software SPI bus ignores ``pin_factory=`` for one internal
    ``Device`` and looks up the default factory (failing off a Pi): lend ours."""
    previous = Device.pin_factory
    if previous is None and pin_factory is not None:
        Device.pin_factory = pin_factory
    try:
        yield
    finally:
        if previous is None:
            Device.pin_factory = None


def check_thresholds(thresholds: object, where: str = "thresholds") -> tuple[float, float, float]:
    try:
        lo, mid, hi = (float(x) for x in thresholds)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise BadThresholds(thresholds, where) from None
    if not 0.0 < lo < mid < hi < 1.0:
        raise BadThresholds(thresholds, where)
    return lo, mid, hi


def classify(ratio: float, thresholds: tuple[float, float, float], normal_state: str) -> str:
    """The state of a supervised loop whose ADC reads ``ratio`` of the reference."""
    short_below, closed_below, open_below = thresholds
    if ratio < short_below:
        return "short"
    if ratio >= open_below:
        return "cut"
    circuit_closed = ratio < closed_below
    return "inactive" if circuit_closed == (normal_state == "closed") else "active"


def ratio_for(state: str, thresholds: tuple[float, float, float], normal_state: str) -> float:
    """A ratio in the middle of ``state``'s band (what the simulator feeds the mock ADC)."""
    short_below, closed_below, open_below = thresholds
    if state == "short":
        return short_below / 2
    if state == "cut":
        return (open_below + 1.0) / 2
    if state not in ("active", "inactive"):
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    circuit_closed = (state == "inactive") == (normal_state == "closed")
    return (short_below + closed_below) / 2 if circuit_closed else (closed_below + open_below) / 2


class SupervisedInput:
    """An end-of-line supervised loop read through one channel of an MCP3008/MCP3208.

    The ADC has no interrupt: the owner polls at ``poll_interval`` (see
    :meth:`next_deadline`), each sample is classified and debounced.
    """

    supervised = True

    def __init__(
        self,
        name: str,
        *,
        chip: str = "MCP3008",
        channel: int = 0,
        select: int = 0,
        normal_state: str = "closed",
        thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
        debounce: float = 0.1,
        poll_interval: float = 0.05,
        pin_factory: object = None,
        clock: Callable[[], float] = time.monotonic,
        adc: object = None,
    ) -> None:
        _check_normal(name, normal_state)
        if chip not in ADC_CHIPS:
            raise ValueError(f"input {name}: chip must be one of {tuple(ADC_CHIPS)}, got {chip!r}")
        if not 0 <= channel <= 7:
            raise ValueError(f"input {name}: channel must be 0–7, got {channel!r}")
        if not poll_interval > 0:
            raise ValueError(f"input {name}: poll_interval must be positive, got {poll_interval!r}")
        self.name = name
        self.chip = chip
        self.channel = channel
        self.normal_state = normal_state
        self.thresholds = check_thresholds(thresholds, f"input {name}: thresholds")
        self.poll_interval = float(poll_interval)
        self._clock = clock
        if adc is None:
            cls, _bits = ADC_CHIPS[chip]
            with _as_default_factory(pin_factory):
                adc = cls(channel=channel, port=0, device=select, pin_factory=pin_factory)
        self._adc = adc
        now = clock()
        self.value = self._read()
        self._debounce = Debounce(self.classify(self.value), seconds=debounce, now=now)
        self._next_poll = now + self.poll_interval

    def _read(self) -> float:
        raw = self._adc.value
        if not isinstance(raw, int | float) or not 0.0 <= raw <= 1.0:
            raise BadAdcValue(self.name, raw)
        return float(raw)

    def classify(self, ratio: float) -> str:
        return classify(ratio, self.thresholds, self.normal_state)

    @property
    def state(self) -> str:
        return self._debounce.value

    @property
    def active(self) -> bool:
        return self.state == "active"

    @property
    def debounce(self) -> float:
        return self._debounce.seconds

    def sample(self, now: float) -> list[InputChange]:
        """Read the ADC once at ``now``."""
        before = self.state
        self.value = self._read()
        self._next_poll = now + self.poll_interval
        if self._debounce.sample(self.classify(self.value), now):
            return [InputChange(name=self.name, state=self.state, previous=before,
                                at=self._debounce.since, value=round(self.value, 4))]
        return []

    def next_deadline(self) -> float:
        return self._next_poll

    def tick(self, now: float) -> list[InputChange]:
        return self.sample(now) if now >= self._next_poll else []

    def status(self) -> dict:
        return {"kind": "supervised", "chip": self.chip, "channel": self.channel,
                "normal_state": self.normal_state, "state": self.state, "value": round(self.value, 4),
                "thresholds": list(self.thresholds)}

    def close(self) -> None:
        close = getattr(self._adc, "close", None)
        if close is not None:
            close()


class MockMCP3xxx(MockSPIDevice):
    """The chip side of an MCP3008/MCP3208 on gpiozero's MockFactory software SPI.

    It answers single-ended conversions with ``ratios[channel]`` (0–1) scaled to the
    chip's resolution, so the very same gpiozero ``MCP3008``/``MCP3208`` class and
    :class:`SupervisedInput` run as on hardware.  Build it *before* the ADC devices:
    it claims the SPI pins with the mock pin classes that carry the clock.
    """

    def __init__(self, *, bits: int = 10, select: int = 0, pin_factory: object) -> None:
        select_pin = (8, 7)[select]
        super().__init__(11, 10, 9, select_pin, pin_factory=pin_factory)
        self.bits = bits
        self.ratios: dict[int, float] = {}

    def set_ratio(self, channel: int, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be 0–1, got {ratio!r}")
        self.ratios[channel] = ratio

    def on_start(self) -> None:
        super().on_start()
        self._answered = False

    def on_bit(self) -> None:
        if self._answered or 1 not in self.rx_buf:
            return
        start = self.rx_buf.index(1)
        cmd = self.rx_buf[start + 1:]
        if len(cmd) < 4:
            return
        single, channel = cmd[0], cmd[1] << 2 | cmd[2] << 1 | cmd[3]
        self._answered = True
        full = (1 << self.bits) - 1
        value = round(self.ratios.get(channel, 0.0) * full) if single else 0
        # one sampling clock, a null bit, then the result MSB first
        self.tx_word(0, 2)
        self.tx_word(value, self.bits)
