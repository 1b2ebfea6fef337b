"""The credential pipeline: what a reader's bits and keys mean, the same for every reader.

A reader component only knows how bits and keys *arrive* (Wiegand edges on two pins,
OSDP ``osdp_RAW`` / ``osdp_KEYPAD`` replies, a QR scanner's line).  It hands them to its
:class:`ReaderPipeline`, which turns them into typed events:

* :class:`Presented` — a credential to decide on (a card, a PIN, a QR text);
* :class:`Rejected` — bits no format accepts (``invalid_format``: bad parity, an
  unknown length without ``accept_raw``, D0/D1 swapped), with the bits and why;
* :class:`PinAbandoned` — digits were typed but never submitted (``pin_timeout``).

Cards (:class:`CardInterpreter`): the configured ``format`` (or ``auto`` with the
``preference`` order), then ``convert_to`` (the intercom's output-format conversion
with its facility-code modes), else the decoded card, else — with ``accept_raw`` — a
``Raw`` card matched by its bits alone, but only when nothing contradicts it: a frame
whose length a format knows but whose parity fails, or whose complement decodes
(swapped wiring), is rejected, never guessed.  Every format that reads the bits with
good parity is kept on the credential (``Credential.candidates``) so the entry list can
match a holder enrolled by the number printed on another format's badge.

PINs: one :class:`~accessd.protocols.keypad.PinAssembler` per reader (``*`` clears,
``#`` or the fixed length submits, a timeout drops pending digits).  Timers are data:
:meth:`ReaderPipeline.next_deadline` / :meth:`ReaderPipeline.tick`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .credential import Credential
from .keypad import PinAssembler, PinEntered, PinTimeout
from .wiegand.convert import convert
from .wiegand.errors import UnknownFormat, WiegandError
from .wiegand.formats import DEFAULT_PREFERENCE, RAW, FormatLibrary, check_bits

FC_MODES = ("auto", "optional", "override")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardSettings:
    """How one reader's card bits are read (the reader's config, validated)."""

    format: str = "auto"
    preference: tuple[str, ...] = tuple(DEFAULT_PREFERENCE)
    accept_raw: bool = True
    convert_to: str | None = None
    fc_mode: str = "auto"
    facility_code: int = 0
    byte_reversal: bool = False
    max_32bit: bool = False

    def __post_init__(self) -> None:
        if self.fc_mode not in FC_MODES:
            raise ValueError(f"fc_mode must be one of {FC_MODES}, got {self.fc_mode!r}")
        if not isinstance(self.preference, tuple):
            raise ValueError("preference must be a tuple of format names")


@dataclass(frozen=True, slots=True, kw_only=True)
class Presented:
    """A credential read at the reader, to be decided on."""

    credential: Credential


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """Bits that are no credential, or a QR scan that gave no text (``access.denied``
    with reason ``invalid_format``).  A QR rejection carries no bits and never the
    scanned bytes: only why (``detail``)."""

    bits: str
    detail: str
    swapped: bool = False
    kind: str = "card"

    def __post_init__(self) -> None:
        if self.kind == "qr":
            if self.bits or self.swapped:
                raise ValueError("a QR rejection carries no bits")
        elif self.kind == "card":
            check_bits(self.bits)
        else:
            raise ValueError(f"a rejection is of a card or a qr scan, got {self.kind!r}")
        if not self.detail:
            raise ValueError("a rejection says why")

    def fields(self) -> dict:
        """The fields ``access.denied`` carries for it."""
        if self.kind == "qr":
            return {"kind": "qr", "detail": self.detail}
        out = {"bits": self.bits, "bit_length": len(self.bits), "detail": self.detail}
        if self.swapped:
            out["swapped"] = True
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PinAbandoned:
    """``digits`` digits were typed and never submitted."""

    digits: int

    def __post_init__(self) -> None:
        if self.digits < 1:
            raise ValueError(f"an abandoned PIN has digits, got {self.digits}")


Outcome = Presented | Rejected | PinAbandoned


class CardInterpreter:
    """Bits in wire order → :class:`Presented` (a card credential) or :class:`Rejected`."""

    def __init__(self, library: FormatLibrary, settings: CardSettings = CardSettings()) -> None:
        for name, what in ((settings.format, "format"), *((n, "preference") for n in settings.preference),
                           (settings.convert_to, "convert_to")):
            if name is None or (what == "format" and name.casefold() == "auto"):
                continue
            library.canonical(name)  # UnknownFormat names the known ones
        if settings.convert_to is not None and settings.convert_to.casefold() == RAW.casefold():
            raise UnknownFormat(settings.convert_to, tuple(n for n in library.names if n != RAW))
        self.library = library
        self.settings = settings
        self._preference = tuple(n for n in settings.preference if n.casefold() != RAW.casefold())

    def interpret(self, bits: str) -> Presented | Rejected:
        check_bits(bits)
        s = self.settings
        d = self.library.decode(bits, format=s.format, preference=self._preference)
        chosen = d.chosen if d.ok else None
        # A Raw card only where nothing says the bits are wrong: no known format of this
        # length failed its parity, and the complement does not decode either.
        raw_ok = not d.swapped and not any(m.parity_ok is False for m in d.matches)
        if s.convert_to is not None:
            if chosen is None and not (s.accept_raw and raw_ok):
                return self._rejected(bits, d)
            return self._converted(bits, chosen)
        candidates = tuple((m.format, m.facility_code, m.card_number) for m in d.matches
                           if m.parity_ok is not False and m.card_number is not None)
        if chosen is not None and chosen.format != RAW:
            first = (chosen.format, chosen.facility_code, chosen.card_number)
            return Presented(credential=Credential(
                kind="card", bits=bits, format=chosen.format, facility_code=chosen.facility_code,
                card_number=chosen.card_number, candidates=(first, *(c for c in candidates if c != first))))
        if chosen is not None or (s.accept_raw and raw_ok):  # Raw asked for, or accepted
            return Presented(credential=Credential(kind="card", bits=bits, candidates=candidates))
        return self._rejected(bits, d)

    @staticmethod
    def _rejected(bits: str, d) -> Rejected:
        return Rejected(bits=bits, detail=d.reason or "no format fits", swapped=d.swapped)

    def _converted(self, bits: str, chosen) -> Presented | Rejected:
        s = self.settings
        if chosen is not None and chosen.format != RAW and chosen.card_number is not None:
            fmt = self.library.get(chosen.format)
            width = next(f.length for f in fmt.fields if f.name == "card_number")
            uid = format(chosen.card_number, "X")
        else:
            uid, width = format(int(bits, 2), "X"), len(bits)
        try:
            conv = convert(uid, width, s.convert_to, fc_mode=s.fc_mode, facility_code=s.facility_code,
                           card_facility_code=chosen.facility_code if chosen else None,
                           byte_reversal=s.byte_reversal, max_32bit=s.max_32bit, library=self.library)
        except WiegandError as exc:
            return Rejected(bits=bits, detail=f"cannot convert to {s.convert_to}: {exc}")
        return Presented(credential=Credential(
            kind="card", bits=conv.bits, format=conv.format, facility_code=conv.facility_code,
            card_number=conv.card_number, candidates=((conv.format, conv.facility_code, conv.card_number),)))


@dataclass(slots=True)
class ReaderPipeline:
    """One reader's pipeline: its card interpreter and its keypad session."""

    cards: CardInterpreter
    pins: PinAssembler = field(default_factory=PinAssembler)

    def card(self, bits: str) -> list[Outcome]:
        """A card frame (wire-order bits) read."""
        return [self.cards.interpret(bits)]

    def keys(self, keys: str, now: float) -> list[Outcome]:
        """Keypad keys (``0``-``9``, ``*``, ``#``) that arrived at ``now``."""
        return [self._pin(e) for e in self.pins.feed(keys, now) if isinstance(e, PinEntered | PinTimeout)]

    def qr(self, text: str) -> list[Outcome]:
        """A QR scanner's text."""
        return [Presented(credential=Credential(kind="qr", qr=text))]

    def qr_rejected(self, detail: str) -> list[Outcome]:
        """A scan that gave no text (too long, not UTF-8, a key the layout does not type)."""
        return [Rejected(bits="", detail=detail, kind="qr")]

    def next_deadline(self) -> float | None:
        return self.pins.next_deadline()

    def tick(self, now: float) -> list[Outcome]:
        return [self._pin(e) for e in self.pins.tick(now)]

    @staticmethod
    def _pin(event: PinEntered | PinTimeout) -> Outcome:
        if isinstance(event, PinEntered):
            return Presented(credential=Credential(kind="pin", pin=event.pin))
        return PinAbandoned(digits=event.digits)
