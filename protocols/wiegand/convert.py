"""Card data conversion: a raw card UID to a Wiegand output format.

The commercial intercom's "output format" semantics, as plain policy code:

* the card number takes the low bits of the UID value (as many as the target
  format's card number field holds);
* the facility code depends on ``fc_mode``:
  ``auto`` forges it from the UID bits just above the card number,
  ``optional`` uses the card's own facility code when it has one (a decoded
  Wiegand card) and the configured one otherwise,
  ``override`` always uses the configured one;
* ``byte_reversal`` reverses the UID's byte order first (readers that report
  the UID least significant byte first);
* ``max_32bit`` keeps only the low 32 bits of the UID first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import BitsError, FormatDefinitionError
from .formats import LIBRARY, FormatLibrary, bits_to_hex, hex_to_bits

FC_MODES = ("auto", "optional", "override")


def reverse_bytes(hex_value: str, bit_length: int) -> str:
    """The UID with its byte order reversed, as right-justified hex of the same width."""
    value = int(hex_to_bits(hex_value, bit_length), 2)
    width = (bit_length + 7) // 8
    flipped = int.from_bytes(value.to_bytes(width, "big")[::-1], "big")
    return format(flipped, "X").rjust(width * 2, "0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversion:
    """A UID converted to a card format."""

    format: str
    bits: str
    facility_code: int | None
    card_number: int

    @property
    def hex(self) -> str:
        return bits_to_hex(self.bits)

    @property
    def bit_length(self) -> int:
        return len(self.bits)

    def to_json(self) -> dict:
        return {"format": self.format, "bit_length": self.bit_length, "bits": self.bits, "hex": self.hex,
                "facility_code": self.facility_code, "card_number": self.card_number}


def convert(
    uid_hex: str,
    bit_length: int,
    target: str,
    *,
    fc_mode: Literal["auto", "optional", "override"] = "auto",
    facility_code: int = 0,
    card_facility_code: int | None = None,
    byte_reversal: bool = False,
    max_32bit: bool = False,
    library: FormatLibrary = LIBRARY,
) -> Conversion:
    """Convert the UID ``uid_hex`` (``bit_length`` bits) to ``target`` (see the module docstring)."""
    if fc_mode not in FC_MODES:
        raise ValueError(f"facility code mode: expected one of {', '.join(FC_MODES)}, got {fc_mode!r}")
    fmt = library.get(target)
    value = int(hex_to_bits(uid_hex, bit_length), 2)
    if byte_reversal:
        value = int(reverse_bytes(uid_hex, bit_length), 16)
    if max_32bit:
        value &= 0xFFFFFFFF
    fields = {f.name: f for f in fmt.fields}
    cn_field = fields.get("card_number")
    if cn_field is None or cn_field.bcd:
        raise FormatDefinitionError(fmt.name, "cannot take a binary card number from a UID")
    card_number = value & cn_field.maximum
    fc_field = fields.get("facility_code")
    fc: int | None = None
    if fc_field is not None:
        if fc_mode == "auto":
            fc = (value >> cn_field.length) & fc_field.maximum
        elif fc_mode == "optional" and card_facility_code is not None:
            fc = card_facility_code
        else:
            fc = facility_code
        if not 0 <= fc <= fc_field.maximum:
            raise BitsError(uid_hex, f"facility code {fc} is out of range for {fmt.name} (0–{fc_field.maximum})")
    bits = fmt.encode(facility_code=fc, card_number=card_number)
    return Conversion(format=fmt.name, bits=bits, facility_code=fc, card_number=card_number)
