"""OSDP framing: CRC/checksum vectors, build/parse, the stream decoder, fuzzing."""

from __future__ import annotations

import crcmod.predefined
import pytest
from accessd.protocols.osdp import phy
from accessd.protocols.osdp.errors import ChecksumMismatch, FrameError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

AUG_CCITT = crcmod.predefined.mkCrcFun("crc-aug-ccitt")


# SIA OSDP 2.2 Annex E CRC and checksum examples, as reproduced in libosdp's
# tests/unit-tests/test-sc-sia-vectors.c (github.com/goToMain/libosdp).
@pytest.mark.parametrize("msg,crc", [
    (bytes.fromhex("537F0D0004 6E0080250000".replace(" ", "")), bytes.fromhex("6E38")),
    (bytes.fromhex("5300090004 6100".replace(" ", "")), bytes.fromhex("C066")),
])
def test_annex_e_crc_vectors(msg, crc):
    value = phy.crc16(msg)
    assert value.to_bytes(2, "little") == crc
    assert value == AUG_CCITT(msg)


@pytest.mark.parametrize("msg,cks", [
    (bytes.fromhex("537F0C00006E0080250000"), 0x0F),
    (bytes.fromhex("53000800006100"), 0x44),
])
def test_annex_e_checksum_vectors(msg, cks):
    assert phy.checksum8(msg) == cks


@given(st.binary(max_size=300))
def test_crc_matches_crcmod_oracle(data):
    assert phy.crc16(data) == AUG_CCITT(data)


def test_build_matches_annex_e_packet():
    # osdp_COMSET to broadcast, SQN 0, CRC: 53 7F 0D 00 04 6E 00 80 25 00 00 6E 38
    raw = phy.build(0x7F, 0x6E, bytes.fromhex("0080250000"), sqn=0)
    assert raw.hex() == "537f0d00046e00802500006e38"
    f = phy.parse(raw)
    assert (f.address, f.reply, f.sqn, f.use_crc, f.code, f.data) == (0x7F, False, 0, True, 0x6E, bytes.fromhex("0080250000"))


@pytest.mark.parametrize("kw", [
    dict(address=1, code=0x60),
    dict(address=0x7E, code=0x40, reply=True, sqn=3),
    dict(address=5, code=0x60, use_crc=False, sqn=2),
    dict(address=5, code=0x76, data=bytes(8), scb=bytes((3, 0x11, 1))),
    dict(address=5, code=0x60, scb=bytes((2, 0x15)), mac=lambda body: b"\x01\x02\x03\x04"),
])
def test_build_parse_round_trip(kw):
    kw = dict(kw)
    address, code = kw.pop("address"), kw.pop("code")
    raw = phy.build(address, code, **kw)
    f = phy.parse(raw)
    assert (f.address, f.code, f.data, f.sqn) == (address, code, kw.get("data", b""), kw.get("sqn", 0))
    assert f.reply == kw.get("reply", False) and f.use_crc == kw.get("use_crc", True)
    assert f.scb == kw.get("scb", b"")
    if "mac" in kw:
        assert f.mac == b"\x01\x02\x03\x04" and f.mac_input == raw[:-6]
    assert int.from_bytes(raw[2:4], "little") == len(raw)


@pytest.mark.parametrize("kw,msg", [
    (dict(address=128, code=0x60), "address"),
    (dict(address=1, code=0x60, sqn=4), "sqn"),
    (dict(address=1, code=0x60, data=bytes(1500)), "exceeds"),
])
def test_build_validation(kw, msg):
    address, code = kw.pop("address"), kw.pop("code")
    with pytest.raises(ValueError, match=msg):
        phy.build(address, code, **kw)


def test_parse_errors_carry_the_bytes():
    raw = bytearray(phy.build(1, 0x60, sqn=1))
    raw[-1] ^= 0xFF
    with pytest.raises(ChecksumMismatch) as exc:
        phy.parse(bytes(raw))
    assert exc.value.data == bytes(raw) and exc.value.expected != exc.value.actual
    with pytest.raises(FrameError, match="LEN"):
        phy.parse(phy.build(1, 0x60) + b"\x00")


REPLY = phy.build(1, 0x40, reply=True, sqn=1)
CARD = phy.build(1, 0x50, bytes.fromhex("00011A00FFFFFFC0"), reply=True, sqn=2)
CKS = phy.build(2, 0x40, reply=True, sqn=3, use_crc=False)


@pytest.mark.parametrize("stream,codes", [
    (REPLY, [0x40]),
    (b"\xff" + REPLY, [0x40]),  # mark byte
    (REPLY + CARD + CKS, [0x40, 0x50, 0x40]),
    (b"\x00\x12garbage" + REPLY, ["err", 0x40]),
    (REPLY[:-1] + b"\x00" + CARD, ["err", 0x50]),  # bad CRC, resync on the next SOM
    (b"\x53\x81\xff\xff\x04" + REPLY, ["err", 0x40]),  # LEN out of range
    (phy.build(1, 0x60, sqn=1) + REPLY, [0x40]),  # a command (our own echo) is skipped
    (phy.build(9, 0x40, reply=True) + REPLY, [0x40]),  # another PD's address is skipped
])
def test_decoder_table(stream, codes):
    def run(chunks):
        d = phy.Decoder(accept="reply", addresses={1, 2})
        out = []
        for c in chunks:
            out += d.feed(c, 0.0)
        return ["err" if isinstance(x, Exception) else x.code for x in out]

    whole = run([stream])
    bytewise = run([stream[i:i + 1] for i in range(len(stream))])
    squash = [c for i, c in enumerate(whole) if c != "err" or (i == 0 or whole[i - 1] != "err")]
    assert squash == codes
    assert [c for c in bytewise if c != "err"] == [c for c in codes if c != "err"]
    assert run([stream + b"\x00\x01trailing"])[: len(whole)] == whole


def test_partial_frame_times_out():
    d = phy.Decoder(gap=0.05)
    assert d.feed(REPLY[:4], 1.0) == []
    assert d.next_deadline() == pytest.approx(1.05)
    errs = d.tick(1.06)
    assert isinstance(errs[0], FrameError) and errs[0].data == REPLY[:4]
    assert d.pending == 0
    assert [f.code for f in d.feed(REPLY, 1.1)] == [0x40]


def test_stale_partial_is_dropped_when_more_bytes_come_late():
    d = phy.Decoder(gap=0.05)
    d.feed(REPLY[:6], 0.0)
    out = d.feed(REPLY, 1.0)
    assert isinstance(out[0], FrameError)
    assert [x.code for x in out if isinstance(x, phy.Frame)] == [0x40]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=20))
def test_random_bytes_never_crash_and_a_good_frame_after_them_is_found(noise, cuts):
    d = phy.Decoder(addresses={1})
    stream = noise + b"\xff" * 3 + REPLY * 2  # max frame bound + SOM resync: the 2nd copy must survive
    pos, out = 0, []
    for c in cuts + [len(stream)]:
        out += d.feed(stream[pos:pos + c], 0.0)
        pos += c
        if pos >= len(stream):
            break
    out += d.feed(stream[pos:], 0.0)
    frames = [x for x in out if isinstance(x, phy.Frame)]
    assert all(isinstance(x, (phy.Frame, FrameError)) for x in out)
    assert any(f.raw == REPLY for f in frames)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CARD) - 1), st.integers(0, 255))
def test_mutated_frames_are_rejected_or_equal(pos, value):
    mutated = bytearray(CARD)
    mutated[pos] = value
    d = phy.Decoder(addresses=None, gap=0.05)
    out = d.feed(bytes(mutated) + REPLY, 0.0)
    out += d.tick(0.1)  # a corrupted LEN may hold the rest back until the gap passes
    frames = [x for x in out if isinstance(x, phy.Frame)]
    assert frames and frames[-1].raw == REPLY  # always resyncs on the good frame after it
    if bytes(mutated) != CARD:
        assert all(f.raw != bytes(mutated) or phy.crc16(f.raw[:-2]) == int.from_bytes(f.raw[-2:], "little")
                   for f in frames)


def _raw(body: bytes) -> bytes:
    """SOM..DATA with a correct LEN and CRC: a well-checked frame whose inside is wrong."""
    n = len(body) + 2
    body = body[:2] + bytes((n & 0xFF, n >> 8)) + body[4:]
    crc = phy.crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


@pytest.mark.parametrize("raw,msg", [
    (_raw(b"\x53\x81\x00\x00\x0c\x01\x40"), "security block length 1"),  # SCB length below 2
    (_raw(b"\x53\x81\x00\x00\x0c\x09\x16\x40"), "security block length 9"),  # SCB runs past the end
    (_raw(b"\x53\x81\x00\x00\x04"), "no command/reply code"),
    (_raw(b"\x53\x81\x00\x00\x0c\x02\x16\x40\x01\x02"), "no room for the MAC"),  # SCS_16 needs 4 MAC bytes
])
def test_malformed_security_blocks_are_frame_errors(raw, msg):
    with pytest.raises(FrameError, match=msg) as exc:
        phy.parse(raw)
    assert exc.value.data == raw


@pytest.mark.parametrize("call,msg", [
    (lambda: phy.build(1, 0x160), "one byte"),
    (lambda: phy.build(1, 0x60, mac=lambda body: b"\x00"), "MAC must be 4 bytes"),
    (lambda: phy.Frame(address=200, reply=True, sqn=0, use_crc=True, scb=b"", code=0x40, data=b"", mac=b"", raw=b""),
     "address"),
    (lambda: phy.Frame(address=1, reply=True, sqn=5, use_crc=True, scb=b"", code=0x40, data=b"", mac=b"", raw=b""),
     "sqn"),
    (lambda: phy.Decoder(max_len=4), "max_len"),
])
def test_value_errors(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_command_decoder_skips_replies_and_reset_drops_a_partial():
    dec = phy.Decoder(accept="command")
    cmd = phy.build(1, 0x60, sqn=1)
    assert [f.code for f in dec.feed(REPLY + cmd, 0.0)] == [0x60]
    dec.feed(cmd[:4], 0.0)
    assert dec.pending == 4
    dec.reset()
    assert dec.pending == 0 and dec.next_deadline() is None


def test_nak_error_names_the_reason():
    from accessd.protocols.osdp.errors import Nak

    err = Nak(6, b"\x06")
    assert err.code == 6 and err.data == b"\x06" and "NAK 6" in str(err)
