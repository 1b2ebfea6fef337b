"""The reader's feedback lines: LED line(s) and beeper as gpiozero outputs.

Wiegand readers take their LED and beeper from the controller on extra wires,
usually active low (pull the line to ground to light green / sound the beeper).
With one LED line the reader shows red while the line is inactive and green
while it is active; with two lines (green and red) ``amber`` lights both.

Colours per state (idle, granted, denied) are the daemon's policy; this module
only sets lines.  ``beep`` runs gpiozero's background blinker thread.
"""

from __future__ import annotations

from gpiozero import DigitalOutputDevice

COLOURS = ("off", "red", "green", "amber")


class ReaderFeedback:
    """Optional green/red LED lines and beeper line of one reader."""

    def __init__(self, *, green_pin: int | str | None = None, red_pin: int | str | None = None,
                 beeper_pin: int | str | None = None, active_low: bool = True, beeper_active_low: bool = True,
                 pin_factory=None) -> None:
        self._devices: list[DigitalOutputDevice] = []

        def out(pin, low: bool) -> DigitalOutputDevice | None:
            if pin is None:
                return None
            dev = DigitalOutputDevice(pin, active_high=not low, initial_value=False, pin_factory=pin_factory)
            self._devices.append(dev)
            return dev

        try:
            self.green = out(green_pin, active_low)
            self.red = out(red_pin, active_low)
            self.beeper = out(beeper_pin, beeper_active_low)
        except Exception:
            self.close()
            raise
        self.colour = "off" if red_pin is not None else "red"

    def show(self, colour: str) -> str:
        """Light ``colour``; returns what the wiring can actually show."""
        if colour not in COLOURS:
            raise ValueError(f"LED colour must be one of {COLOURS}, got {colour!r}")
        green = colour in ("green", "amber")
        red = colour in ("red", "amber")
        if self.green is not None:
            self.green.value = green
        if self.red is not None:
            self.red.value = red
        if self.red is None:  # one line: inactive shows the reader's own red
            shown = "green" if green and self.green is not None else "red"
        else:
            shown = {(False, False): "off", (True, False): "green", (False, True): "red", (True, True): "amber"}[
                (green and self.green is not None, red)
            ]
        self.colour = shown
        return shown

    def beep(self, count: int = 1, *, on: float = 0.1, off: float = 0.1) -> None:
        """Sound the beeper ``count`` times in the background (no-op without a beeper line)."""
        if self.beeper is not None and count > 0:
            self.beeper.blink(on_time=on, off_time=off, n=count, background=True)

    def close(self) -> None:
        for dev in self._devices:
            dev.close()
        self._devices = []
