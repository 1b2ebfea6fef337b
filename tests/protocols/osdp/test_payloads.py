"""Every OSDP command and reply payload: build/parse round trips and validation."""

from __future__ import annotations

import pytest
from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp.errors import PayloadError

LED = p.LedRecord(reader=0, led=1, temp_control=2, temp_on_time=5, temp_off_time=5, temp_on_color=2,
                  temp_off_color=0, temp_timer=300, perm_control=1, perm_on_time=1, perm_off_time=0,
                  perm_on_color=1, perm_off_color=0)

COMMANDS = [
    (p.Poll(), ""),
    (p.IdRequest(), "00"),
    (p.CapRequest(), "00"),
    (p.LocalStatusRequest(), ""),
    (p.InputStatusRequest(), ""),
    (p.OutputStatusRequest(), ""),
    (p.ReaderStatusRequest(), ""),
    (p.Output(records=(p.OutputRecord(output=0, control=5, timer=0x0102), p.OutputRecord(output=1, control=1))),
     "0005020101010000"),
    (p.Led(records=(LED,)), "00010205050200" + "2c01" + "0101000100"),
    (p.Buzzer(reader=0, tone=2, on_time=3, off_time=1, count=2), "0002030102"),
    (p.Text(reader=0, command=3, temp_time=10, row=1, column=2, text="Hi!"), "0003" + "0a0102" + "03" + "486921"),
    (p.ComSet(address=5, baud=115200), "0500c20100"),
    (p.KeySet(key=bytes(range(16))), "0110" + bytes(range(16)).hex()),
    (p.Challenge(rnd_a=bytes(range(0xB0, 0xB8))), "b0b1b2b3b4b5b6b7"),
    (p.ServerCryptogram(cryptogram=bytes(16)), "00" * 16),
    (p.AcuRxSize(size=1024), "0004"),
    (p.KeepActive(time_ms=5000), "8813"),
    (p.Abort(), ""),
    (p.Manufacturer(vendor=b"\x01\x02\x03", data=b"xy"), "0102037879"),
]

REPLIES = [
    (p.Ack(), ""),
    (p.NakReply(code=4), "04"),
    (p.NakReply(code=7, data=b"\x01"), "0701"),
    (p.PdId(vendor=b"\x5c\x26\x23", model=0x19, version=2, serial=0x04030201, fw_major=3, fw_minor=2, fw_build=1),
     "5c262319" + "02" + "01020304" + "030201"),
    (p.PdCap(capabilities=(p.Capability(function=9, compliance=1, count=1),
                           p.Capability(function=4, compliance=4, count=2))), "090101040402"),
    (p.LocalStatus(tamper=1, power=0), "0100"),
    (p.InputStatus(status=b"\x00\x01"), "0001"),
    (p.OutputStatus(status=b"\x01"), "01"),
    (p.ReaderStatus(status=b"\x00"), "00"),
    (p.RawCard(reader=0, format=1, bit_count=26, data=bytes.fromhex("AABBCCC0")), "0001" + "1a00" + "aabbccc0"),
    (p.FormattedCard(reader=0, direction=0, data=b"1234"), "000004" + "31323334"),
    (p.Keypad(reader=0, data=bytes((0x31, 0x32, 0x7F, 0x0D))), "0004" + "31327f0d"),
    (p.Com(address=3, baud=9600), "0380250000"),
    (p.ClientCryptogram(cuid=bytes(8), rnd_b=bytes(range(8)), cryptogram=bytes(16)),
     "00" * 8 + "0001020304050607" + "00" * 16),
    (p.InitialRMac(rmac=bytes(range(16))), bytes(range(16)).hex()),
    (p.Busy(), ""),
    (p.ManufacturerReply(vendor=b"\x0a\x0b\x0c", data=b"\x01"), "0a0b0c01"),
]


@pytest.mark.parametrize("payload,hexdata", COMMANDS, ids=[c[0].NAME for c in COMMANDS])
def test_command_round_trip(payload, hexdata):
    assert payload.build().hex() == hexdata
    assert p.parse_command(payload.CODE, bytes.fromhex(hexdata)) == payload


@pytest.mark.parametrize("payload,hexdata", REPLIES, ids=[f"{r[0].NAME}-{i}" for i, r in enumerate(REPLIES)])
def test_reply_round_trip(payload, hexdata):
    assert payload.build().hex() == hexdata
    assert p.parse_reply(payload.CODE, bytes.fromhex(hexdata)) == payload


def test_every_registered_code_is_covered():
    assert {type(c) for c, _ in COMMANDS} == set(p.COMMANDS.values())
    assert {type(r) for r, _ in REPLIES} == set(p.REPLIES.values())


@pytest.mark.parametrize("cls,data,why", [
    (p.Poll, b"\x00", "expected no data"),
    (p.Output, b"\x00\x05\x00", "multiple of 4"),
    (p.Led, bytes(13), "multiple of 14"),
    (p.Buzzer, b"\x00\x02", "expected 5 bytes, got 2"),
    (p.Buzzer, b"\x00\x09\x01\x01\x01", "tone"),
    (p.KeySet, b"\x01\x08" + bytes(8), "16 bytes"),
    (p.ComSet, b"\x01\x01\x00\x00\x00", "baud"),
    (p.Text, b"\x00\x01\x00\x01\x01\x05ab", "disagrees"),
    (p.Challenge, bytes(7), "expected 8 bytes"),
])
def test_command_validation(cls, data, why):
    with pytest.raises(PayloadError, match=why) as exc:
        cls.parse(data)
    assert exc.value.data == data


@pytest.mark.parametrize("cls,data,why", [
    (p.RawCard, b"\x00\x01\x1a\x00\xaa\xbb", "26 bits need 4 bytes"),
    (p.RawCard, b"\x00\x01\x00\x00", "bit_count"),
    (p.Keypad, b"\x00\x01\x41", "0x41"),
    (p.Keypad, b"\x00\x03\x31", "does not match"),
    (p.PdCap, b"\x09\x01", "multiple of 3"),
    (p.LocalStatus, b"\x02\x00", "tamper"),
    (p.PdId, bytes(11), "expected 12 bytes"),
    (p.ClientCryptogram, bytes(31), "expected 32 bytes"),
    (p.Ack, b"\x00", "expected no data"),
    (p.NakReply, b"", "does not match"),  # the compiled parser's struct.error is a PayloadError too
    (p.ManufacturerReply, b"\x01", "3 bytes"),
])
def test_reply_validation(cls, data, why):
    with pytest.raises(PayloadError, match=why):
        cls.parse(data)


def test_unknown_codes():
    with pytest.raises(PayloadError, match="unknown command code"):
        p.parse_command(0x01, b"")
    with pytest.raises(PayloadError, match="unknown reply code"):
        p.parse_reply(0x01, b"")


@pytest.mark.parametrize("bits", ["1", "10110", "1" * 26, "0" * 8, "1000000000000000000000000001", "01" * 40])
def test_raw_card_bits_are_wire_order_and_left_justified(bits):
    raw = p.RawCard.from_bits(bits)
    assert raw.bit_count == len(bits)
    assert raw.bits == bits
    # left-justified: the first wire bit is the MSB of the first byte
    assert (raw.data[0] >> 7) == int(bits[0])
    assert p.RawCard.parse(raw.build()).bits == bits


def test_raw_card_example_26_bits():
    # H10301 FC 1 CN 1: 0 00000001 0000000000000001 1 → left-justified 00 80 00 C0
    raw = p.RawCard.parse(bytes.fromhex("0001" "1a00" "008000c0"))
    assert raw.bits == "0" + "00000001" + "0000000000000001" + "1"


def test_keypad_codes():
    kp = p.Keypad.from_keys("0123456789*#")
    assert kp.data == b"0123456789\x7f\x0d"
    assert kp.keys == "0123456789*#"
    assert p.Keypad.parse(b"\x00\x02\x2a\x23").keys == "*#"  # ASCII */# from lenient readers
    with pytest.raises(ValueError, match="'A'"):
        p.Keypad.from_keys("1A")


def test_nak_reasons_and_caps_helpers():
    assert p.NakReply(code=4).reason == "unexpected sequence number"
    caps = p.PdCap.parse(bytes.fromhex("090101080100"))
    assert caps.secure_channel and caps.crc
    assert not p.PdCap.parse(bytes.fromhex("090001")).secure_channel


def test_key_material_is_not_in_repr():
    assert "0f" not in repr(p.KeySet(key=bytes(range(16)))).lower()


@pytest.mark.parametrize("build,why", [
    (lambda: p.KeySet(key=bytes(16), key_type=2), "key_type must be 1"),
    (lambda: p.KeySet(key=bytes(15)), "key must be 16 bytes"),
    (lambda: p.Challenge(rnd_a=bytes(7)), "rnd_a must be 8 bytes"),
    (lambda: p.ServerCryptogram(cryptogram=bytes(15)), "cryptogram must be 16 bytes"),
    (lambda: p.ClientCryptogram(cuid=bytes(8), rnd_b=bytes(8), cryptogram=bytes(15)), "CCRYPT needs"),
    (lambda: p.InitialRMac(rmac=bytes(17)), "RMAC-I must be 16 bytes"),
])
def test_secure_channel_payloads_refuse_wrong_sizes(build, why):
    with pytest.raises(ValueError, match=why):
        build()


@pytest.mark.parametrize("cls,data,why", [
    (p.KeySet, b"\x02\x10" + bytes(16), "key_type must be 1"),
    (p.KeySet, b"\x01\x0f" + bytes(15), "key must be 16 bytes"),
    (p.KeySet, b"\x01\x10" + bytes(17), "expected 18 bytes"),  # trailing bytes after the key
])
def test_keyset_parse_errors(cls, data, why):
    with pytest.raises(PayloadError, match=why):
        cls.parse(data)
