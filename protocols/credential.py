"""The typed credential every reader produces and every decision consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KINDS = ("card", "pin", "qr")


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """A credential as read at a reader.

    ``bits`` is a string of ``0``/``1`` in wire order (first bit sent first);
    ``hex`` is the value of those bits as a right-justified hexadecimal number.
    ``format``/``facility_code``/``card_number`` are filled when a card format
    decoded the bits.  ``candidates`` are the (format, facility code, card number)
    readings with good parity that the entry list may match a holder by (the chosen one
    first; :mod:`accessd.protocols.pipeline` fills them).  A PIN or a QR text never leaves this
    object in :meth:`to_json`.
    """

    kind: Literal["card", "pin", "qr"]
    bits: str | None = None
    pin: str | None = None
    qr: str | None = None
    format: str | None = None
    facility_code: int | None = None
    card_number: int | None = None
    candidates: tuple[tuple[str, int | None, int], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"credential kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "card":
            if not self.bits or set(self.bits) - {"0", "1"}:
                raise ValueError(f"card bits must be a non-empty string of 0/1, got {self.bits!r}")
        elif self.kind == "pin":
            if self.pin is None or not (self.pin.isascii() and self.pin.isdigit()) or len(self.pin) > 32:
                raise ValueError("a PIN is 1 to 32 decimal digits")
        elif not self.qr:
            raise ValueError("a QR credential needs its text")
        if self.candidates and self.kind != "card":
            raise ValueError("only a card has format candidates")

    @classmethod
    def card(cls, hex_value: str, bit_length: int, **decoded: object) -> Credential:
        """A card from its right-justified hex value and bit length."""
        value = int(hex_value, 16)
        if bit_length < 1 or value >> bit_length:
            raise ValueError(f"card value 0x{hex_value} does not fit in {bit_length} bits")
        return cls(kind="card", bits=format(value, f"0{bit_length}b"), **decoded)

    @property
    def bit_length(self) -> int | None:
        return len(self.bits) if self.bits is not None else None

    @property
    def hex(self) -> str | None:
        if self.bits is None:
            return None
        return format(int(self.bits, 2), "X").rjust((len(self.bits) + 3) // 4, "0")

    def to_json(self) -> dict:
        """The fields access events carry (never the PIN digits, never a QR text: both are
        secrets, and events are kept in the log)."""
        out: dict = {"kind": self.kind}
        if self.kind == "card":
            out.update(
                bit_length=self.bit_length,
                hex=self.hex,
                format=self.format,
                facility_code=self.facility_code,
                card_number=self.card_number,
            )
        return out
