"""Card data conversion (UID → output format) and keypress formats."""

import pytest
from accessd.protocols.wiegand.convert import convert, reverse_bytes
from accessd.protocols.wiegand.errors import BitsError, KeypressError
from accessd.protocols.wiegand.formats import LIBRARY
from accessd.protocols.wiegand.keypress import NAMES, KeypressFormat
from hypothesis import given
from hypothesis import strategies as st

# --- conversion -------------------------------------------------------------------

def test_auto_takes_card_number_low_bits_and_forges_facility_code():
    c = convert("04A1B2C3", 32, "Wiegand26")
    assert (c.format, c.card_number, c.facility_code) == ("H10301", 0xB2C3, 0xA1)
    assert LIBRARY.decode(c.bits).chosen.card_number == 0xB2C3


def test_override_and_optional_facility_code():
    assert convert("04A1B2C3", 32, "H10301", fc_mode="override", facility_code=12).facility_code == 12
    assert convert("04A1B2C3", 32, "H10301", fc_mode="optional", facility_code=12).facility_code == 12
    c = convert("04A1B2C3", 32, "H10301", fc_mode="optional", facility_code=12, card_facility_code=77)
    assert c.facility_code == 77
    c = convert("04A1B2C3", 32, "H10301", fc_mode="override", facility_code=12, card_facility_code=77)
    assert c.facility_code == 12


def test_byte_reversal_and_max_32bit():
    assert reverse_bytes("04A1B2C3", 32) == "C3B2A104"
    c = convert("04A1B2C3", 32, "H10301", byte_reversal=True)
    assert (c.card_number, c.facility_code) == (0xA104, 0xB2)
    seven = "04112233445566"
    c = convert(seven, 56, "H10306", max_32bit=True)
    assert (c.card_number, c.facility_code) == (0x5566, 0x3344)
    c = convert(seven, 56, "H10302", max_32bit=True)
    assert c.card_number == 0x33445566
    assert convert(seven, 56, "H10302").card_number == 0x2233445566 & (2**35 - 1)


def test_conversion_errors_name_the_problem():
    with pytest.raises(ValueError, match="facility code mode: expected one of auto, optional, override"):
        convert("01", 8, "H10301", fc_mode="guess")
    with pytest.raises(BitsError, match="facility code 300 is out of range for H10301"):
        convert("01", 8, "H10301", fc_mode="override", facility_code=300)
    with pytest.raises(BitsError, match="does not fit"):
        convert("1FF", 8, "H10301")


# --- keypress formats (vectors from the Rosslare AY-Q6x50 / AY-G6xx0 manuals,
# "Keypad Transmission Formats", and the intercom's documented examples) --------

@pytest.mark.parametrize("name, keys, frames", [
    ("FourBit", "1234", ["0001", "0010", "0011", "0100"]),
    ("FourBit", "*#", ["1010", "1011"]),
    ("EightBitZeroPadded", "1234", ["00000001", "00000010", "00000011", "00000100"]),
    ("EightBitInvertPadded", "1234", ["11100001", "11010010", "11000011", "10110100"]),  # 0xE1 0xD2 0xC3 0xB4
    # Rosslare "Nibbles complemented": 0 = 11110000, 9 = 01101001, * = 01011010, # = 01001011
    ("EightBitInvertPadded", "09*#", ["11110000", "01101001", "01011010", "01001011"]),
    # Rosslare "6-bit, nibble and parities": 0 = 0 0000 1, 1 = 0 0001 0, 3 = 0 0011 1, 4 = 1 0100 1,
    # 8 = 1 1000 1, * = 1 1010 0, # = 1 1011 1
    ("SixBitParity", "01348*#", ["000001", "000010", "000111", "101001", "110001", "110100", "110111"]),
])
def test_keypress_vectors(name, keys, frames):
    fmt = KeypressFormat(name=name)
    assert [f.bits for f in fmt.encode(keys)] == frames
    assert fmt.decode(frames) == (keys, [])


def test_rosslare_six_bit_mapping_via_key_map():
    # Rosslare format: 0 = 1 1010 0 ("A"), * = 1 1011 1 ("B"), # = 0 1100 1 ("C"), 7 = 1 0111 1
    fmt = KeypressFormat(name="SixBitParity", key_map={"0": 0xA, "*": 0xB, "#": 0xC})
    assert [f.bits for f in fmt.encode("0*#7")] == ["110100", "110111", "011001", "101111"]


def test_buffered_pin_is_one_card_frame_with_the_facility_code():
    fmt = KeypressFormat(name="Wiegand26", facility_code=42)
    (frame,) = fmt.encode("1234#")
    assert frame.bits == LIBRARY.encode("H10301", facility_code=42, card_number=1234)
    assert fmt.decode_frame(frame.bits) == "1234#"
    card = LIBRARY.encode("H10301", facility_code=43, card_number=1234)
    with pytest.raises(KeypressError, match="facility code 43, expected 42"):
        fmt.decode_frame(card)
    with pytest.raises(KeypressError, match="PIN 99999 does not fit Wiegand26"):
        fmt.encode("99999")


@pytest.mark.parametrize("name, bits, message", [
    ("EightBitInvertPadded", "11110001", "high nibble 0xF is not the inverse of 0x1"),
    ("EightBitZeroPadded", "00010001", "non-zero high nibble"),
    ("SixBitParity", "100010", "fails parity"),
    ("FourBit", "1100", "carries 0xC, which is no key"),
    ("FourBit", "110", "FourBit frames have 4 bits, got 3"),
])
def test_bad_key_frames_are_errors_not_digits(name, bits, message):
    keys, errors = KeypressFormat(name=name).decode([bits])
    assert keys == "" and len(errors) == 1 and message in errors[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "Morse"}, "unknown keypress format 'Morse'"),
    ({"name": "FourBit", "key_map": {"*": 1}}, "keys '1' and '*' both send 0x1"),
    ({"name": "FourBit", "key_map": {"x": 1}}, "'x' is not a key"),
    ({"name": "Wiegand26", "facility_code": 256}, "keypress facility code 256 is out of range for Wiegand26 (0–255)"),
])
def test_keypress_settings_validated(kwargs, message):
    with pytest.raises(ValueError) as err:
        KeypressFormat(**kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("Wiegand")])
@given(keys=st.text(alphabet="0123456789*#", min_size=1, max_size=12))
def test_key_burst_round_trip(name, keys):
    fmt = KeypressFormat(name=name)
    assert fmt.decode(f.bits for f in fmt.encode(keys)) == (keys, [])


@pytest.mark.parametrize("name", ["Wiegand26", "Wiegand34", "Wiegand37", "Wiegand37FacilityCode"])
@given(pin=st.integers(0, 65535))
def test_buffered_round_trip(name, pin):
    fmt = KeypressFormat(name=name, facility_code=0 if name == "Wiegand37" else 7)
    (frame,) = fmt.encode(str(pin))
    assert fmt.decode_frame(frame.bits) == f"{pin}#"
