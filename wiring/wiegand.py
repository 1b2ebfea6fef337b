"""A Wiegand reader on two GPIO inputs: pin-level edges with ticks → (line, level, time).

The reader pulls D0 (line 0) or D1 (line 1) low for each bit.  The device sets
both pins as pulled-up inputs with edge detection on both edges and, in the
GPIO library's callback thread, hands every edge to ``on_edge(line, level,
time)``: ``level`` 0 is the falling edge that starts a pulse, 1 the rising edge
that ends it.  ``time`` is the edge's tick converted to ``clock()`` seconds
(see :meth:`WiegandReader.stamp`), so it is the kernel's timestamp of the edge
on the caller's clock, however late the callback runs.

Decoding is not done here: the daemon feeds the edges to
:class:`accessd.protocols.wiegand.decoder.EdgeDecoder` in its loop.  :meth:`send`
drives the lines of a mock pin factory like a reader would (simulation, tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gpiozero import Device


class WiegandReader(Device):
    """Two pulled-up inputs (D0, D1) reporting every edge with its time."""

    def __init__(self, d0: int | str, d1: int | str, *, on_edge: Callable[[int, int, float], None],
                 clock: Callable[[], float] = time.monotonic, pin_factory=None) -> None:
        self._pins: list = []
        self._handlers: list = []  # pins hold callbacks weakly; keep them alive here
        self._offset: float | None = None
        super().__init__(pin_factory=pin_factory)
        if d0 == d1:
            raise ValueError(f"Wiegand D0 and D1 must be different pins, both are {d0!r}")
        self._on_edge = on_edge
        self._clock = clock
        self.edges = 0
        try:
            self.pin_factory.reserve_pins(self, d0, d1)
            for line, spec in enumerate((d0, d1)):
                pin = self.pin_factory.pin(spec)
                self._pins.append(pin)
                pin.function = "input"
                pin.pull = "up"
                pin.edges = "both"
                handler = self._handler(line)
                self._handlers.append(handler)
                pin.when_changed = handler
        except Exception:
            self.close()
            raise

    def _handler(self, line: int) -> Callable[[int, int], None]:
        def changed(ticks, state) -> None:
            at = self.stamp(ticks)
            self.edges += 1
            self._on_edge(line, 1 if state else 0, at)

        return changed

    def stamp(self, ticks) -> float:
        """An edge's tick as ``clock()`` seconds.

        Normally ``clock() - ticks_diff(ticks(), tick)``: the callback's delay is
        taken off.  Some GPIO libraries stamp edges on another clock than their
        factory's ``ticks()`` (the kernel can report CLOCK_REALTIME); a delay
        that is negative or over half a second shows it, and then the offset
        between the two clocks is estimated as the smallest ``now - tick`` seen
        (the edge with the least delay), re-anchored when it drifts by more
        than half a second.  Differences between edges stay exact either way.
        """
        factory = self.pin_factory
        now = self._clock()
        try:
            lag = factory.ticks_diff(factory.ticks(), ticks)
        except Exception:  # noqa: BLE001 - a tick the factory cannot compare
            lag = None
        if lag is not None and -0.0005 <= lag < 0.5:
            return now - max(lag, 0.0)
        seconds = float(ticks)
        d = now - seconds
        if self._offset is None or d < self._offset or d - self._offset > 0.5:
            self._offset = d
        return seconds + self._offset

    @property
    def pins(self) -> tuple:
        return tuple(self._pins)

    @property
    def levels(self) -> tuple[int, int]:
        """Current levels of D0 and D1 (1 = idle high)."""
        return tuple(int(p.state) for p in self._pins)

    @property
    def closed(self) -> bool:
        return not self._pins

    def close(self) -> None:
        for pin in self._pins:
            try:
                pin.when_changed = None
                pin.close()
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
        self._pins = []
        self._handlers = []
        if self.pin_factory is not None:
            self.pin_factory.release_all(self)
        super().close()

    def send(self, bits: str, *, interval: float = 0.002, pulse: float = 60e-6,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.perf_counter) -> None:
        """Drive mock pins like a reader sending ``bits`` (wire order) with real timing.

        Only for pins that can be driven (gpiozero's MockPin); blocks for the
        frame's duration.  Each bit starts ``interval`` after the previous one
        (later under load, never earlier).
        """
        if not all(hasattr(p, "drive_low") for p in self._pins):
            raise RuntimeError("send() needs mock pins (daemon.pin_factory = \"mock\")")
        if bits.strip("01"):
            raise ValueError(f"bits must be 0/1, got {bits!r}")
        previous = None
        for b in bits:
            pin = self._pins[1 if b == "1" else 0]
            if previous is not None:  # each bit at least `interval` after the last: late, never early
                wait = previous + interval - clock()
                if wait > 0.0015:
                    sleep(wait - 0.001)
                while clock() < previous + interval:
                    pass
            previous = clock()
            pin.drive_low()
            end = previous + pulse
            while clock() < end:  # sub-millisecond: spin rather than oversleep
                pass
            pin.drive_high()
