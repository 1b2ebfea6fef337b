"""Holder fields: one declarative list and one walker that validates them.

Each field of a holder is declared once in :data:`HOLDER_FIELDS` with its rule (what
is expected, a parser, where it is stored, whether CSV carries it), in the spirit of
``accessd.config``'s ``opt()``.  :func:`normalize_holder` walks that list for the CLI,
the socket and every CSV row alike, so the three cannot disagree::

    line 7, pin: expected 4 to 16 decimal digits, got '(hidden)'

Card format names are checked against a :class:`FormatLibrary` (the daemon's, with the
custom ``[[formats]]``): an alias is stored by the format's own name, an unknown name is
refused listing the known ones.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from accessd.access.decision import window_end, window_start
from accessd.errors import InvalidField
from accessd.protocols.wiegand.errors import UnknownFormat
from accessd.protocols.wiegand.formats import LIBRARY, FormatLibrary

PIN_MIN, PIN_MAX = 4, 16

# Characters no text field may hold: C0 and C1 controls (tab allowed), DEL, and the Unicode
# line and paragraph separators.  Each of these ends a line for str.splitlines() or for a
# spreadsheet, so a name holding one would not survive an export and re-import.
_BREAKS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"
_ONE_LINE = re.compile(f"[{_BREAKS}\n\r]")
_MULTI_LINE = re.compile(f"[{_BREAKS}]")  # notes may keep \n and \r
_PIN = re.compile(f"[0-9]{{{PIN_MIN},{PIN_MAX}}}")  # ASCII digits: "١٢٣٤".isdigit() is True


class _Bad(ValueError):
    """A parser's refusal with its own description of what was expected."""

    def __init__(self, expect: str) -> None:
        super().__init__(expect)
        self.expect = expect


Parser = Callable[[object, FormatLibrary], object]


@dataclass(frozen=True, slots=True)
class HolderField:
    """One holder field: its rule and where it goes.

    ``parse(value, formats)`` returns the stored value or raises ``ValueError``;
    ``blank`` is the value of an empty field (for ``update``: the field is cleared);
    ``store`` is ``"holder"`` (a column of the holders table) or the credential it is
    part of (``"card"``, ``"pin"``, ``"qr"``); ``csv`` is ``"column"`` for DESIGN's CSV
    columns, ``"extra"`` for columns accepted on import and exported after them, None
    for fields CSV does not carry; ``secret`` values are never shown in an error.
    """

    name: str
    expect: str
    parse: Parser
    blank: object = None
    store: str = "holder"
    csv: str | None = "column"
    secret: bool = False
    required: bool = False


# -- parsers -------------------------------------------------------------------------


def text(limit: int = 200, *, multiline: bool = False, strip: bool = True) -> Parser:
    bad = _MULTI_LINE if multiline else _ONE_LINE

    def parse(value: object, _formats: FormatLibrary) -> str:
        if not isinstance(value, str) or len(value) > limit or bad.search(value):
            raise ValueError(value)
        return value.strip() if strip else value

    return parse


def whole(lo: int, hi: int) -> Parser:
    def parse(value: object, _formats: FormatLibrary) -> int:
        if isinstance(value, bool):
            raise ValueError(value)
        n = value if isinstance(value, int) else int(str(value).strip(), 10)
        if not lo <= n <= hi:
            raise ValueError(value)
        return n

    return parse


def seconds(lo: float, hi: float) -> Parser:
    def parse(value: object, _formats: FormatLibrary) -> float:
        if isinstance(value, bool):
            raise ValueError(value)
        try:
            t = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            t = math.nan
        if not lo <= t <= hi:
            raise ValueError(value)
        return t

    return parse


def flag(value: object, _formats: FormatLibrary) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "y"):
        return True
    if word in ("0", "false", "no", "n", ""):
        return False
    raise ValueError(value)


TIME_EXPECT = "an ISO 8601 date or date-time (2026-03-01, 2026-03-01T18:00+01:00)"


def parse_time(value: object, field: str) -> str:
    """Validate an ISO 8601 date or date-time; return it normalised (seconds resolution)."""
    try:
        return iso_time(value, LIBRARY)
    except ValueError:
        raise InvalidField(field, value, TIME_EXPECT) from None


def iso_time(value: object, _formats: FormatLibrary) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    value = value.strip()
    if len(value) == 10:
        return date.fromisoformat(value).isoformat()
    return datetime.fromisoformat(value).replace(microsecond=0).isoformat()


def json_object(value: object, _formats: FormatLibrary) -> str:
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        raise ValueError(value)
    return json.dumps(parsed, sort_keys=True)


def card_hex(value: object, _formats: FormatLibrary) -> int:
    digits = str(value).strip()
    if digits[:2].lower() == "0x":
        digits = digits[2:]
    if not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        raise ValueError(value)
    return int(digits, 16)


def format_name(value: object, formats: FormatLibrary) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise _Bad(f"a card format name, one of {', '.join(formats.names)}")
    try:
        return formats.canonical(value.strip())
    except UnknownFormat:
        raise _Bad(f"a card format name, one of {', '.join(formats.names)}") from None


_NAME = re.compile(r"[\w.-]{1,64}", re.ASCII)


def config_name(value: object, _formats: FormatLibrary) -> str:
    name = str(value).strip()
    if not _NAME.fullmatch(name):
        raise ValueError(value)
    return name


def pin_digits(value: object, _formats: FormatLibrary) -> str:
    pin = str(value).strip()
    if not _PIN.fullmatch(pin):
        raise ValueError("(hidden)")
    return pin


# -- the fields ----------------------------------------------------------------------

HOLDER_FIELDS: tuple[HolderField, ...] = (
    # DESIGN's CSV columns, in their order
    HolderField("first_name", "a non-empty name of at most 200 printable characters", text(), required=True),
    HolderField("last_name", "text of at most 200 printable characters", text(), blank=""),
    HolderField("card", "hexadecimal digits", card_hex, store="card"),
    HolderField("bit_length", "a whole number 1–1024", whole(1, 1024), store="card"),
    HolderField("format", "a card format name", format_name, store="card"),
    HolderField("facility_code", "a whole number 0–2147483647", whole(0, 2**31 - 1), store="card"),
    HolderField("card_number", "a whole number 0–9223372036854775807", whole(0, 2**63 - 1), store="card"),
    HolderField("pin", f"{PIN_MIN} to {PIN_MAX} decimal digits", pin_digits, store="pin", secret=True),
    HolderField("qr", "text of at most 1000 printable characters", text(1000, strip=False), store="qr",
                secret=True),
    HolderField("valid_from", TIME_EXPECT, iso_time),
    HolderField("valid_to", TIME_EXPECT, iso_time),
    HolderField("uses", "a whole number 0–2147483647", whole(0, 2**31 - 1)),
    HolderField("suspended", "true/false (or 1/0, yes/no)", flag, blank=False),
    HolderField("notes", "text of at most 2000 printable characters", text(2000, multiline=True, strip=False),
                blank=""),
    # accepted on import, exported after DESIGN's columns
    HolderField("access_time", "a number of seconds 1–3600", seconds(1, 3600), csv="extra"),
    HolderField("schedule", "the name of a configured schedule (letters, digits, '.', '-', '_')", config_name,
                csv="extra"),
    HolderField("group", "the name of a configured access group (letters, digits, '.', '-', '_')", config_name,
                csv="extra"),
    # not in CSV
    HolderField("conditions", "a JSON object", json_object, csv=None),
)

FIELDS = {f.name: f for f in HOLDER_FIELDS}
HOLDER_KEYS = frozenset(FIELDS)
HOLDER_COLUMNS = tuple(f.name for f in HOLDER_FIELDS if f.store == "holder")  # columns of the holders table
SQL_HOLDER_COLUMNS = ", ".join(f'"{c}"' for c in HOLDER_COLUMNS)  # quoted: GROUP is an SQL keyword
CARD_KEYS = tuple(f.name for f in HOLDER_FIELDS if f.store == "card")
CSV_COLUMNS = tuple(f.name for f in HOLDER_FIELDS if f.csv == "column")
CSV_EXTRA_COLUMNS = tuple(f.name for f in HOLDER_FIELDS if f.csv == "extra")


def _blank(value: object) -> bool:
    return value is None or (value.__class__ is str and not value.strip())


def normalize_holder(raw: dict, *, partial: bool = False, formats: FormatLibrary = LIBRARY) -> dict:
    """Validate holder fields (from the CLI, the socket or a CSV row).

    Returns a dict with only the keys given.  Empty strings and None mean "not set"
    (for ``update``: cleared).  Credential fields come back as ``card`` (a tuple
    (hex, bit_length, format, fc, cn) or None), ``pin`` (digits or None), ``qr``.
    """
    if not raw.keys() <= HOLDER_KEYS:
        name = sorted(set(raw) - HOLDER_KEYS)[0]
        raise InvalidField(name, raw[name], f"one of the holder fields {sorted(HOLDER_KEYS)}")
    out: dict = {}
    for f in HOLDER_FIELDS:
        if f.name not in raw:
            if f.required and not partial:
                raise InvalidField(f.name, None, f.expect)
            continue
        value = raw[f.name]
        if _blank(value):
            if f.required:
                raise InvalidField(f.name, value, f.expect)
            out[f.name] = f.blank
            continue
        try:
            out[f.name] = f.parse(value, formats)
        except (ValueError, TypeError) as exc:
            expect = exc.expect if isinstance(exc, _Bad) else f.expect
            raise InvalidField(f.name, "(hidden)" if f.secret else value, expect) from None
    if out.get("valid_from") and out.get("valid_to"):
        check_window(out["valid_from"], out["valid_to"], raw.get("valid_to"))
    if any(k in raw for k in CARD_KEYS):
        out["card"] = _card({k: out.pop(k, None) for k in CARD_KEYS}, raw)
    return out


def check_window(valid_from: str, valid_to: str, shown: object = None) -> None:
    """valid_to must end after valid_from starts (both read in one zone, so the order does
    not depend on the device's zone)."""
    if window_end(valid_to, UTC) <= window_start(valid_from, UTC):
        raise InvalidField("valid_to", valid_to if shown is None else shown, f"a time after valid_from {valid_from}")


def _card(parts: dict, raw: dict) -> tuple | None:
    """The card fields as one credential: (hex, bit_length, format, fc, cn) or None."""
    number, bits, fmt, fc, cn = (parts[k] for k in CARD_KEYS)
    if all(v is None for v in (number, bits, fmt, fc, cn)):
        return None
    hex_value = None
    if number is not None or bits is not None:
        if number is None:
            raise InvalidField("card", None, "the card's hex value with bit_length")
        if bits is None:
            raise InvalidField("bit_length", None, "the card's bit length with card")
        if number >> bits:
            raise InvalidField("card", raw["card"], f"a value that fits in {bits} bits")
        hex_value = format(number, "X").rjust((bits + 3) // 4, "0")  # as Credential.hex
    if fmt is not None or fc is not None or cn is not None:
        if fmt is None:
            raise InvalidField("format", None, "a card format name with facility_code/card_number")
        if cn is None:
            raise InvalidField("card_number", None, f"the card number of a {fmt} card")
    return (hex_value, bits, fmt, fc, cn)
