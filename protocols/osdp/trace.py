"""Packet trace formats for commissioning real readers (sans-IO: returns bytes/str).

``jsonl_line(direction, raw, ts)`` describes one packet as a JSON Lines record;
``pcap_header()`` / ``pcap_record(raw, ts)`` write a classic libpcap file with
link type USER0 (147), each record one whole OSDP packet.  The caller owns the file.
Secure-channel data stays encrypted in the trace; key material never appears.
"""

from __future__ import annotations

import json
import struct

from . import payloads, phy
from .errors import OsdpError

LINKTYPE_USER0 = 147


def describe(raw: bytes) -> dict:
    try:
        f = phy.parse(raw)
    except OsdpError as exc:
        return {"error": str(exc)}
    table = payloads.REPLIES if f.reply else payloads.COMMANDS
    cls = table.get(f.code)
    out = {
        "addr": f.address,
        "reply": f.reply,
        "sqn": f.sqn,
        "code": cls.NAME if cls else f"0x{f.code:02X}",
        "crc": f.use_crc,
        "data": f.data.hex(),
    }
    if f.scb:
        out["scb"] = f.scb.hex()
    if f.mac:
        out["mac"] = f.mac.hex()
    return out


def jsonl_line(direction: str, raw: bytes, ts: float) -> str:
    if direction not in ("tx", "rx"):
        raise ValueError(f"direction must be tx or rx, got {direction!r}")
    return json.dumps({"ts": round(ts, 6), "dir": direction, "hex": raw.hex(), **describe(raw)},
                      separators=(",", ":")) + "\n"


def pcap_header(snaplen: int = 65535) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_USER0)


def pcap_record(raw: bytes, ts: float) -> bytes:
    sec = int(ts)
    usec = int(round((ts - sec) * 1_000_000))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    return struct.pack("<IIII", sec, usec, len(raw), len(raw)) + bytes(raw)
