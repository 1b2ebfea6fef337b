"""Wiegand keypad formats ("keypress formats"): encode and decode key frames.

Keypads send each key as its own short frame, or a whole PIN as one card-sized
frame.  Key values: digits are 0–9, ``*`` is 0xA and ``#`` is 0xB unless a
key map says otherwise (some keypads send 0 as 0xA, ``*`` as 0xB, ``#`` as 0xC).

========================  ====  ==========================================================
name                      bits  one key (PIN 1234 →)
========================  ====  ==========================================================
``FourBit``               4     the value (0x1 0x2 0x3 0x4)
``SixBitParity``          6     even parity over the 2 high value bits, the value, odd
                                parity over the 2 low value bits (Rosslare "nibble and
                                parities": 1 = 0 0001 0)
``EightBitZeroPadded``    8     0x0 then the value (0x01 0x02 0x03 0x04)
``EightBitInvertPadded``  8     the inverted value then the value (0xE1 0xD2 0xC3 0xB4);
                                a high nibble that is not the inverse is an error
``Wiegand26`` …           26…   a buffered PIN: one card frame (H10301, H10306, H10302,
                                H10304) whose card number is the PIN's value and whose
                                facility code is the configured one; decodes as the
                                digits followed by ``#``
========================  ====  ==========================================================

Layouts are construct declarations like the card formats; key mapping and
parity policy are plain code.  Sans-IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import construct as cs

from .errors import BitsError, KeypressError, WiegandError
from .formats import LIBRARY, FormatLibrary, bits_to_hex, check_bits, hex_to_bits

KEYS = "0123456789*#"
DEFAULT_KEY_MAP: Mapping[str, int] = {**{str(d): d for d in range(10)}, "*": 0xA, "#": 0xB}
_TO_BYTES = bytes.maketrans(b"01", b"\x00\x01")
_FROM_BYTES = bytes.maketrans(b"\x00\x01", b"01")

_NIBBLES = cs.Struct("high" / cs.BitsInteger(4), "low" / cs.BitsInteger(4)).compile()
_SIX = cs.Struct("lead" / cs.BitsInteger(1), "value" / cs.BitsInteger(4), "tail" / cs.BitsInteger(1)).compile()
_FOUR = cs.Struct("value" / cs.BitsInteger(4)).compile()

BURST = {"FourBit": 4, "SixBitParity": 6, "EightBitZeroPadded": 8, "EightBitInvertPadded": 8}
BUFFERED = {"Wiegand26": "H10301", "Wiegand34": "H10306", "Wiegand37": "H10302",
            "Wiegand37FacilityCode": "H10304"}
NAMES = (*BURST, *BUFFERED)


def check_key_map(key_map: Mapping[str, int]) -> dict[str, int]:
    """Validate a key → value map (every key 0–9, ``*``, ``#`` once; values 0–15, distinct)."""
    out = dict(DEFAULT_KEY_MAP)
    for key, value in key_map.items():
        if key not in KEYS:
            raise ValueError(f"key map: {key!r} is not a key (0-9, *, #)")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 15:
            raise ValueError(f"key map: value for {key!r} must be 0–15, got {value!r}")
        out[key] = value
    seen: dict[int, str] = {}
    for key, value in out.items():
        if value in seen:
            raise ValueError(f"key map: keys {seen[value]!r} and {key!r} both send 0x{value:X}")
        seen[value] = key
    return out


def _six_parity(value: int) -> tuple[int, int]:
    high = ((value >> 3) & 1) + ((value >> 2) & 1)
    low = ((value >> 1) & 1) + (value & 1)
    return high % 2, 1 - low % 2


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFrame:
    """One encoded keypress frame."""

    bits: str

    @property
    def bit_length(self) -> int:
        return len(self.bits)

    @property
    def hex(self) -> str:
        return bits_to_hex(self.bits)

    def to_json(self) -> dict:
        return {"bit_length": self.bit_length, "bits": self.bits, "hex": self.hex}


@dataclass(frozen=True, slots=True, kw_only=True)
class KeypressFormat:
    """A keypress format with its key map and, for buffered PINs, facility code."""

    name: str
    key_map: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_KEY_MAP))
    facility_code: int = 0
    library: FormatLibrary = LIBRARY

    def __post_init__(self) -> None:
        canon = {n.casefold(): n for n in NAMES}.get(self.name.casefold())
        if canon is None:
            raise KeypressError("", f"unknown keypress format {self.name!r} (known: {', '.join(NAMES)})")
        object.__setattr__(self, "name", canon)
        object.__setattr__(self, "key_map", check_key_map(self.key_map))
        if self.buffered:
            fmt = self.library.get(BUFFERED[canon])
            fc = next((f for f in fmt.fields if f.name == "facility_code"), None)
            limit = fc.maximum if fc else 0
            if not 0 <= self.facility_code <= limit:
                raise KeypressError(
                    "", f"keypress facility code {self.facility_code} is out of range for {canon} (0–{limit})"
                )

    @property
    def buffered(self) -> bool:
        return self.name in BUFFERED

    @property
    def bit_length(self) -> int:
        if self.buffered:
            return self.library.get(BUFFERED[self.name]).bit_length
        return BURST[self.name]

    def _value_of(self, key: str) -> int:
        return self.key_map[key]

    def _key_of(self, value: int, bits: str) -> str:
        for key, v in self.key_map.items():
            if v == value:
                return key
        raise KeypressError(bits, f"{self.name} frame {bits} carries 0x{value:X}, which is no key")

    def encode(self, keys: str) -> list[KeyFrame]:
        """Frames a keypad in this format would send for ``keys``."""
        bad = [k for k in keys if k not in KEYS]
        if bad or not keys:
            raise KeypressError("", f"keys must be 0-9, * and #, got {keys!r}")
        if self.buffered:
            digits = keys[:-1] if keys.endswith("#") else keys
            if not digits.isdigit():
                raise KeypressError("", f"{self.name} sends a PIN of digits only (then #), got {keys!r}")
            pin = int(digits)
            try:
                bits = self.library.encode(BUFFERED[self.name], facility_code=self.facility_code or None,
                                           card_number=pin)
            except WiegandError as exc:
                raise KeypressError("", f"PIN {digits} does not fit {self.name}: {exc}") from None
            return [KeyFrame(bits=bits)]
        frames = []
        for key in keys:
            value = self._value_of(key)
            if self.name == "FourBit":
                raw = _FOUR.build({"value": value})
            elif self.name == "SixBitParity":
                lead, tail = _six_parity(value)
                raw = _SIX.build({"lead": lead, "value": value, "tail": tail})
            elif self.name == "EightBitZeroPadded":
                raw = _NIBBLES.build({"high": 0, "low": value})
            else:
                raw = _NIBBLES.build({"high": value ^ 0xF, "low": value})
            frames.append(KeyFrame(bits=raw.translate(_FROM_BYTES).decode()))
        return frames

    def decode_frame(self, bits: str) -> str:
        """The key(s) one frame carries; raises :class:`KeypressError` when it is not a key."""
        check_bits(bits)
        if len(bits) != self.bit_length:
            raise KeypressError(bits, f"{self.name} frames have {self.bit_length} bits, got {len(bits)}")
        if self.buffered:
            fmt = BUFFERED[self.name]
            m = self.library.get(fmt).read(bits)
            if m is None or m.parity_ok is False:
                raise KeypressError(bits, f"{self.name} PIN frame {bits} fails {fmt} parity")
            if (m.facility_code or 0) != self.facility_code:
                raise KeypressError(
                    bits, f"{self.name} PIN frame has facility code {m.facility_code}, "
                    f"expected {self.facility_code}"
                )
            return f"{m.card_number}#"
        raw = bits.encode().translate(_TO_BYTES)
        if self.name == "FourBit":
            return self._key_of(_FOUR.parse(raw).value, bits)
        if self.name == "SixBitParity":
            c = _SIX.parse(raw)
            if (c.lead, c.tail) != _six_parity(c.value):
                raise KeypressError(bits, f"SixBitParity frame {bits} fails parity")
            return self._key_of(c.value, bits)
        c = _NIBBLES.parse(raw)
        if self.name == "EightBitZeroPadded":
            if c.high:
                raise KeypressError(bits, f"EightBitZeroPadded frame 0x{c.high:X}{c.low:X} has a non-zero high nibble")
        elif c.high != c.low ^ 0xF:
            raise KeypressError(
                bits, f"EightBitInvertPadded frame 0x{c.high:X}{c.low:X}: high nibble 0x{c.high:X} "
                f"is not the inverse of 0x{c.low:X}"
            )
        return self._key_of(c.low, bits)

    def decode(self, frames: Iterable[str]) -> tuple[str, list[str]]:
        """Decode many frames: (keys, error messages of frames that were not keys)."""
        keys, errors = [], []
        for bits in frames:
            try:
                keys.append(self.decode_frame(bits))
            except (KeypressError, BitsError) as exc:
                errors.append(str(exc))
        return "".join(keys), errors

    def frame_from_hex(self, hex_value: str) -> str:
        """A frame given as hex (as ``keypress decode`` takes it) → its bits."""
        return hex_to_bits(hex_value, self.bit_length)
