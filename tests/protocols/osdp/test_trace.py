"""Packet trace formats."""

from __future__ import annotations

import json
import struct

import pytest
from accessd.protocols.osdp import phy, trace


def test_jsonl_line_describes_the_packet():
    raw = phy.build(3, 0x69, bytes(14), sqn=2)
    rec = json.loads(trace.jsonl_line("tx", raw, 12.25))
    assert rec == {"ts": 12.25, "dir": "tx", "hex": raw.hex(), "addr": 3, "reply": False, "sqn": 2, "code": "LED",
                   "crc": True, "data": "00" * 14}
    reply = phy.build(3, 0x76, bytes(32), sqn=1, reply=True, scb=bytes((3, 0x12, 1)))
    rec = json.loads(trace.jsonl_line("rx", reply, 1.0))
    assert rec["code"] == "CCRYPT" and rec["reply"] and rec["scb"] == "031201"


def test_jsonl_of_garbage_names_the_error():
    rec = json.loads(trace.jsonl_line("rx", b"\x53\x00\x09", 0.0))
    assert "not an OSDP packet" in rec["error"] and rec["hex"] == "530009"
    with pytest.raises(ValueError):
        trace.jsonl_line("sideways", b"", 0.0)


def test_pcap_layout():
    head = trace.pcap_header()
    magic, major, minor, _, _, snap, link = struct.unpack("<IHHiIII", head)
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 147)
    raw = phy.build(1, 0x60)
    rec = trace.pcap_record(raw, 1700000000.9999996)
    sec, usec, incl, orig = struct.unpack("<IIII", rec[:16])
    assert (sec, usec, incl, orig) == (1700000001, 0, len(raw), len(raw)) and rec[16:] == raw
