"""Board profiles: 40-pin header names ↔ BCM GPIO numbers for the Raspberry Pi 3, 4 and 5.

The config takes BCM numbers (what gpiozero and lgpio use); installers read header
positions off the board.  :func:`resolve` accepts either: ``22``, ``"GPIO22"``,
``"BCM22"``, ``"BOARD15"``, ``"J8:15"`` or ``"PIN15"`` all name the same line, and
:func:`header_pin` goes back.  The 40-pin header carries the same BCM lines on all three
boards; what differs is the GPIO chip behind it (BCM2837 / BCM2711 / RP1 on the Pi 5,
``/dev/gpiochip4`` on older Pi 5 kernels, which lgpio finds by itself) and the pulls
applied at power-on, recorded here so the README and the config check can warn about a
relay on a line that floats high during boot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UnknownPin

# physical header position -> BCM GPIO number (None: power or ground)
HEADER_40: dict[int, int | None] = {
    1: None, 2: None, 3: 2, 4: None, 5: 3, 6: None, 7: 4, 8: 14, 9: None, 10: 15,
    11: 17, 12: 18, 13: 27, 14: None, 15: 22, 16: 23, 17: None, 18: 24, 19: 10, 20: None,
    21: 9, 22: 25, 23: 11, 24: 8, 25: None, 26: 7, 27: 0, 28: 1, 29: 5, 30: None,
    31: 6, 32: 12, 33: 13, 34: None, 35: 19, 36: 16, 37: 26, 38: 20, 39: None, 40: 21,
}
POWER_NAMES = {1: "3V3", 17: "3V3", 2: "5V", 4: "5V"}

# Lines with another job on a typical door unit (a warning, not an error).
FUNCTIONS = {
    0: "ID EEPROM (ID_SD)", 1: "ID EEPROM (ID_SC)",
    2: "I2C1 SDA (1.8 kΩ pull-up on the board)", 3: "I2C1 SCL (1.8 kΩ pull-up on the board)",
    7: "SPI0 CE1", 8: "SPI0 CE0", 9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK",
    14: "UART TXD (RS485)", 15: "UART RXD (RS485)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Board:
    name: str
    soc: str
    header: dict[int, int | None] = field(default_factory=lambda: dict(HEADER_40))
    # pull at power-on, before any software: "up", "down" or None when not documented
    boot_pulls: dict[int, str] | None = None

    def boot_pull(self, bcm: int) -> str | None:
        return None if self.boot_pulls is None else self.boot_pulls.get(bcm)


# BCM283x/BCM2711: GPIO0–8 are pulled up at reset, GPIO9–27 pulled down.
_BCM_PULLS = {n: ("up" if n <= 8 else "down") for n in range(28)}

BOARDS = {
    "pi3": Board(name="pi3", soc="BCM2837", boot_pulls=_BCM_PULLS),
    "pi4": Board(name="pi4", soc="BCM2711", boot_pulls=_BCM_PULLS),
    # RP1's reset pulls are not taken from a datasheet here: check with `pinctrl get`.
    "pi5": Board(name="pi5", soc="BCM2712+RP1", boot_pulls=None),
}

_BCM_RE = re.compile(r"(?:GPIO|BCM)(\d{1,2})", re.IGNORECASE)
_HEADER_RE = re.compile(r"(?:BOARD|PIN|J8:)(\d{1,2})", re.IGNORECASE)


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"board: expected one of {', '.join(BOARDS)}, got {name!r}") from None


def resolve(pin: int | str, board_name: str = "pi4") -> int:
    """The BCM number of ``pin`` given as a BCM number or a header name."""
    b = board(board_name)
    if isinstance(pin, bool):
        raise UnknownPin(pin, b.name)
    if isinstance(pin, int) or (isinstance(pin, str) and pin.isdigit()):
        n = int(pin)
        if n in b.header.values():
            return n
        raise UnknownPin(pin, b.name)
    if isinstance(pin, str):
        if m := _BCM_RE.fullmatch(pin.strip()):
            return resolve(int(m.group(1)), board_name)
        if m := _HEADER_RE.fullmatch(pin.strip()):
            pos = int(m.group(1))
            bcm = b.header.get(pos)
            if bcm is not None:
                return bcm
            what = POWER_NAMES.get(pos, "GND") if pos in b.header else "not on the header"
            raise UnknownPin(f"{pin} ({what})", b.name)
    raise UnknownPin(pin, b.name)


def header_pin(bcm: int, board_name: str = "pi4") -> int:
    """The physical header position of BCM line ``bcm``."""
    b = board(board_name)
    for pos, n in b.header.items():
        if n == bcm:
            return pos
    raise UnknownPin(bcm, b.name)


def describe(bcm: int, board_name: str = "pi4") -> str:
    """``GPIO22 (header pin 15)`` plus the line's other job, if any."""
    text = f"GPIO{bcm} (header pin {header_pin(bcm, board_name)})"
    if bcm in FUNCTIONS:
        text += f", also {FUNCTIONS[bcm]}"
    return text


def from_model(model: str | None) -> Board | None:
    """The profile for a gpiozero ``board_info.model`` such as ``"4B"`` or ``"5B"``."""
    if not model:
        return None
    m = re.match(r"(?:CM)?(\d)", str(model))
    return BOARDS.get(f"pi{m.group(1)}") if m else None


def boot_check(bcm: int, locked_high: bool, board_profile: Board | None) -> dict:
    """Whether the SoC's reset pull holds ``bcm`` at the locked level while the board boots.

    ``safe`` is None when the board or its pulls are unknown.
    """
    pull = board_profile.boot_pull(bcm) if board_profile is not None else None
    return {"boot_pull": pull, "boot_safe": None if pull is None else (pull == "up") == locked_high}

