"""The credential pipeline: bits and keys → Presented / Rejected / PinAbandoned."""

from __future__ import annotations

import pytest
from accessd.protocols.credential import Credential
from accessd.protocols.keypad import PinAssembler
from accessd.protocols.pipeline import (
    CardInterpreter,
    CardSettings,
    PinAbandoned,
    Presented,
    ReaderPipeline,
    Rejected,
)
from accessd.protocols.wiegand.errors import UnknownFormat
from accessd.protocols.wiegand.formats import LIBRARY

H26 = LIBRARY.encode("H10301", facility_code=12, card_number=3456)
BAD = H26[:5] + ("1" if H26[5] == "0" else "0") + H26[6:]
SWAPPED = H26.translate(str.maketrans("01", "10"))
UID32 = format(0x04A1B2C3, "032b")
H37 = LIBRARY.encode("H10302", card_number=123456789)


def interpret(bits, **settings):
    return CardInterpreter(LIBRARY, CardSettings(**settings)).interpret(bits)


@pytest.mark.parametrize("bits, settings, expect", [
    (H26, {}, ("H10301", 12, 3456)),
    (H37, {}, ("H10302", None, 123456789)),  # both 37-bit HID formats fit: the preference decides
    (UID32, {}, (None, None, None)),  # no 32-bit format with parity: a Raw card
    (H26, {"format": "Raw"}, (None, None, None)),
    (UID32, {"convert_to": "H10301", "fc_mode": "override", "facility_code": 99}, ("H10301", 99, 0xB2C3)),
    (H26, {"convert_to": "H10301", "fc_mode": "optional"}, ("H10301", 12, 3456)),
])
def test_cards(bits, settings, expect):
    out = interpret(bits, **settings)
    assert isinstance(out, Presented)
    c = out.credential
    assert (c.format, c.facility_code, c.card_number) == expect


@pytest.mark.parametrize("bits, settings, detail", [
    (BAD, {}, "parity fails"),
    (SWAPPED, {}, "D0/D1 swapped"),
    (UID32, {"accept_raw": False}, "32 bits"),
    (BAD, {"convert_to": "H10301"}, "parity fails"),  # a conversion never launders bad parity
    (H26[:-2], {"accept_raw": False}, "no format of 24 bits"),
])
def test_rejections(bits, settings, detail):
    out = interpret(bits, **settings)
    assert isinstance(out, Rejected) and detail in out.detail and out.bits == bits
    assert out.fields()["bit_length"] == len(bits)
    assert out.swapped == (bits == SWAPPED) == ("swapped" in out.fields())


def test_candidates_hold_every_good_reading_chosen_first():
    c = interpret(H37).credential
    assert c.candidates[0] == ("H10302", None, 123456789)
    assert {f for f, _, _ in c.candidates} >= {"H10302", "H10304"}
    raw = interpret(H26, format="Raw").credential
    assert ("H10301", 12, 3456) in raw.candidates and raw.format is None
    assert "candidates" not in raw.to_json()


def test_unknown_format_names_are_refused_at_construction():
    for settings in ({"format": "H99"}, {"preference": ("H10301", "Nope")}, {"convert_to": "Site"},
                     {"convert_to": "Raw"}):
        with pytest.raises(UnknownFormat):
            CardInterpreter(LIBRARY, CardSettings(**settings))


def test_keys_become_pins_and_abandoned_digits_time_out():
    p = ReaderPipeline(cards=CardInterpreter(LIBRARY), pins=PinAssembler(length=0, timeout=5))
    assert p.keys("12", 0.0) == [] and p.next_deadline() == 5.0
    assert p.keys("34#", 1.0) == [Presented(credential=Credential(kind="pin", pin="1234"))]
    p.keys("9", 2.0)
    assert p.tick(6.9) == [] and p.tick(7.0) == [PinAbandoned(digits=1)]
    assert p.next_deadline() is None
    assert p.qr("V-1") == [Presented(credential=Credential(kind="qr", qr="V-1"))]
    assert p.card(H26)[0].credential.card_number == 3456


def test_events_are_validated():
    with pytest.raises(ValueError):
        Rejected(bits="012", detail="x")
    with pytest.raises(ValueError):
        Rejected(bits="01", detail="")
    with pytest.raises(ValueError):
        PinAbandoned(digits=0)
    with pytest.raises(ValueError):
        CardSettings(fc_mode="sometimes")
