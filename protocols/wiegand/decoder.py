"""Sans-IO Wiegand edge decoder: (line, time) edges in, frames and typed errors out.

A Wiegand reader pulls D0 low to send a 0 and D1 low to send a 1; each pulse
is short (SIA: 20–100 µs) and pulses come at a bit interval of 200 µs–20 ms.
There is no end-of-frame marker: a frame ends when the lines stay quiet.

The usual approach is a fixed end-of-frame timeout (5 ms in the pigpio
example, 25 ms or 100 ms in ESPHome/Tasmota).  A short timeout splits slow
readers; a long one delays every decision and merges frames that come close
together.  This decoder measures each frame's own bit interval and ends the
frame after a silence of ``k`` times the largest interval seen in it, bounded
by ``floor`` and ``ceiling``: a 1 ms reader is decided a few milliseconds after
its last bit, and a 20 ms reader is never split.  Until a second bit gives an
interval, the ``ceiling`` applies.

Noise handling:

* falling edges on both lines closer than ``coincidence`` are one disturbance
  on the cable, not two bits: both are dropped (:class:`Glitch`);
* a pulse shorter than ``min_pulse`` (known once its rising edge is fed) is
  dropped (:class:`Glitch`); feeding rising edges is optional;
* a burst shorter than ``min_bits`` and a frame longer than ``max_bits`` are
  returned as :class:`Discarded` with their bits.

Times are seconds (float) on any monotonic clock; the caller converts GPIO
ticks.  Timers are data: :meth:`EdgeDecoder.next_deadline` says when to call
:meth:`EdgeDecoder.tick`; any edge fed after the deadline first closes the
pending frame, so a late timer never merges two frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """End-of-frame and glitch settings (seconds)."""

    k: float = 2.5
    floor: float = 0.001
    ceiling: float = 0.060
    min_pulse: float = 5e-6
    coincidence: float = 20e-6
    min_bits: int = 4
    max_bits: int = 256

    def __post_init__(self) -> None:
        if not 1.2 <= self.k <= 20:
            raise ValueError(f"k: expected 1.2–20 bit intervals, got {self.k}")
        if not 0 < self.floor <= self.ceiling <= 1.0:
            raise ValueError(
                f"floor/ceiling: expected 0 < floor ≤ ceiling ≤ 1 s, got {self.floor} / {self.ceiling}"
            )
        if not 0 <= self.min_pulse < 1e-3 or not 0 <= self.coincidence < 1e-3:
            raise ValueError("min_pulse and coincidence must be 0–1 ms")
        if not 1 <= self.min_bits <= self.max_bits:
            raise ValueError(f"min_bits {self.min_bits} / max_bits {self.max_bits}: expected 1 ≤ min ≤ max")


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """A complete frame: ``bits`` in wire order, times of its first and last bit."""

    bits: str
    first: float
    last: float
    interval: float | None
    glitches: int = 0

    def __post_init__(self) -> None:
        if not self.bits or self.bits.strip("01"):
            raise ValueError(f"Frame.bits must be a non-empty string of 0/1, got {self.bits!r}")
        if self.last < self.first:
            raise ValueError(f"Frame ends ({self.last}) before it starts ({self.first})")

    @property
    def count(self) -> int:
        return len(self.bits)


@dataclass(frozen=True, slots=True, kw_only=True)
class Glitch:
    """An edge dropped as noise."""

    line: int
    time: float
    reason: Literal["coincident_edges", "short_pulse"]

    def __post_init__(self) -> None:
        if self.line not in (0, 1) or self.reason not in ("coincident_edges", "short_pulse"):
            raise ValueError(f"Glitch: line must be 0/1 and reason coincident_edges/short_pulse, "
                             f"got {self.line!r}/{self.reason!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Discarded:
    """A burst that is not a frame: too short to be one, or longer than ``max_bits``."""

    bits: str
    first: float
    last: float
    reason: Literal["short_burst", "too_long"]

    def __post_init__(self) -> None:
        if self.reason not in ("short_burst", "too_long"):
            raise ValueError(f"Discarded.reason must be short_burst or too_long, got {self.reason!r}")


DecoderEvent = Frame | Glitch | Discarded


class EdgeDecoder:
    """Turns D0/D1 edges into :class:`Frame` events (see the module docstring)."""

    __slots__ = ("timing", "_bits", "_times", "_max_gap", "_low_since", "_glitches")

    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self._bits: list[str] = []
        self._times: list[float] = []
        self._max_gap = 0.0
        self._low_since: list[float | None] = [None, None]
        self._glitches = 0

    @property
    def pending(self) -> int:
        """Bits received in the frame not yet closed."""
        return len(self._bits)

    def end_gap(self) -> float:
        """The silence that ends the current frame."""
        t = self.timing
        if len(self._times) < 2:
            return t.ceiling
        return min(max(t.k * self._max_gap, t.floor), t.ceiling)

    def next_deadline(self) -> float | None:
        if not self._times:
            return None
        return self._times[-1] + self.end_gap()

    def tick(self, now: float) -> list[DecoderEvent]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self.flush()

    def flush(self) -> list[DecoderEvent]:
        """Close the pending frame now (shutdown, tests)."""
        if not self._bits:
            return []
        bits = "".join(self._bits)
        first, last = self._times[0], self._times[-1]
        gaps = [b - a for a, b in zip(self._times, self._times[1:], strict=False)]
        glitches = self._glitches
        self._reset()
        if len(bits) < self.timing.min_bits:
            return [Discarded(bits=bits, first=first, last=last, reason="short_burst")]
        return [Frame(bits=bits, first=first, last=last, interval=median(gaps) if gaps else None,
                      glitches=glitches)]

    def _reset(self) -> None:
        self._bits.clear()
        self._times.clear()
        self._max_gap = 0.0
        self._glitches = 0

    def edge(self, line: int, level: int, t: float) -> list[DecoderEvent]:
        """Feed one edge: ``level`` 0 is a falling edge (pulse start), 1 a rising edge."""
        return self.falling(line, t) if level == 0 else self.rising(line, t)

    def falling(self, line: int, t: float) -> list[DecoderEvent]:
        if line not in (0, 1):
            raise ValueError(f"Wiegand line must be 0 (D0) or 1 (D1), got {line!r}")
        events = self.tick(t)
        self._low_since[line] = t
        if self._times and self._bits[-1] != str(line) and t - self._times[-1] < self.timing.coincidence:
            # The same disturbance on both wires: neither edge is a bit.
            self._drop_last()
            self._glitches += 1
            events.append(Glitch(line=line, time=t, reason="coincident_edges"))
            return events
        if self._times:
            self._max_gap = max(self._max_gap, t - self._times[-1])
        self._bits.append("1" if line else "0")
        self._times.append(t)
        if len(self._bits) > self.timing.max_bits:
            bits, first = "".join(self._bits), self._times[0]
            self._reset()
            events.append(Discarded(bits=bits, first=first, last=t, reason="too_long"))
        return events

    def rising(self, line: int, t: float) -> list[DecoderEvent]:
        if line not in (0, 1):
            raise ValueError(f"Wiegand line must be 0 (D0) or 1 (D1), got {line!r}")
        since, self._low_since[line] = self._low_since[line], None
        if since is None or t - since >= self.timing.min_pulse:
            return []
        if self._times and self._times[-1] == since and self._bits[-1] == ("1" if line else "0"):
            self._drop_last()
            self._glitches += 1
            return [Glitch(line=line, time=since, reason="short_pulse")]
        return []

    def _drop_last(self) -> None:
        self._bits.pop()
        self._times.pop()
        times = self._times
        self._max_gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def edges_for(bits: str, *, start: float = 0.0, interval: float = 0.002, pulse: float = 50e-6,
              jitter: tuple[float, ...] = ()) -> list[tuple[int, int, float]]:
    """(line, level, time) edges a reader would produce for ``bits`` (tests, simulation, benchmarks).

    ``jitter`` gives per-bit offsets (seconds) added to each nominal bit time.
    """
    out: list[tuple[int, int, float]] = []
    for i, b in enumerate(bits):
        t = start + i * interval + (jitter[i] if i < len(jitter) else 0.0)
        line = 1 if b == "1" else 0
        out.append((line, 0, t))
        out.append((line, 1, t + pulse))
    return out
