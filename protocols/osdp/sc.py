"""OSDP secure channel (SCS_11..SCS_18), CP side, sans-IO.

Key derivation (SIA OSDP 2.2 §D.4 / Annex E): with the 16-byte SCBK and the CP's
8-byte challenge RND.A,

* S-ENC  = AES(SCBK, 01 82 RND.A[0:6] 00*8)
* S-MAC1 = AES(SCBK, 01 01 RND.A[0:6] 00*8)
* S-MAC2 = AES(SCBK, 01 02 RND.A[0:6] 00*8)
* client cryptogram (PD → CP in CCRYPT) = AES(S-ENC, RND.A ‖ RND.B)
* server cryptogram (CP → PD in SCRYPT) = AES(S-ENC, RND.B ‖ RND.A)
* RMAC-I (PD → CP) = AES(S-MAC2, AES(S-MAC1, server cryptogram))

Message MACs chain: a command's MAC starts from the last reply MAC (RMAC-I at
first), a reply's from the last command MAC; all 16-byte blocks but the last are
CBC-encrypted with S-MAC1, the last with S-MAC2; the padding (0x80 then zeros) is
added only when the input is not a multiple of 16; the packet carries the first
4 bytes.  Data blocks (SCS_17/18) are AES-CBC under S-ENC with the bitwise
inverse of the last reply MAC (commands) or the last command MAC (replies) as the
IV, always padded with 0x80 then zeros.

Nothing here draws randomness or reads a clock: RND.A comes from the caller.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import phy
from .errors import CryptogramMismatch, MacMismatch, SecureChannelError

#: The default key SCBK-D, used only in install mode.
SCBK_D = bytes(range(0x30, 0x40))

SCS_11, SCS_12, SCS_13, SCS_14 = 0x11, 0x12, 0x13, 0x14
SCS_15, SCS_16, SCS_17, SCS_18 = 0x15, 0x16, 0x17, 0x18

KEY_DEFAULT = 0  # SCB data byte of SCS_11/13: 0 = SCBK-D, 1 = SCBK


class _Aes:
    """AES-128 with one ECB context per direction, reused for every block.

    Building a ``Cipher`` costs more than the AES itself; a session does several
    block operations per poll, so CBC is done here block by block over ECB.
    Not thread-safe: a session is used by one bus thread.
    """

    __slots__ = ("_enc", "_dec")

    def __init__(self, key: bytes) -> None:
        cipher = Cipher(algorithms.AES(bytes(key)), modes.ECB())
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()

    def encrypt(self, block: bytes) -> bytes:
        return self._enc.update(block)

    def cbc_encrypt(self, iv: bytes, data: bytes) -> bytes:
        if len(data) % 16:
            raise ValueError("CBC data must be whole 16-byte blocks")
        out = bytearray()
        prev = int.from_bytes(iv, "big")
        enc = self._enc.update
        for i in range(0, len(data), 16):
            block = enc((int.from_bytes(data[i:i + 16], "big") ^ prev).to_bytes(16, "big"))
            out += block
            prev = int.from_bytes(block, "big")
        return bytes(out)

    def cbc_decrypt(self, iv: bytes, data: bytes) -> bytes:
        if len(data) % 16:
            raise ValueError("CBC data must be whole 16-byte blocks")
        out = bytearray()
        prev = int.from_bytes(iv, "big")
        dec = self._dec.update
        for i in range(0, len(data), 16):
            block = data[i:i + 16]
            out += (int.from_bytes(dec(block), "big") ^ prev).to_bytes(16, "big")
            prev = int.from_bytes(block, "big")
        return bytes(out)


_AES_CACHE: dict[bytes, _Aes] = {}


def _aes(key: bytes) -> _Aes:
    key = bytes(key)
    aes = _AES_CACHE.get(key)
    if aes is None:
        if len(_AES_CACHE) >= 32:  # session keys change on every handshake: keep the cache small
            _AES_CACHE.clear()
        aes = _AES_CACHE[key] = _Aes(key)
    return aes


def _ecb(key: bytes, block: bytes) -> bytes:
    return _aes(key).encrypt(bytes(block))


def _cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    return _aes(key).cbc_encrypt(iv, data)


def _cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    return _aes(key).cbc_decrypt(iv, data)


def _check_key(name: str, key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ValueError(f"{name} must be 16 bytes")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class SessionKeys:
    enc: bytes
    mac1: bytes
    mac2: bytes

    def __repr__(self) -> str:
        return "SessionKeys(<hidden>)"


def session_keys(scbk: bytes, rnd_a: bytes) -> SessionKeys:
    _check_key("scbk", scbk)
    if len(rnd_a) != 8:
        raise ValueError("RND.A must be 8 bytes")
    tail = bytes(rnd_a[:6]) + bytes(8)
    return SessionKeys(
        enc=_ecb(scbk, b"\x01\x82" + tail),
        mac1=_ecb(scbk, b"\x01\x01" + tail),
        mac2=_ecb(scbk, b"\x01\x02" + tail),
    )


def client_cryptogram(keys: SessionKeys, rnd_a: bytes, rnd_b: bytes) -> bytes:
    return _ecb(keys.enc, bytes(rnd_a) + bytes(rnd_b))


def server_cryptogram(keys: SessionKeys, rnd_a: bytes, rnd_b: bytes) -> bytes:
    return _ecb(keys.enc, bytes(rnd_b) + bytes(rnd_a))


def initial_rmac(keys: SessionKeys, server_crypt: bytes) -> bytes:
    return _ecb(keys.mac2, _ecb(keys.mac1, server_crypt))


def mac(keys: SessionKeys, iv: bytes, data: bytes) -> bytes:
    """The full 16-byte chained MAC of ``data`` starting from ``iv``."""
    buf = bytes(data)
    if len(buf) % 16 or not buf:
        buf += b"\x80" + bytes(-(len(buf) + 1) % 16)
    if len(buf) > 16:
        head = _cbc_encrypt(keys.mac1, iv, buf[:-16])
        iv = head[-16:]
    return _cbc_encrypt(keys.mac2, iv, buf[-16:])


def pad(data: bytes) -> bytes:
    return bytes(data) + b"\x80" + bytes(-(len(data) + 1) % 16)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise SecureChannelError("bad padding in an encrypted data block", data)
    return stripped[:-1]


def _invert(block: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in block)


class Session:
    """One established secure session with one PD (CP side).

    Built from the handshake: ``Session.start(scbk, rnd_a)`` →
    ``check_ccrypt(cuid, rnd_b, cryptogram)`` (raises :class:`CryptogramMismatch`)
    → ``scrypt()`` returns the server cryptogram → ``check_rmac_i(rmac)`` →
    ``established``.  Then ``wrap(address, code, data, sqn)`` builds a SCS_15/17
    packet and ``unwrap(frame)`` verifies and decrypts a SCS_16/18 reply.
    """

    def __init__(self, scbk: bytes, rnd_a: bytes, *, key_select: int = 1) -> None:
        _check_key("scbk", scbk)
        self.rnd_a = bytes(rnd_a)
        self.key_select = key_select
        self.keys = session_keys(scbk, rnd_a)
        self.rnd_b = b""
        self.cuid = b""
        self._server_crypt = b""
        self.c_mac = b""
        self.r_mac = b""
        self.established = False

    def check_ccrypt(self, cuid: bytes, rnd_b: bytes, cryptogram: bytes) -> None:
        expected = client_cryptogram(self.keys, self.rnd_a, rnd_b)
        if not hmac.compare_digest(expected, bytes(cryptogram)):
            raise CryptogramMismatch(bytes(cuid) + bytes(rnd_b) + bytes(cryptogram))
        self.cuid = bytes(cuid)
        self.rnd_b = bytes(rnd_b)
        self._server_crypt = server_cryptogram(self.keys, self.rnd_a, self.rnd_b)

    def scrypt(self) -> bytes:
        if not self._server_crypt:
            raise SecureChannelError("SCRYPT before a verified CCRYPT")
        return self._server_crypt

    def check_rmac_i(self, rmac: bytes) -> None:
        expected = initial_rmac(self.keys, self._server_crypt)
        if not hmac.compare_digest(expected, bytes(rmac)):
            raise MacMismatch(bytes(rmac), expected, bytes(rmac))
        self.r_mac = expected
        self.established = True

    # --- SCS_15..18
    def wrap(self, address: int, code: int, data: bytes = b"", *, sqn: int, use_crc: bool = True) -> bytes:
        if not self.established:
            raise SecureChannelError("no established session to wrap a command in")
        if data:
            payload = _cbc_encrypt(self.keys.enc, _invert(self.r_mac), pad(data))
            scb = bytes((2, SCS_17))
        else:
            payload = b""
            scb = bytes((2, SCS_15))

        def tag(body: bytes) -> bytes:
            self.c_mac = mac(self.keys, self.r_mac, body)
            return self.c_mac[:4]

        return phy.build(address, code, payload, sqn=sqn, use_crc=use_crc, scb=scb, mac=tag)

    def unwrap(self, frame: phy.Frame) -> bytes:
        """Verify a reply's MAC and return its plaintext data."""
        if not self.established:
            raise SecureChannelError("no established session", frame.raw)
        if frame.scb_type not in (SCS_16, SCS_18):
            raise SecureChannelError(f"reply without a secure block (SCB {frame.scb.hex() or 'none'})", frame.raw)
        expected = mac(self.keys, self.c_mac, frame.mac_input)
        if not hmac.compare_digest(expected[:4], frame.mac):
            raise MacMismatch(frame.raw, expected[:4], frame.mac)
        self.r_mac = expected
        if frame.scb_type == SCS_16:
            if frame.data:
                raise SecureChannelError("SCS_16 reply carries unencrypted data", frame.raw)
            return b""
        if not frame.data or len(frame.data) % 16:
            raise SecureChannelError(f"encrypted data of {len(frame.data)} bytes is not whole blocks", frame.raw)
        return unpad(_cbc_decrypt(self.keys.enc, _invert(self.c_mac), frame.data))


def handshake_scb(scs: int, key_select: int) -> bytes:
    """The security block of SCS_11 (CHLNG) and SCS_13 (SCRYPT)."""
    return bytes((3, scs, key_select))
