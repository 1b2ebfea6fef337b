"""Secure channel: the Annex E vectors, MAC chaining, encryption, failures."""

from __future__ import annotations

import pytest
from accessd.protocols.osdp import phy, sc
from accessd.protocols.osdp.errors import CryptogramMismatch, MacMismatch, SecureChannelError
from hypothesis import given, settings
from hypothesis import strategies as st

# SIA OSDP 2.2 Annex E secure-channel example (SCBK-D, RND.A = B0..B7, RND.B = A0..A7),
# as reproduced in libosdp's tests/unit-tests/test-sc-sia-vectors.c
# (https://github.com/goToMain/libosdp): "host cryptogram" = server cryptogram,
# "client cryptogram" = the PD's cryptogram in osdp_CCRYPT.
RND_A = bytes(range(0xB0, 0xB8))
RND_B = bytes(range(0xA0, 0xA8))
S_MAC1 = bytes.fromhex("5E86C676603BDEE2D8BEAFE178637332")
S_MAC2 = bytes.fromhex("6FDA86E857777E81132035758239172E")
S_ENC = bytes.fromhex("BF8DC2A8329ACB8C67C6D0CD9A451682")
SERVER_CRYPTOGRAM = bytes.fromhex("26D3356E07762D262801FC8E6665A891")
CLIENT_CRYPTOGRAM = bytes.fromhex("FDE5D2F428EC16312471EA3C02BD7796")
RMAC_I = bytes.fromhex("B2A30057EB98BA2229EC1F875662B524")


def test_scbk_d():
    assert sc.SCBK_D == bytes.fromhex("303132333435363738393A3B3C3D3E3F")


def test_annex_e_session_keys():
    keys = sc.session_keys(sc.SCBK_D, RND_A)
    assert (keys.enc, keys.mac1, keys.mac2) == (S_ENC, S_MAC1, S_MAC2)
    assert "5e86" not in repr(keys).lower()


def test_annex_e_cryptograms_and_rmac_i():
    keys = sc.session_keys(sc.SCBK_D, RND_A)
    assert sc.client_cryptogram(keys, RND_A, RND_B) == CLIENT_CRYPTOGRAM
    assert sc.server_cryptogram(keys, RND_A, RND_B) == SERVER_CRYPTOGRAM
    assert sc.initial_rmac(keys, SERVER_CRYPTOGRAM) == RMAC_I


def test_session_handshake_with_annex_e_values():
    s = sc.Session(sc.SCBK_D, RND_A, key_select=0)
    s.check_ccrypt(b"CUID0001", RND_B, CLIENT_CRYPTOGRAM)
    assert s.scrypt() == SERVER_CRYPTOGRAM
    s.check_rmac_i(RMAC_I)
    assert s.established and s.r_mac == RMAC_I


def test_wrong_client_cryptogram_is_refused():
    s = sc.Session(bytes(16), RND_A)
    with pytest.raises(CryptogramMismatch) as exc:
        s.check_ccrypt(b"CUID0001", RND_B, CLIENT_CRYPTOGRAM)
    assert CLIENT_CRYPTOGRAM in exc.value.data
    with pytest.raises(SecureChannelError):
        s.scrypt()


def test_wrong_rmac_i_is_refused():
    s = sc.Session(sc.SCBK_D, RND_A)
    s.check_ccrypt(b"CUID0001", RND_B, CLIENT_CRYPTOGRAM)
    with pytest.raises(MacMismatch):
        s.check_rmac_i(bytes(16))
    assert not s.established


def _established():
    s = sc.Session(sc.SCBK_D, RND_A)
    s.check_ccrypt(b"CUID0001", RND_B, CLIENT_CRYPTOGRAM)
    s.check_rmac_i(RMAC_I)
    return s


def _pd_reply(s, code, data, *, sqn, c_mac):
    """The PD side of SCS_16/18, written out from the spec."""
    keys = s.keys
    if data:
        payload = sc._cbc_encrypt(keys.enc, sc._invert(c_mac), sc.pad(data))
        scb = bytes((2, 0x18))
    else:
        payload, scb = b"", bytes((2, 0x16))
    return phy.build(1, code, payload, sqn=sqn, reply=True, scb=scb,
                     mac=lambda body: sc.mac(keys, c_mac, body)[:4])


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(15), bytes(16), bytes(range(40))])
def test_command_wrap_is_verifiable_and_decryptable_by_the_pd(data):
    s = _established()
    raw = s.wrap(1, 0x69, data, sqn=2)
    f = phy.parse(raw)
    assert f.scb == (bytes((2, 0x17)) if data else bytes((2, 0x15)))
    # PD side: MAC from the last R-MAC (RMAC-I), decryption with its inverse as IV
    full = sc.mac(s.keys, RMAC_I, f.mac_input)
    assert f.mac == full[:4] and s.c_mac == full
    if data:
        assert len(f.data) % 16 == 0 and data not in f.data or not data.strip(b"\x00")
        plain = sc.unpad(sc._cbc_decrypt(s.keys.enc, sc._invert(RMAC_I), f.data))
        assert plain == data
    else:
        assert f.data == b""


@pytest.mark.parametrize("data", [b"", b"\x01\x02", bytes(range(16))])
def test_reply_unwrap_and_mac_chain(data):
    s = _established()
    s.wrap(1, 0x60, b"", sqn=1)
    c_mac = s.c_mac
    raw = _pd_reply(s, 0x50 if data else 0x40, data, sqn=1, c_mac=c_mac)
    assert s.unwrap(phy.parse(raw)) == data
    assert s.r_mac == sc.mac(s.keys, c_mac, phy.parse(raw).mac_input)
    # the chain moved on: the next command's MAC starts from this reply's MAC
    raw2 = s.wrap(1, 0x60, b"", sqn=2)
    assert phy.parse(raw2).mac == sc.mac(s.keys, s.r_mac, phy.parse(raw2).mac_input)[:4]


def test_reply_with_bad_mac_is_refused():
    s = _established()
    s.wrap(1, 0x60, b"", sqn=1)
    raw = bytearray(_pd_reply(s, 0x40, b"", sqn=1, c_mac=s.c_mac))
    raw[-3] ^= 0x01  # flip a MAC bit, fix the CRC
    crc = phy.crc16(bytes(raw[:-2]))
    raw[-2:] = crc.to_bytes(2, "little")
    with pytest.raises(MacMismatch):
        s.unwrap(phy.parse(bytes(raw)))


def test_replayed_reply_is_refused():
    s = _established()
    s.wrap(1, 0x60, b"", sqn=1)
    raw = _pd_reply(s, 0x40, b"", sqn=1, c_mac=s.c_mac)
    s.unwrap(phy.parse(raw))
    s.wrap(1, 0x60, b"", sqn=2)
    with pytest.raises(MacMismatch):
        s.unwrap(phy.parse(raw))


def test_plaintext_reply_in_session_is_refused():
    s = _established()
    s.wrap(1, 0x60, b"", sqn=1)
    with pytest.raises(SecureChannelError, match="without a secure block"):
        s.unwrap(phy.parse(phy.build(1, 0x40, reply=True, sqn=1)))


def test_padding():
    assert sc.pad(b"") == b"\x80" + bytes(15)
    assert len(sc.pad(bytes(16))) == 32
    assert sc.unpad(sc.pad(b"abc")) == b"abc"
    with pytest.raises(SecureChannelError):
        sc.unpad(bytes(16))


def test_wrap_needs_a_session():
    with pytest.raises(SecureChannelError):
        sc.Session(sc.SCBK_D, RND_A).wrap(1, 0x60, sqn=1)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), st.integers(1, 6), st.randoms())
def test_block_by_block_cbc_matches_the_library_cbc(key, iv, blocks, rnd):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    data = rnd.randbytes(16 * blocks)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    reference = enc.update(data) + enc.finalize()
    assert sc._cbc_encrypt(key, iv, data) == reference
    assert sc._cbc_decrypt(key, iv, reference) == data


def test_mac_of_whole_blocks_is_not_padded():
    keys = sc.session_keys(sc.SCBK_D, RND_A)
    iv = bytes(16)
    one = bytes(range(16))
    assert sc.mac(keys, iv, one) == sc._cbc_encrypt(keys.mac2, iv, one)  # no 0x80 block added
    two = bytes(range(32))
    head = sc._cbc_encrypt(keys.mac1, iv, two[:16])
    assert sc.mac(keys, iv, two) == sc._cbc_encrypt(keys.mac2, head, two[16:])


@pytest.mark.parametrize("call,why", [
    (lambda: sc._aes(bytes(16)).cbc_encrypt(bytes(16), bytes(15)), "whole 16-byte blocks"),
    (lambda: sc._aes(bytes(16)).cbc_decrypt(bytes(16), bytes(17)), "whole 16-byte blocks"),
    (lambda: sc.session_keys(bytes(15), RND_A), "scbk must be 16 bytes"),
    (lambda: sc.session_keys("0" * 16, RND_A), "scbk must be 16 bytes"),
    (lambda: sc.session_keys(sc.SCBK_D, bytes(7)), "RND.A must be 8 bytes"),
])
def test_primitive_argument_errors(call, why):
    with pytest.raises(ValueError, match=why):
        call()


def _frame(scb_type, data=b"", mac=bytes(4)):
    return phy.parse(phy.build(1, 0x40, data, sqn=1, reply=True, scb=bytes((2, scb_type)), mac=lambda _: mac))


@pytest.mark.parametrize("session,frame,why", [
    (lambda: sc.Session(sc.SCBK_D, RND_A), lambda s: _frame(0x16), "no established session"),
    (_established, lambda s: _frame(0x16, b"\x01", mac=sc.mac(s.keys, s.c_mac, _frame(0x16, b"\x01").mac_input)[:4]),
     "SCS_16 reply carries unencrypted data"),
    (_established, lambda s: _frame(0x18, bytes(5), mac=sc.mac(s.keys, s.c_mac, _frame(0x18, bytes(5)).mac_input)[:4]),
     "not whole blocks"),
    (_established, lambda s: _frame(0x18, b"", mac=sc.mac(s.keys, s.c_mac, _frame(0x18, b"").mac_input)[:4]),
     "not whole blocks"),
])
def test_unwrap_refuses_malformed_secure_replies(session, frame, why):
    s = session()
    if s.established:
        s.wrap(1, 0x60, b"", sqn=1)
    with pytest.raises(SecureChannelError, match=why):
        s.unwrap(frame(s))
