"""Card format library: published vectors, round trips, parity flips, ambiguity, custom formats."""

import pytest
from accessd.protocols.wiegand.errors import (
    BitsError,
    FieldRangeError,
    FormatDefinitionError,
    UnknownFormat,
)
from accessd.protocols.wiegand.formats import (
    BUILTIN,
    LIBRARY,
    CardFormat,
    Field,
    FormatLibrary,
    Parity,
    bits_to_hex,
    custom_format,
    hex_to_bits,
)
from hypothesis import given, settings
from hypothesis import strategies as st

FLIP = str.maketrans("01", "10")


def flip(bits: str, i: int) -> str:
    return bits[:i] + bits[i].translate(FLIP) + bits[i + 1:]


# --- published vectors --------------------------------------------------------

def test_h10301_published_vector():
    # Source: github.com/jessety/wiegand-encoder README: encode(324, 90) ==
    # "00101101000000001010001000" (card number 324, facility code 90).
    bits = "00101101000000001010001000"
    assert LIBRARY.encode("H10301", facility_code=90, card_number=324) == bits
    d = LIBRARY.decode(bits)
    assert (d.chosen.format, d.chosen.facility_code, d.chosen.card_number, d.chosen.parity_ok) == (
        "H10301", 90, 324, True)


@pytest.mark.parametrize("source, bits, fmt, fc, cn", [
    # r/AskElectronics "How do I convert 26 bit Wiegand to Dec?": hex 21A6616 is FC 13, CN 13067
    ("reddit AskElectronics", format(0x21A6616, "026b"), "H10301", 13, 13067),
    # accessgrid.com "Examples of every access control bit format": FC 42, CN 69
    ("accessgrid examples, H10301", "10010101000000000010001010", "H10301", 42, 69),
    # CIVINTEC CN56X0B-X reader manual 6.4.2: data D4 1B 81 → 1 11010100 00011011 10000001 0
    ("CIVINTEC CN56 manual, Wiegand26", "1" + "110101000001101110000001" + "0", "H10301", 0xD4, 0x1B81),
    # same manual 6.4.5: data 89 D4 1B 81 → 1 10001001 11010100 00011011 10000001 1
    ("CIVINTEC CN56 manual, Wiegand34", "1" + "10001001110101000001101110000001" + "1", "H10306", 0x89D4, 0x1B81),
    # Hikvision Wiegand camera manual: card 1234567890 = 0x499602D2 → 1 + 32 bits + 0
    ("Hikvision Wiegand manual, 34-bit", "1" + format(1234567890, "032b") + "0", "H10306", 0x4996, 0x02D2),
])
def test_vectors_from_reader_manuals(source, bits, fmt, fc, cn):  # noqa: ARG001 - source names the citation
    d = LIBRARY.decode(bits)
    assert (d.chosen.format, d.chosen.facility_code, d.chosen.card_number, d.chosen.parity_ok) == (fmt, fc, cn, True)
    assert LIBRARY.encode(fmt, facility_code=fc, card_number=cn) == bits


# Hand-computed from the published H10301 layout (HID: P + FC8 + CN16 + P,
# leading even parity over bits 2-13, trailing odd parity over bits 14-25):
# FC 1, CN 1: 0 00000001 0000000000000001 0 → leading: one 1 in bits 2-13 → 1;
# trailing: one 1 in bits 14-25 → already odd → 0.
@pytest.mark.parametrize("fmt, fc, cn, bits", [
    ("H10301", 1, 1, "1" + "00000001" + "0000000000000001" + "0"),
    ("H10301", 255, 65535, "0" + "11111111" + "1111111111111111" + "1"),
    ("H10301", 0, 0, "0" + "0" * 24 + "1"),
    # H10306: P + FC16 + CN16 + P, even over FC, odd over CN.
    ("H10306", 1, 1, "1" + "0" * 15 + "1" + "0" * 15 + "1" + "0"),
    ("H10306", 0, 0, "0" + "0" * 32 + "1"),
    # H10302: P + CN35 + P, even over bits 2-19, odd over 19-36 (bit 19 in both).
    ("H10302", None, 1, "0" + "0" * 34 + "1" + "0"),
    ("H10302", None, 1 << 17, "1" + "0" * 17 + "1" + "0" * 17 + "0"),
    # H10304: P + FC16 + CN19 + P.
    ("H10304", 1, 0, "1" + "0" * 15 + "1" + "0" * 19 + "1"),
])
def test_hand_computed_vectors(fmt, fc, cn, bits):
    assert len(bits) == LIBRARY.get(fmt).bit_length
    assert LIBRARY.encode(fmt, facility_code=fc, card_number=cn) == bits
    m = LIBRARY.get(fmt).read(bits)
    assert (m.facility_code, m.card_number, m.parity_ok) == (fc, cn, True)


def _pm3_parity(x: int) -> int:
    return bin(x).count("1") & 1


def _corporate_oracle(bits: str) -> tuple[int, int, bool]:
    """Corporate 1000 parity from the masks published in Proxmark3's
    client/src/wiegand_formats.c (Bot = low 32 bits, Mid = the rest)."""
    v = int(bits, 2)
    bot, mid = v & 0xFFFFFFFF, v >> 32
    if len(bits) == 35:
        fc = ((mid & 1) << 11) | (bot >> 21)
        cn = (bot >> 1) & 0xFFFFF
        ok = (_pm3_parity((mid & 1) ^ 0) ^ _pm3_parity(bot & 0xB6DB6DB6)) == ((mid >> 1) & 1)
        ok &= (1 ^ _pm3_parity(mid & 3) ^ _pm3_parity(bot & 0x6DB6DB6C)) == (bot & 1)
        ok &= (1 ^ _pm3_parity(mid & 3) ^ _pm3_parity(bot)) == ((mid >> 2) & 1)
    else:
        fc = ((mid & 0x3FFF) << 8) | (bot >> 24)
        cn = (bot >> 1) & 0x7FFFFF
        ok = (_pm3_parity(mid & 0x1B6D) ^ _pm3_parity(bot & 0xB6DB6DB6)) == ((mid >> 14) & 1)
        ok &= (1 ^ _pm3_parity(mid & 0x36DB) ^ _pm3_parity(bot & 0x6DB6DB6C)) == (bot & 1)
        ok &= (1 ^ _pm3_parity(mid & 0x7FFF) ^ _pm3_parity(bot)) == ((mid >> 15) & 1)
    return fc, cn, bool(ok)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_corporate_1000_matches_published_masks(data):
    for name in ("C1k35s", "C1k48s"):
        fmt = LIBRARY.get(name)
        fc = data.draw(st.integers(0, fmt.fields[0].maximum))
        cn = data.draw(st.integers(0, fmt.fields[1].maximum))
        bits = LIBRARY.encode(name, facility_code=fc, card_number=cn)
        assert _corporate_oracle(bits) == (fc, cn, True)
        i = data.draw(st.integers(0, len(bits) - 1))
        assert _corporate_oracle(flip(bits, i))[2] is False
        assert LIBRARY.get(name).read(flip(bits, i)).parity_ok is False


# --- every format: round trip and parity flips --------------------------------

@pytest.mark.parametrize("fmt", BUILTIN, ids=lambda f: f.name)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip_every_format(fmt, data):
    values = {f.name: data.draw(st.integers(0, f.maximum), label=f.name) for f in fmt.fields}
    bits = fmt.encode(**values)
    assert len(bits) == fmt.bit_length
    d = LIBRARY.decode(bits, format=fmt.name)
    assert d.chosen is not None and d.chosen.format == fmt.name
    for name, value in values.items():
        assert getattr(d.chosen, name) == value
    assert d.chosen.parity_ok is (True if fmt.has_parity else None)
    assert fmt.name in [m.format for m in d.matches]


@pytest.mark.parametrize("fmt", [f for f in BUILTIN if f.parity], ids=lambda f: f.name)
def test_every_single_bit_flip_under_parity_is_caught(fmt):
    covered = set()
    for p in fmt.parity:
        covered.add(p.position)
        covered.update(p.covers)
    for values in ({f.name: 0 for f in fmt.fields}, {f.name: f.maximum // 3 for f in fmt.fields}):
        bits = fmt.encode(**values)
        for i in sorted(covered):
            m = fmt.read(flip(bits, i))
            assert m is None or m.parity_ok is False, (fmt.name, i)


def test_alias_names_resolve():
    for alias, name in [("Wiegand26", "H10301"), ("wiegand34", "H10306"), ("Wiegand37", "H10302"),
                        ("Wiegand37FacilityCode", "H10304"), ("kastle", "Kastle32")]:
        assert LIBRARY.get(alias).name == name
    with pytest.raises(UnknownFormat) as err:
        LIBRARY.get("H99999")
    assert "unknown Wiegand format 'H99999'" in str(err.value) and "H10301" in str(err.value)


# --- decode policy -------------------------------------------------------------

def test_indala26_published_vector():
    # accessgrid.com "Examples of every access control bit format", Indala 26bit: site 42, card 69
    m = LIBRARY.get("ind26").read("10000001010100000010001010")
    assert (m.facility_code, m.card_number, m.parity_ok) == (42, 69, True)


def test_auto_returns_every_fitting_format_and_prefers_h10301():
    bits = LIBRARY.encode("H10301", facility_code=12, card_number=3456)
    d = LIBRARY.decode(bits)
    assert [m.format for m in d.matches] == ["H10301", "ind26"]
    assert d.chosen.format == "H10301" and d.alternatives == ("ind26",)
    ind = d.matches[1]
    assert (ind.facility_code, ind.card_number) == ((12 << 4) | (3456 >> 12), 3456 & 0xFFF)


def test_ambiguous_length_is_reported_not_guessed():
    bits = LIBRARY.encode("H10304", facility_code=7, card_number=99)
    d = LIBRARY.decode(bits, preference=())
    assert d.chosen is None
    assert set(d.alternatives) == {"H10302", "H10304", "MDI37"}
    assert d.reason.startswith("ambiguous: 37 bits fit")
    pinned = LIBRARY.decode(bits, preference=("Wiegand37FacilityCode",))
    assert (pinned.chosen.format, pinned.chosen.facility_code, pinned.chosen.card_number) == ("H10304", 7, 99)
    assert "H10302" in pinned.alternatives


def test_parity_error_and_truncation_reasons():
    bits = LIBRARY.encode("H10301", facility_code=1, card_number=2)
    bad = LIBRARY.decode(flip(bits, 5))
    assert bad.chosen is None and bad.reason == "parity fails for every 26-bit format"
    assert bad.to_json()["parity_ok"] is False
    short = LIBRARY.decode(bits[:-1])
    assert short.chosen is None and short.reason == "no format of 25 bits"
    pinned = LIBRARY.decode(bits[:-1], format="H10301")
    assert pinned.reason == f"H10301 has 26 bits, got 25: {bits[:-1]}"


def test_swapped_d0_d1_detected():
    bits = LIBRARY.encode("H10306", facility_code=4242, card_number=777)
    d = LIBRARY.decode(bits.translate(FLIP))
    assert d.swapped and not d.ok
    assert (d.chosen.format, d.chosen.facility_code, d.chosen.card_number) == ("H10306", 4242, 777)
    assert "D0/D1 swapped" in d.reason


def test_formats_without_parity_are_not_guessed():
    bits = format(0x04A1B2C3, "032b")  # fits Kantech32 (no parity) only
    d = LIBRARY.decode(bits)
    assert d.chosen is None and d.alternatives == ("Kantech32",)
    assert d.reason.startswith("only formats without parity fit: 32 bits fit Kantech32")
    assert LIBRARY.decode(bits, preference=("Kantech32",)).chosen.card_number == 0xD961
    # outside the preference, the one format whose parity checks is chosen
    d = LIBRARY.decode(LIBRARY.encode("ATSW30", facility_code=5, card_number=6))
    assert d.chosen.format == "ATSW30"


def test_raw_only_when_asked():
    bits = "1011" * 5
    assert LIBRARY.decode(bits).chosen is None
    raw = LIBRARY.decode(bits, preference=("H10301", "Raw"))
    assert raw.chosen.format == "Raw" and raw.chosen.card_number == int(bits, 2)
    assert LIBRARY.decode(bits, format="raw").chosen.card_number == int(bits, 2)


def test_decode_json_fields():
    bits = "00101101000000001010001000"
    assert bits_to_hex(bits) == "0B40288" and hex_to_bits("0B40288", 26) == bits
    out = LIBRARY.decode(bits).to_json()
    assert (out["bits"], out["hex"], out["format"], out["facility_code"], out["card_number"]) == (
        bits, "0B40288", "H10301", 90, 324)
    assert {"bit_length", "bits", "format", "facility_code", "card_number", "parity_ok", "matches"} <= set(out)


@pytest.mark.parametrize("bits", ["", "0120", "abc", "1" * 300])
def test_bad_bits_rejected(bits):
    with pytest.raises(BitsError):
        LIBRARY.decode(bits)


def test_hex_to_bits_checks_fit():
    assert hex_to_bits("0x3", 4) == "0011"
    with pytest.raises(BitsError, match="does not fit in 4 bits"):
        hex_to_bits("1F", 4)


# --- encode limits ---------------------------------------------------------------

@pytest.mark.parametrize("fmt, kwargs, message", [
    ("H10301", {"facility_code": 256, "card_number": 1}, "facility code 256 is out of range for H10301 (0–255)"),
    ("H10301", {"card_number": 65536}, "card number 65536 is out of range for H10301 (0–65535)"),
    ("H10302", {"facility_code": 5, "card_number": 1}, "H10302 has no facility code (got 5)"),
    ("H10320", {"card_number": 100000000}, "card number 100000000 is out of range for H10320 (0–99999999)"),
    ("C1k48s", {"facility_code": 1 << 22, "card_number": 0}, "(0–4194303)"),
    ("H10301", {"card_number": -1}, "card number -1 is out of range"),
])
def test_encode_names_the_limit(fmt, kwargs, message):
    with pytest.raises(FieldRangeError) as err:
        LIBRARY.encode(fmt, **kwargs)
    assert message in str(err.value)


def test_h10320_is_bcd():
    bits = LIBRARY.encode("H10320", card_number=12345678)
    assert bits[:32] == "".join(format(d, "04b") for d in range(1, 9))
    assert LIBRARY.decode(bits, format="H10320").chosen.card_number == 12345678
    assert LIBRARY.get("H10320").read("1010" + bits[4:]) is None  # nibble 10 is not a digit


def test_p10001_prefix_and_check_byte():
    bits = LIBRARY.encode("P10001", facility_code=0xABC, card_number=0x1234)
    v = int(bits, 2)
    assert bits[:4] == "1111"
    data = v >> 8
    assert v & 0xFF == (data >> 24) ^ ((data >> 16) & 0xFF) ^ ((data >> 8) & 0xFF) ^ (data & 0xFF)


# --- custom formats ---------------------------------------------------------------

def test_custom_format_equivalent_to_h10301():
    custom = custom_format(name="Site26", bit_length=26, fc_position=1, fc_size=8, cn_position=9, cn_size=16,
                           start_parity="Even", start_span=(1, 12), stop_parity="Odd", stop_span=(13, 24))
    default_spans = custom_format(name="S2", bit_length=26, fc_position=1, fc_size=8, cn_position=9, cn_size=16,
                                  start_parity="Even", stop_parity="Odd")
    assert default_spans.parity == custom.parity
    lib = LIBRARY.with_formats([custom])
    bits = lib.encode("Site26", facility_code=90, card_number=324)
    assert bits == "00101101000000001010001000"
    assert lib.decode(bits, preference=("site26",)).chosen.format == "Site26"


def test_custom_format_fixed_bits_and_no_parity():
    custom = custom_format(name="Fix", bit_length=31, cn_position=3, cn_size=28, start_parity="Fix1",
                           stop_parity="None")
    assert custom.bit_length == 31
    bits = custom.encode(card_number=5)
    assert bits[0] == "1" and custom.read(bits).card_number == 5 and custom.read(bits).parity_ok is None
    assert custom.read("0" + bits[1:]) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"start_parity": "Mark"}, "start_parity: expected None/Even/Odd/Fix0/Fix1, got 'Mark'"),
    ({"cn_position": 20, "cn_size": 8}, "card_number at bit 20 with 8 bits is outside the data bits 0–25"),
    ({"start_parity": "Even", "cn_position": 0}, "card_number at bit 0 with 16 bits is outside the data bits 1–25"),
    ({"start_parity": "Even", "cn_position": 10, "start_span": (20, 30)},
     "start_span (20, 30) is outside the data bits 1–25"),
    ({"fc_position": 1, "fc_size": 9}, "bit 9 is in both facility_code and card_number"),
])
def test_custom_format_errors_name_the_option(kwargs, message):
    base = {"name": "Bad", "bit_length": 26, "fc_position": 1, "fc_size": 8, "cn_position": 9, "cn_size": 16}
    with pytest.raises(FormatDefinitionError) as err:
        custom_format(**{**base, **kwargs})
    assert message in str(err.value) and str(err.value).startswith("format Bad:")


def test_duplicate_names_rejected():
    with pytest.raises(FormatDefinitionError, match="already taken"):
        LIBRARY.with_formats([custom_format(name="wiegand26", bit_length=24, cn_size=16)])


def test_parity_cycle_rejected():
    with pytest.raises(FormatDefinitionError, match="cycle"):
        CardFormat(name="Loop", bit_length=4, fields=(Field(name="card_number", start=2, length=2),),
                   parity=(Parity(position=0, kind="even", covers=(1,)), Parity(position=1, kind="odd", covers=(0,))))


def test_library_lengths():
    assert {26, 34, 35, 37, 48} <= FormatLibrary().lengths()
    assert len(BUILTIN) >= 17


@st.composite
def custom_formats(draw):
    n = draw(st.integers(6, 80))
    start = draw(st.sampled_from(["None", "Even", "Odd", "Fix0", "Fix1"]))
    stop = draw(st.sampled_from(["None", "Even", "Odd", "Fix0", "Fix1"]))
    first = 1 if start != "None" else 0
    last = n - 2 if stop != "None" else n - 1
    data = last - first + 1
    fc_size = draw(st.integers(0, min(16, data - 1)))
    cn_size = draw(st.integers(1, min(48, data - fc_size)))
    fc_pos = first
    cn_pos = draw(st.integers(first + fc_size, last - cn_size + 1))
    return custom_format(name="Cx", bit_length=n, fc_position=fc_pos, fc_size=fc_size, cn_position=cn_pos,
                         cn_size=cn_size, start_parity=start, stop_parity=stop)


@settings(max_examples=80, deadline=None)
@given(fmt=custom_formats(), data=st.data())
def test_custom_formats_round_trip_and_catch_flips(fmt, data):
    values = {f.name: data.draw(st.integers(0, f.maximum)) for f in fmt.fields}
    bits = fmt.encode(**values)
    m = fmt.read(bits)
    assert all(getattr(m, k) == v for k, v in values.items())
    assert m.parity_ok is (True if fmt.has_parity else None)
    for p in fmt.parity:
        for i in (p.position, *p.covers[:3]):
            flipped = fmt.read(flip(bits, i))
            assert flipped is None or flipped.parity_ok is False
