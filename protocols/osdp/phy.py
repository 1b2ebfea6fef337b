"""OSDP framing (sans-IO): build packets and decode a byte stream into frames.

A packet is ``SOM ADDR LEN_L LEN_H CTRL [SCB] CODE DATA [MAC] CHECK`` where LEN
counts every byte from SOM to the end of CHECK, CTRL holds the sequence number
(bits 0-1), the CRC flag (0x04: 2-byte CRC-16, else an 8-bit checksum) and the
SCB flag (0x08).  Replies have bit 7 of ADDR set; 0x7F is the broadcast address.
The CRC is CRC-16/AUG-CCITT (poly 0x1021, init 0x1D0F), i.e. ``crc_hqx(data, 0x1D0F)``
stored little-endian.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .errors import ChecksumMismatch, FrameError, OsdpError

SOM = 0x53
MARK = 0xFF
BROADCAST = 0x7F
REPLY_BIT = 0x80
CTRL_SQN = 0x03
CTRL_CRC = 0x04
CTRL_SCB = 0x08
MAX_LEN = 1440
HEADER_LEN = 5
MAC_LEN = 4
#: SCB types whose packet carries a 4-byte MAC before the check value.
MAC_TYPES = frozenset({0x15, 0x16, 0x17, 0x18})


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0x1D0F)


def checksum8(data: bytes) -> int:
    return (-sum(data)) & 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One decoded packet.  ``raw`` is the whole packet as received."""

    address: int
    reply: bool
    sqn: int
    use_crc: bool
    scb: bytes
    code: int
    data: bytes
    mac: bytes
    raw: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0x7F:
            raise ValueError(f"address must be 0-127, got {self.address}")
        if not 0 <= self.sqn <= 3:
            raise ValueError(f"sqn must be 0-3, got {self.sqn}")

    @property
    def scb_type(self) -> int | None:
        return self.scb[1] if len(self.scb) >= 2 else None

    @property
    def mac_input(self) -> bytes:
        """The bytes a MAC is computed over: SOM up to the end of DATA."""
        tail = MAC_LEN + (2 if self.use_crc else 1)
        return self.raw[:-tail]


def build(
    address: int,
    code: int,
    data: bytes = b"",
    *,
    sqn: int = 0,
    reply: bool = False,
    use_crc: bool = True,
    scb: bytes = b"",
    mac: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """Encode one packet.  ``mac`` receives SOM..DATA and returns the 4-byte MAC."""
    if not 0 <= address <= 0x7F:
        raise ValueError(f"address must be 0-127, got {address}")
    if not 0 <= sqn <= 3:
        raise ValueError(f"sqn must be 0-3, got {sqn}")
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code must be one byte, got {code}")
    ctrl = sqn | (CTRL_CRC if use_crc else 0) | (CTRL_SCB if scb else 0)
    length = HEADER_LEN + len(scb) + 1 + len(data) + (MAC_LEN if mac else 0) + (2 if use_crc else 1)
    if length > MAX_LEN:
        raise ValueError(f"packet of {length} bytes exceeds the {MAX_LEN}-byte maximum")
    body = bytearray((SOM, address | (REPLY_BIT if reply else 0), length & 0xFF, length >> 8, ctrl))
    body += scb
    body.append(code)
    body += data
    if mac is not None:
        tag = mac(bytes(body))
        if len(tag) != MAC_LEN:
            raise ValueError("MAC must be 4 bytes")
        body += tag
    if use_crc:
        crc = crc16(body)
        body += bytes((crc & 0xFF, crc >> 8))
    else:
        body.append(checksum8(body))
    return bytes(body)


def parse(packet: bytes) -> Frame:
    """Decode exactly one complete packet (no leading mark, no trailing bytes)."""
    n = len(packet)
    if n < HEADER_LEN + 2 or packet[0] != SOM:
        raise FrameError("not an OSDP packet", packet, 0)
    length = packet[2] | packet[3] << 8
    if length != n:
        raise FrameError(f"LEN says {length} bytes, have {n}", packet, 2)
    ctrl = packet[4]
    use_crc = bool(ctrl & CTRL_CRC)
    check_len = 2 if use_crc else 1
    if use_crc:
        expected = crc16(packet[:-2])
        actual = packet[-2] | packet[-1] << 8
    else:
        expected = checksum8(packet[:-1])
        actual = packet[-1]
    if expected != actual:
        raise ChecksumMismatch(packet, expected, actual)
    pos = HEADER_LEN
    scb = b""
    if ctrl & CTRL_SCB:
        scb_len = packet[pos]
        if scb_len < 2 or pos + scb_len + 1 + check_len > n:
            raise FrameError(f"security block length {scb_len} does not fit", packet, pos)
        scb = packet[pos:pos + scb_len]
        pos += scb_len
    if pos + 1 + check_len > n:
        raise FrameError("no command/reply code", packet, pos)
    code = packet[pos]
    pos += 1
    end = n - check_len
    mac = b""
    if len(scb) >= 2 and scb[1] in MAC_TYPES:
        if end - MAC_LEN < pos:
            raise FrameError("no room for the MAC", packet, pos)
        mac = packet[end - MAC_LEN:end]
        end -= MAC_LEN
    addr = packet[1]
    return Frame(
        address=addr & 0x7F,
        reply=bool(addr & REPLY_BIT),
        sqn=ctrl & CTRL_SQN,
        use_crc=use_crc,
        scb=bytes(scb),
        code=code,
        data=bytes(packet[pos:end]),
        mac=bytes(mac),
        raw=bytes(packet),
    )


class Decoder:
    """Turn a byte stream into frames.

    ``feed(data, now)`` returns a list whose items are :class:`Frame` or
    :class:`OsdpError` values (never raised: garbage on a bus is normal).
    Leading 0xFF marks are dropped silently; other bytes before a SOM are
    reported once per run as a :class:`FrameError`; a bad LEN or check value
    drops the SOM and resyncs on the next one.  Frames of the wrong direction
    (``accept``) or for addresses not in ``addresses`` are skipped.  A partial
    frame is discarded when no byte arrived for ``gap`` seconds (``tick``).
    """

    def __init__(
        self,
        *,
        accept: Literal["reply", "command", "any"] = "reply",
        addresses: frozenset[int] | set[int] | None = None,
        max_len: int = MAX_LEN,
        gap: float = 0.1,
    ) -> None:
        if not 8 <= max_len <= MAX_LEN:
            raise ValueError(f"max_len must be 8-{MAX_LEN}, got {max_len}")
        self.accept = accept
        self.addresses = None if addresses is None else frozenset(addresses)
        self.max_len = max_len
        self.gap = gap
        self._buf = bytearray()
        self._last = 0.0

    @property
    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def next_deadline(self) -> float | None:
        return self._last + self.gap if self._buf else None

    def tick(self, now: float) -> list[Frame | OsdpError]:
        """Give up on a partial frame after ``gap`` s of silence: report it, drop its
        SOM and rescan the rest (a good frame may hide behind a corrupted LEN)."""
        out: list[Frame | OsdpError] = []
        while self._buf and now >= self._last + self.gap:
            dropped = bytes(self._buf)
            out.append(FrameError(f"partial frame timed out after {self.gap:g} s", dropped, len(dropped)))
            del self._buf[:1]
            out.extend(self._scan())
        return out

    def feed(self, data: bytes, now: float) -> list[Frame | OsdpError]:
        out: list[Frame | OsdpError] = []
        if self._buf and now >= self._last + self.gap:
            out.extend(self.tick(now))
        if data:
            self._last = now
            self._buf += data
        out.extend(self._scan())
        return out

    def _scan(self) -> list[Frame | OsdpError]:
        out: list[Frame | OsdpError] = []
        buf = self._buf
        while buf:
            if buf[0] != SOM:
                start = buf.find(SOM)
                if start < 0:
                    start = len(buf)
                junk = bytes(buf[:start])
                del buf[:start]
                if junk.strip(b"\xff"):
                    out.append(FrameError("garbage before SOM", junk, 0))
                continue
            if len(buf) < HEADER_LEN:
                break
            length = buf[2] | buf[3] << 8
            minimum = HEADER_LEN + 1 + (2 if buf[4] & CTRL_CRC else 1)
            if length < minimum or length > self.max_len:
                out.append(FrameError(f"LEN {length} outside {minimum}-{self.max_len}", bytes(buf[:HEADER_LEN]), 2))
                del buf[:1]
                continue
            if len(buf) < length:
                break
            packet = bytes(buf[:length])
            try:
                frame = parse(packet)
            except OsdpError as exc:
                out.append(exc)
                del buf[:1]
                continue
            del buf[:length]
            if self.accept == "reply" and not frame.reply:
                continue
            if self.accept == "command" and frame.reply:
                continue
            if self.addresses is not None and frame.address not in self.addresses:
                continue
            out.append(frame)
        return out
