"""Wiegand card formats declared as data; decode and encode.

A :class:`CardFormat` is a table: its length, its fields (start bit, bit count)
and, for every parity or fixed bit, its kind (``even``/``odd``/``fix0``/``fix1``)
and the bit positions it covers.  Positions count from 0 = the first bit on the
wire.  From that declaration the module builds a compiled construct layout that
slices the fields; parity is checked in plain code from the same table.

Layouts follow the public HID designators and the formats collected by the
Proxmark3 project's format list (client/src/wiegand_formats.c) and
cardinfo.barkweb.com.au; each declaration names its source.

``decode`` returns every format that fits a bit string (with its fields and
parity result), then picks one: the pinned format, or in ``auto`` mode the
first fitting format of a configurable preference order, else the only format
outside it whose parity checks.  When several formats fit, or only formats
without parity bits, nothing is picked and the result says why: an ambiguous
length is reported, never guessed silently.  A frame
whose every parity fails but whose complement decodes is reported as D0/D1
swapped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import (
    BitsError,
    FieldRangeError,
    FormatDefinitionError,
    LengthMismatch,
    UnknownFormat,
)

FIELD_NAMES = ("facility_code", "card_number", "issue_level", "oem")
PARITY_KINDS = ("even", "odd", "fix0", "fix1")
MAX_BITS = 256
_TO_BYTES = bytes.maketrans(b"01", b"\x00\x01")
_FROM_BYTES = bytes.maketrans(b"\x00\x01", b"01")


def check_bits(bits: str) -> str:
    """Return ``bits`` if it is a non-empty string of 0/1, else raise :class:`BitsError`."""
    if not isinstance(bits, str) or not bits or bits.strip("01"):
        raise BitsError(str(bits), f"expected a string of 0 and 1, got {bits!r}")
    if len(bits) > MAX_BITS:
        raise BitsError(bits, f"at most {MAX_BITS} bits, got {len(bits)}")
    return bits


def hex_to_bits(hex_value: str, bit_length: int) -> str:
    """A right-justified hex value and its bit length → the bit string (wire order)."""
    text = hex_value.strip().removeprefix("0x").removeprefix("0X")
    try:
        value = int(text, 16)
    except ValueError:
        raise BitsError(hex_value, f"hex: expected hexadecimal digits, got {hex_value!r}") from None
    if not 1 <= bit_length <= MAX_BITS:
        raise BitsError(hex_value, f"bit length: expected 1–{MAX_BITS}, got {bit_length}")
    if value >> bit_length:
        raise BitsError(hex_value, f"hex 0x{text} does not fit in {bit_length} bits")
    return format(value, f"0{bit_length}b")


def bits_to_hex(bits: str) -> str:
    """The right-justified hex value of ``bits`` (upper case, one digit per started nibble)."""
    return format(int(bits, 2), "X").rjust((len(bits) + 3) // 4, "0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """A number stored in ``length`` consecutive bits from ``start`` (MSB first).

    ``bcd`` fields hold decimal digits, four bits each (H10320).
    """

    name: str
    start: int
    length: int
    bcd: bool = False

    def __post_init__(self) -> None:
        if self.name not in FIELD_NAMES:
            raise ValueError(f"field name must be one of {FIELD_NAMES}, got {self.name!r}")
        if self.start < 0 or self.length < 1:
            raise ValueError(f"field {self.name}: start {self.start} / length {self.length} invalid")
        if self.bcd and self.length % 4:
            raise ValueError(f"field {self.name}: a BCD field is a multiple of 4 bits")

    @property
    def maximum(self) -> int:
        if self.bcd:
            return 10 ** (self.length // 4) - 1
        return (1 << self.length) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Parity:
    """A parity or fixed bit at ``position``.

    ``even``: the bit makes the count of ones over ``covers`` plus itself even;
    ``odd``: odd; ``fix0``/``fix1``: the bit is always 0/1 (``covers`` empty).
    """

    position: int
    kind: str  # one of PARITY_KINDS (typing.Literal would cost the CLI the typing import)
    covers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in PARITY_KINDS:
            raise ValueError(f"parity kind must be one of {PARITY_KINDS}, got {self.kind!r}")
        if self.kind in ("fix0", "fix1") and self.covers:
            raise ValueError("a fixed bit covers no bits")
        if self.kind in ("even", "odd") and not self.covers:
            raise ValueError(f"{self.kind} parity at {self.position} covers no bits")
        if self.position in self.covers:
            raise ValueError(f"parity at {self.position} cannot cover itself")

    @property
    def fixed(self) -> bool:
        return self.kind in ("fix0", "fix1")


def span(first: int, last: int, *, skip_mod3: int | None = None) -> tuple[int, ...]:
    """Positions first..last inclusive; ``skip_mod3`` drops positions p with p % 3 == it."""
    return tuple(p for p in range(first, last + 1) if skip_mod3 is None or p % 3 != skip_mod3)


@dataclass(frozen=True, slots=True, kw_only=True)
class FormatMatch:
    """One format's reading of a bit string."""

    format: str
    bit_length: int
    facility_code: int | None = None
    card_number: int | None = None
    issue_level: int | None = None
    oem: int | None = None
    parity_ok: bool | None = None
    parity: tuple[tuple[int, bool], ...] = ()

    @property
    def fits(self) -> bool:
        """True unless a parity bit fails (formats without parity always fit)."""
        return self.parity_ok is not False

    def to_json(self) -> dict:
        out: dict = {
            "format": self.format,
            "facility_code": self.facility_code,
            "card_number": self.card_number,
            "parity_ok": self.parity_ok,
        }
        if self.issue_level is not None:
            out["issue_level"] = self.issue_level
        if self.oem is not None:
            out["oem"] = self.oem
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CardFormat:
    """A Wiegand card format declared as data (see the module docstring)."""

    name: str
    bit_length: int
    fields: tuple[Field, ...] = ()
    parity: tuple[Parity, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    _layout: object = field(default=None, init=False, repr=False, compare=False)
    _order: tuple[Parity, ...] = field(default=(), init=False, repr=False, compare=False)
    _masks: tuple[tuple[int, int, str], ...] = field(default=(), init=False, repr=False, compare=False)
    _blank: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.bit_length
        if not 1 <= n <= MAX_BITS:
            raise FormatDefinitionError(self.name, f"bit length must be 1–{MAX_BITS}, got {n}")
        owner: dict[int, str] = {}
        for f in self.fields:
            if f.start + f.length > n:
                raise FormatDefinitionError(
                    self.name, f"{f.name} (bits {f.start}–{f.start + f.length - 1}) runs past bit {n - 1}"
                )
            for p in range(f.start, f.start + f.length):
                if p in owner:
                    raise FormatDefinitionError(self.name, f"bit {p} is in both {owner[p]} and {f.name}")
                owner[p] = f.name
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise FormatDefinitionError(self.name, f"a field appears twice in {names}")
        for par in self.parity:
            if not 0 <= par.position < n:
                raise FormatDefinitionError(self.name, f"parity bit {par.position} outside 0–{n - 1}")
            if par.position in owner:
                raise FormatDefinitionError(
                    self.name, f"parity bit {par.position} is also in {owner[par.position]}"
                )
            owner[par.position] = f"parity bit {par.position}"
            bad = [p for p in par.covers if not 0 <= p < n]
            if bad:
                raise FormatDefinitionError(self.name, f"parity bit {par.position} covers {bad}, outside 0–{n - 1}")
        object.__setattr__(self, "_order", self._dependency_order())
        masks = []
        for par in self._order:
            mask = 0
            for p in par.covers:
                mask |= 1 << (n - 1 - p)
            masks.append((n - 1 - par.position, mask, par.kind))
        object.__setattr__(self, "_masks", tuple(masks))
        # The construct layout is built and compiled on first read/encode (compiling every
        # built-in format at import cost the CLI ~160 ms on each start).

    def _compiled(self) -> object:
        layout = self._layout
        if layout is None:
            owner = {p: f.name for f in self.fields for p in range(f.start, f.start + f.length)}
            owner.update({par.position: f"parity bit {par.position}" for par in self.parity})
            layout = self._build_layout(owner)
            object.__setattr__(self, "_layout", layout)  # a race builds it twice, identically
        return layout

    def _dependency_order(self) -> tuple[Parity, ...]:
        """Parity bits in an order where every covered parity bit is computed first."""
        pending = {p.position: p for p in self.parity}
        done: list[Parity] = []
        while pending:
            ready = [
                p for p in pending.values() if not any(c in pending and c != p.position for c in p.covers)
            ]
            if not ready:
                raise FormatDefinitionError(
                    self.name, f"parity bits {sorted(pending)} cover each other in a cycle"
                )
            for p in sorted(ready, key=lambda x: x.position):
                done.append(p)
                del pending[p.position]
        return tuple(done)

    def _build_layout(self, owner: dict[int, str]) -> object:
        import construct as cs

        blank: dict[str, int] = {}
        segments = []
        by_start = {f.start: f for f in self.fields}
        parity_at = {p.position for p in self.parity}
        p = 0
        while p < self.bit_length:
            if p in by_start:
                f = by_start[p]
                segments.append(f.name / cs.BitsInteger(f.length))
                p += f.length
            elif p in parity_at:
                segments.append(f"_p{p}" / cs.BitsInteger(1))
                p += 1
            else:
                end = p
                while end < self.bit_length and end not in owner:
                    end += 1
                segments.append(f"_gap{p}" / cs.BitsInteger(end - p))
                blank[f"_gap{p}"] = 0
                p = end
        blank.update({f"_p{q}": 0 for q in parity_at})
        self._blank.update(blank)
        layout = cs.Struct(*segments)
        try:
            return layout.compile()
        except Exception:  # pragma: no cover - every built-in layout compiles
            return layout

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def has_parity(self) -> bool:
        return any(not p.fixed for p in self.parity)

    def describe(self) -> dict:
        """The declaration as JSON-able data (for ``wiegand formats``)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "bit_length": self.bit_length,
            "description": self.description,
            "fields": {f.name: {"start": f.start, "length": f.length, **({"bcd": True} if f.bcd else {})}
                       for f in self.fields},
            "parity": [{"position": p.position, "kind": p.kind, "covers": list(p.covers)} for p in self.parity],
            "source": self.source,
        }

    def _parity_results(self, value: int) -> tuple[tuple[int, bool], ...]:
        out = []
        for (shift, mask, kind), par in zip(self._masks, self._order, strict=True):
            bit = (value >> shift) & 1
            if kind == "even":
                ok = ((value & mask).bit_count() + bit) % 2 == 0
            elif kind == "odd":
                ok = ((value & mask).bit_count() + bit) % 2 == 1
            else:
                ok = bit == (kind == "fix1")
            out.append((par.position, ok))
        return tuple(sorted(out))

    def read(self, bits: str) -> FormatMatch | None:
        """This format's reading of ``bits``, or None when it cannot be this format.

        It cannot when the length differs, a fixed bit is wrong or a BCD digit
        is over 9; a failing parity bit still reads (``parity_ok`` False).
        """
        if len(bits) != self.bit_length:
            return None
        value = int(bits, 2)
        results = self._parity_results(value)
        fixed = {p.position for p in self.parity if p.fixed}
        if any(not ok for pos, ok in results if pos in fixed):
            return None
        parsed = self._compiled().parse(bits.encode().translate(_TO_BYTES))
        values: dict[str, int] = {}
        for f in self.fields:
            raw = parsed[f.name]
            if f.bcd:
                digits = [(raw >> s) & 0xF for s in range(f.length - 4, -1, -4)]
                if any(d > 9 for d in digits):
                    return None
                raw = int("".join(map(str, digits)))
            values[f.name] = raw
        checked = tuple((pos, ok) for pos, ok in results if pos not in fixed)
        return FormatMatch(
            format=self.name,
            bit_length=self.bit_length,
            parity_ok=all(ok for _, ok in checked) if checked else None,
            parity=checked,
            **values,
        )

    def encode(self, **values: int | None) -> str:
        """Build the bit string from field values (missing fields are 0); checks ranges."""
        for name, value in values.items():
            if name not in FIELD_NAMES:
                raise FormatDefinitionError(self.name, f"no such field {name!r}")
            if value is None:
                continue
            if name not in self.field_names:
                if value:
                    raise FieldRangeError(self.name, name, value, -1)
        container: dict[str, int] = {}
        for f in self.fields:
            value = values.get(f.name) or 0
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= f.maximum:
                raise FieldRangeError(self.name, f.name, value, f.maximum)
            if f.bcd:
                value = int(str(value).rjust(f.length // 4, "0"), 16)
            container[f.name] = value
        layout = self._compiled()
        container.update(self._blank)  # unused bits and parity bits: 0 until computed below
        wire = layout.build(container)
        value = int(wire.translate(_FROM_BYTES), 2)
        n = self.bit_length
        for shift, mask, kind in self._masks:
            if kind == "fix1":
                bit = 1
            elif kind == "fix0":
                bit = 0
            else:
                ones = (value & mask).bit_count() % 2
                bit = ones if kind == "even" else 1 - ones
            value |= bit << shift
        return format(value, f"0{n}b")


@dataclass(frozen=True, slots=True, kw_only=True)
class Decoding:
    """Everything ``decode`` learned about a bit string.

    ``chosen`` is the format the caller should use (None when nothing fits or
    the choice would be a guess; ``reason`` says which).  ``alternatives``
    names the other formats that fit too.  ``swapped`` is True when the bits
    only decode once complemented (D0/D1 wired the wrong way round); then
    ``chosen`` is the complement's reading and ``reason`` says so.
    """

    bits: str
    matches: tuple[FormatMatch, ...]
    chosen: FormatMatch | None
    alternatives: tuple[str, ...] = ()
    swapped: bool = False
    reason: str | None = None

    @property
    def bit_length(self) -> int:
        return len(self.bits)

    @property
    def ok(self) -> bool:
        """A usable decoding: a format was chosen from the bits as received."""
        return self.chosen is not None and not self.swapped

    def to_json(self) -> dict:
        c = self.chosen
        return {
            "bit_length": self.bit_length,
            "bits": self.bits,
            "hex": bits_to_hex(self.bits),
            "format": c.format if c else None,
            "facility_code": c.facility_code if c else None,
            "card_number": c.card_number if c else None,
            "parity_ok": c.parity_ok if c else (False if any(m.parity_ok is False for m in self.matches) else None),
            "matches": [m.to_json() for m in self.matches],
            "alternatives": list(self.alternatives),
            "swapped": self.swapped,
            "reason": self.reason,
        }


RAW = "Raw"


def _std(name: str, n: int, *, fields: Mapping[str, tuple[int, int]], parity: Iterable[Parity] = (),
         aliases: tuple[str, ...] = (), description: str = "", source: str = "") -> CardFormat:
    return CardFormat(
        name=name,
        bit_length=n,
        fields=tuple(Field(name=k, start=s, length=ln) for k, (s, ln) in fields.items()),
        parity=tuple(parity),
        aliases=aliases,
        description=description,
        source=source,
    )


def _even(pos: int, covers: Iterable[int]) -> Parity:
    return Parity(position=pos, kind="even", covers=tuple(covers))


def _odd(pos: int, covers: Iterable[int]) -> Parity:
    return Parity(position=pos, kind="odd", covers=tuple(covers))


_PM3 = "Proxmark3 client/src/wiegand_formats.c"
_BARK = "cardinfo.barkweb.com.au (via " + _PM3 + ")"

BUILTIN: tuple[CardFormat, ...] = (
    _std("H10301", 26, fields={"facility_code": (1, 8), "card_number": (9, 16)},
         parity=[_even(0, span(1, 12)), _odd(25, span(13, 24))], aliases=("Wiegand26",),
         description="HID 26-bit standard", source="HID H10301 format description"),
    _std("ind26", 26, fields={"facility_code": (1, 12), "card_number": (13, 12)},
         parity=[_even(0, span(1, 12)), _odd(25, span(13, 24))], description="Indala 26-bit", source=_BARK),
    _std("2804W", 28, fields={"facility_code": (4, 8), "card_number": (12, 15)},
         parity=[_odd(2, span(4, 26, skip_mod3=0)), _even(0, span(1, 13)), _odd(27, span(0, 26))],
         description="2804 Wiegand 28-bit", source=_BARK),
    _std("ATSW30", 30, fields={"facility_code": (1, 12), "card_number": (13, 16)},
         parity=[_even(0, span(1, 12)), _odd(29, span(13, 28))], description="ATS Wiegand 30-bit", source=_BARK),
    _std("ADT31", 31, fields={"facility_code": (1, 4), "card_number": (5, 23)},
         description="HID ADT 31-bit (no parity)", source=_BARK),
    CardFormat(name="Kastle32", bit_length=32, aliases=("Kastle",),
               fields=(Field(name="issue_level", start=2, length=5), Field(name="facility_code", start=7, length=8),
                       Field(name="card_number", start=15, length=16)),
               parity=(Parity(position=1, kind="fix1"), _even(0, span(1, 16)), _odd(31, span(14, 30))),
               description="Kastle 32-bit", source=_PM3 + " (PR #23)"),
    _std("Kantech32", 32, fields={"facility_code": (7, 8), "card_number": (15, 16)},
         description="Indala/Kantech KFS 32-bit (no parity)", source=_BARK),
    _std("D10202", 33, fields={"facility_code": (1, 7), "card_number": (8, 24)},
         parity=[_even(0, span(1, 16)), _odd(32, span(16, 31))], description="HID D10202 33-bit", source=_BARK),
    _std("H10306", 34, fields={"facility_code": (1, 16), "card_number": (17, 16)},
         parity=[_even(0, span(1, 16)), _odd(33, span(17, 32))], aliases=("Wiegand34",),
         description="HID 34-bit", source="HID H10306 format description"),
    _std("BQT34", 34, fields={"facility_code": (1, 8), "card_number": (9, 24)},
         parity=[_even(0, span(1, 16)), _odd(33, span(17, 32))], description="BQT 34-bit", source=_BARK),
    _std("C1k35s", 35, fields={"facility_code": (2, 12), "card_number": (14, 20)},
         parity=[_even(1, span(2, 33, skip_mod3=1)), _odd(34, span(1, 33, skip_mod3=0)), _odd(0, span(1, 34))],
         description="HID Corporate 1000 35-bit", source=_PM3 + " (masks 0xB6DB6DB6 / 0x6DB6DB6C)"),
    CardFormat(name="C15001", bit_length=36,
               fields=(Field(name="oem", start=1, length=10), Field(name="facility_code", start=11, length=8),
                       Field(name="card_number", start=19, length=16)),
               parity=(_even(0, span(1, 17)), _odd(35, span(18, 34))),
               description="HID KeyScan 36-bit", source=_PM3),
    CardFormat(name="S12906", bit_length=36,
               fields=(Field(name="facility_code", start=1, length=8), Field(name="issue_level", start=9, length=2),
                       Field(name="card_number", start=11, length=24)),
               parity=(_odd(0, span(1, 17)), _odd(35, span(17, 34))),
               description="HID Simplex 36-bit", source=_BARK),
    _std("Sie36", 36, fields={"facility_code": (1, 18), "card_number": (19, 16)},
         parity=[_odd(0, span(1, 34, skip_mod3=2)), _even(35, span(1, 34, skip_mod3=0))],
         description="HID 36-bit Siemens", source=_BARK),
    CardFormat(name="H10320", bit_length=36,
               fields=(Field(name="card_number", start=0, length=32, bcd=True),),
               parity=(_even(32, range(0, 32, 4)), _odd(33, range(1, 32, 4)),
                       _even(34, range(2, 32, 4)), _even(35, range(3, 32, 4))),
               description="HID 36-bit BCD (8 digits, column parity)", source=_PM3),
    _std("H10302", 37, fields={"card_number": (1, 35)},
         parity=[_even(0, span(1, 18)), _odd(36, span(18, 35))], aliases=("Wiegand37",),
         description="HID 37-bit, no facility code", source="HID H10302 format description"),
    _std("H10304", 37, fields={"facility_code": (1, 16), "card_number": (17, 19)},
         parity=[_even(0, span(1, 18)), _odd(36, span(18, 35))], aliases=("Wiegand37FacilityCode",),
         description="HID 37-bit with facility code", source="HID H10304 format description"),
    _std("MDI37", 37, fields={"facility_code": (3, 4), "card_number": (7, 29)},
         parity=[_even(0, span(1, 18)), _odd(36, span(18, 35))], description="PointGuard MDI 37-bit", source=_BARK),
    CardFormat(name="BQT38", bit_length=38,
               fields=(Field(name="card_number", start=1, length=19), Field(name="issue_level", start=20, length=4),
                       Field(name="facility_code", start=24, length=13)),
               parity=(_even(0, span(1, 18)), _odd(37, span(19, 36))), description="BQT 38-bit", source=_BARK),
    _std("PW39", 39, fields={"facility_code": (1, 17), "card_number": (18, 20)},
         parity=[_even(0, span(1, 18)), _odd(38, span(19, 37))], description="Pyramid 39-bit", source=_BARK),
    _std("P10001", 40, fields={"facility_code": (4, 12), "card_number": (16, 16)},
         parity=[*(Parity(position=i, kind="fix1") for i in range(4)),
                 *(_even(32 + j, (j, 8 + j, 16 + j, 24 + j)) for j in range(8))],
         description="HID Honeywell 40-bit (0xF prefix, XOR check byte)", source=_BARK),
    _std("Casi40", 40, fields={"card_number": (1, 38)}, description="Casi-Rusco 40-bit (no parity)", source=_BARK),
    _std("C1k48s", 48, fields={"facility_code": (2, 22), "card_number": (24, 23)},
         parity=[_even(1, span(2, 46, skip_mod3=2)), _odd(47, span(2, 46, skip_mod3=1)), _odd(0, span(1, 47))],
         description="HID Corporate 1000 48-bit", source=_PM3 + " (masks 0x1B6D/0xB6DB6DB6, 0x36DB/0x6DB6DB6C)"),
    _std("Avig56", 56, fields={"facility_code": (1, 20), "card_number": (21, 34)},
         parity=[_even(0, span(1, 27)), _odd(55, span(28, 54))], description="Avigilon 56-bit", source=_PM3),
)

DEFAULT_PREFERENCE = ("H10301", "H10306", "C1k35s", "H10302", "H10304", "C1k48s")


def custom_format(
    *,
    name: str,
    bit_length: int,
    fc_position: int = 0,
    fc_size: int = 0,
    cn_position: int = 1,
    cn_size: int,
    start_parity: str = "None",
    start_span: tuple[int, int] | list[int] | None = None,
    stop_parity: str = "None",
    stop_span: tuple[int, int] | list[int] | None = None,
) -> CardFormat:
    """A format with the commercial intercom's custom-format options.

    The frame has ``bit_length`` bits; its first bit is the start bit and its
    last bit the stop bit unless that one is ``None``.  Each is ``None``
    (absent: the bit carries data), ``Even``, ``Odd``, ``Fix0`` or ``Fix1``; the
    data bits are the rest.  FC/CN positions and the parity spans
    ``(first, last)`` (inclusive) count from 0 = the first bit on the wire; a
    span defaults to the first (start bit) or second (stop bit) half of the
    data bits.
    """
    kinds = {"none": None, "even": "even", "odd": "odd", "fix0": "fix0", "fix1": "fix1"}
    lead = kinds.get(str(start_parity).lower(), "?")
    tail = kinds.get(str(stop_parity).lower(), "?")
    for label, kind, given in (("start_parity", lead, start_parity), ("stop_parity", tail, stop_parity)):
        if kind == "?":
            raise FormatDefinitionError(name, f"{label}: expected None/Even/Odd/Fix0/Fix1, got {given!r}")
    n = bit_length
    if not 1 <= n <= MAX_BITS:
        raise FormatDefinitionError(name, f"bit_length: expected 1–{MAX_BITS}, got {n}")
    first_data = 1 if lead else 0
    last_data = n - 2 if tail else n - 1
    data_bits = last_data - first_data + 1
    if data_bits < 1:
        raise FormatDefinitionError(name, f"{n} bits leave no data bits between the start and stop bits")
    fields = []
    for fname, pos, size in (("facility_code", fc_position, fc_size), ("card_number", cn_position, cn_size)):
        if size:
            if pos < first_data or pos + size - 1 > last_data:
                raise FormatDefinitionError(
                    name, f"{fname} at bit {pos} with {size} bits is outside the data bits {first_data}–{last_data}"
                )
            fields.append(Field(name=fname, start=pos, length=size))
    half = first_data + (data_bits + 1) // 2
    parity = []
    for label, kind, pos, given, default in (
        ("start_span", lead, 0, start_span, (first_data, half - 1)),
        ("stop_span", tail, n - 1, stop_span, (half if data_bits > 1 else first_data, last_data)),
    ):
        if kind is None:
            continue
        if kind in ("fix0", "fix1"):
            parity.append(Parity(position=pos, kind=kind))
            continue
        lo, hi = tuple(given) if given else default
        if not first_data <= lo <= hi <= last_data:
            raise FormatDefinitionError(
                name, f"{label} ({lo}, {hi}) is outside the data bits {first_data}–{last_data}"
            )
        parity.append(Parity(position=pos, kind=kind, covers=tuple(range(lo, hi + 1))))
    try:
        return CardFormat(name=name, bit_length=n, fields=tuple(fields), parity=tuple(parity),
                          description="custom format from the config", source="config")
    except FormatDefinitionError:
        raise
    except ValueError as exc:
        raise FormatDefinitionError(name, str(exc)) from None


class FormatLibrary:
    """A set of card formats addressed by name or alias (case-insensitive)."""

    def __init__(self, formats: Iterable[CardFormat] = BUILTIN) -> None:
        self.formats: tuple[CardFormat, ...] = tuple(formats)
        self._by_name: dict[str, CardFormat] = {}
        self._by_length: dict[int, list[CardFormat]] = {}
        for f in self.formats:
            for key in (f.name, *f.aliases):
                k = key.casefold()
                if k in self._by_name or k == RAW.casefold():
                    raise FormatDefinitionError(f.name, f"the name {key!r} is already taken")
                self._by_name[k] = f
            self._by_length.setdefault(f.bit_length, []).append(f)

    def with_formats(self, extra: Iterable[CardFormat]) -> FormatLibrary:
        """This library plus ``extra`` (custom formats); names must stay unique."""
        return FormatLibrary((*self.formats, *extra))

    @property
    def names(self) -> tuple[str, ...]:
        return (*(f.name for f in self.formats), RAW)

    def get(self, name: str) -> CardFormat:
        try:
            return self._by_name[name.casefold()]
        except KeyError:
            raise UnknownFormat(name, self.names) from None

    def canonical(self, name: str) -> str:
        """The format's own name for a name or alias (``Raw`` stays ``Raw``)."""
        return RAW if name.casefold() == RAW.casefold() else self.get(name).name

    def lengths(self) -> frozenset[int]:
        return frozenset(self._by_length)

    def matches(self, bits: str) -> tuple[FormatMatch, ...]:
        """Every format's reading of ``bits`` (library order), failing parity included."""
        out = []
        for f in self._by_length.get(len(bits), ()):
            m = f.read(bits)
            if m is not None:
                out.append(m)
        return tuple(out)

    def decode(self, bits: str, *, format: str = "auto",
               preference: Iterable[str] = DEFAULT_PREFERENCE, _complement: bool = True) -> Decoding:
        """Decode ``bits`` (see the module docstring for how one format is chosen)."""
        check_bits(bits)
        preference = tuple(preference)
        matches = self.matches(bits)
        if format.casefold() != "auto":
            if format.casefold() == RAW.casefold():
                raw = FormatMatch(format=RAW, bit_length=len(bits), card_number=int(bits, 2))
                return Decoding(bits=bits, matches=matches, chosen=raw)
            fmt = self.get(format)
            if fmt.bit_length != len(bits):
                return Decoding(bits=bits, matches=matches, chosen=None,
                                reason=str(LengthMismatch(bits, fmt.name, fmt.bit_length)))
            m = fmt.read(bits)
            if m is None:
                return Decoding(bits=bits, matches=matches, chosen=None,
                                reason=f"bits do not fit {fmt.name} (fixed bits or BCD digits)")
            if m.parity_ok is False:
                return self._maybe_swapped(bits, matches, format=fmt.name, preference=preference,
                                           reason=f"{fmt.name} parity fails", complement=_complement)
            return Decoding(bits=bits, matches=matches, chosen=m,
                            alternatives=tuple(x.format for x in matches if x.fits and x.format != m.format))
        rank = {}
        for i, name in enumerate(preference):
            canon = self.canonical(name)
            rank.setdefault(canon, i)
        fits = [m for m in matches if m.fits]
        preferred = sorted((m for m in fits if m.format in rank), key=lambda m: rank[m.format])
        if preferred:
            chosen = preferred[0]
        else:
            checked = [m for m in fits if m.parity_ok]
            if len(checked) == 1:
                chosen = checked[0]
            elif fits:
                names = ", ".join(m.format for m in fits)
                what = "ambiguous" if checked else "only formats without parity fit"
                return Decoding(bits=bits, matches=matches, chosen=None, alternatives=tuple(m.format for m in fits),
                                reason=f"{what}: {len(bits)} bits fit {names}; choose a format or a preference order")
            elif RAW in rank:
                raw = FormatMatch(format=RAW, bit_length=len(bits), card_number=int(bits, 2))
                return Decoding(bits=bits, matches=matches, chosen=raw)
            elif not matches:
                return Decoding(bits=bits, matches=matches, chosen=None,
                                reason=f"no format of {len(bits)} bits")
            else:
                return self._maybe_swapped(bits, matches, format="auto", preference=preference,
                                           reason=f"parity fails for every {len(bits)}-bit format",
                                           complement=_complement)
        alternatives = tuple(m.format for m in fits if m.format != chosen.format)
        return Decoding(bits=bits, matches=matches, chosen=chosen, alternatives=alternatives)

    def _maybe_swapped(self, bits: str, matches: tuple[FormatMatch, ...], *, format: str,
                       preference: tuple[str, ...], reason: str, complement: bool) -> Decoding:
        if not complement or any(m.parity_ok for m in matches):
            return Decoding(bits=bits, matches=matches, chosen=None, reason=reason)
        flipped = bits.translate(str.maketrans("01", "10"))
        other = self.decode(flipped, format=format, preference=preference, _complement=False)
        if other.chosen is not None and other.chosen.parity_ok:
            return Decoding(bits=bits, matches=matches, chosen=other.chosen, swapped=True,
                            reason=f"{reason}; the complement decodes as {other.chosen.format}: D0/D1 swapped")
        return Decoding(bits=bits, matches=matches, chosen=None, reason=reason)

    def encode(self, format: str, *, facility_code: int | None = None, card_number: int,
               issue_level: int | None = None, oem: int | None = None) -> str:
        """Bits of ``format`` holding the given values; a value out of range names the limit."""
        if format.casefold() == RAW.casefold():
            raise FormatDefinitionError(RAW, "Raw has no layout to encode; give the bits or hex directly")
        return self.get(format).encode(facility_code=facility_code, card_number=card_number,
                                       issue_level=issue_level, oem=oem)


LIBRARY = FormatLibrary()
