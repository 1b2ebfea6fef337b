"""Typed errors of the hardware bindings (one module for the whole ``wiring`` package)."""

from __future__ import annotations


class WiringError(Exception):
    """Base class of the wiring package's errors."""


class UnknownPin(WiringError):
    """A header pin name or number that the board profile does not know."""

    def __init__(self, name: object, board: str) -> None:
        super().__init__(f"{board}: no GPIO pin is named {name!r}")
        self.name = name
        self.board = board


class BadThresholds(WiringError):
    """Supervised-input thresholds that are not three increasing ratios in 0–1."""

    def __init__(self, thresholds: object, where: str = "thresholds") -> None:
        super().__init__(
            f"{where}: expected three increasing ratios between 0 and 1 "
            f"(short_below, closed_below, open_below), got {thresholds!r}"
        )
        self.thresholds = thresholds


class BadAdcValue(WiringError):
    """An ADC reading outside 0–1 (a broken chip or bus); ``raw`` is what was read."""

    def __init__(self, name: str, raw: object) -> None:
        super().__init__(f"input {name}: ADC returned {raw!r}, expected a ratio 0–1")
        self.name = name
        self.raw = raw


class ScannerError(WiringError, OSError):
    """A QR scanner's device cannot be used; the message names it (``evdev /dev/input/event3: …``)."""

    def __init__(self, device: str, reason: str) -> None:
        self.device = device
        self.reason = reason
        super().__init__(f"{device}: {reason}")


class ScannerLost(ScannerError):
    """The scanner went away while in use (a USB scanner unplugged)."""
