"""The same bits give the same credential and decision whichever way they came.

One daemon reads a Wiegand reader on mock D0/D1 pins (``simulate wiegand`` drives the
real edge decoder), another an OSDP reader — a real libosdp PD on a pty sending
``osdp_RAW``.  Both have the same entry list and defaults; every frame of the table is
presented to both and the ``access.*`` events must agree field for field.
"""

from __future__ import annotations

import pytest
from accessd.protocols.wiegand.formats import LIBRARY
from osdp_peer import Bus, Reader, wait_for

H26 = LIBRARY.encode("H10301", facility_code=12, card_number=3456)
H26_OTHER = LIBRARY.encode("H10301", facility_code=12, card_number=999)
H37 = LIBRARY.encode("H10302", card_number=123456789)
UID32 = format(0x04A1B2C3, "032b")  # a CSN reader: no format of 32 bits with parity
BAD = H26[:5] + ("1" if H26[5] == "0" else "0") + H26[6:]
SWAPPED = H26.translate(str.maketrans("01", "10"))

FRAMES = [H26, H26_OTHER, H37, UID32, BAD, SWAPPED]
HOLDERS = [
    ("Ada", ["--format", "H10301", "--fc", "12", "--cn", "3456"]),
    ("Hid", ["--format", "H10302", "--cn", "123456789"]),
    ("Uid", ["--card", "04A1B2C3", "--bit-length", "32"]),
]


def access_events(d) -> list[dict]:
    return d.result("events", type="access.*", limit=1000)["events"]


def comparable(e: dict) -> dict:
    return {k: v for k, v in e.items() if k not in ("seq", "time", "reader")}


@pytest.fixture
def both(daemon_factory, tmp_path_factory):
    wiegand = daemon_factory(
        '[reader]\nprotocol = "wiegand"\nid = "door"\n[reader.wiegand]\nd0 = 5\nd1 = 6\n'
        'keypress_format = "none"\nframe_floor = 0.15\nframe_ceiling = 0.3\n',
        directory=tmp_path_factory.mktemp("wiegand"))
    bus = Bus()
    pd = Reader(bus, 1)
    osdp_d = daemon_factory(f'[reader]\nprotocol = "osdp"\nid = "door"\n[reader.osdp]\nport = "{bus.port}"\n'
                            'baud = 115200\naddress = 1\n', directory=tmp_path_factory.mktemp("osdp"))
    for d in (wiegand, osdp_d):
        for name, args in HOLDERS:
            d.cli("holders", "add", "--first-name", name, *args, check=0)
    assert wait_for(lambda: osdp_d.result("status")["readers"]["door"]["state"] == "connected", 10, step=0.1)
    yield wiegand, osdp_d, pd
    pd.stop()
    bus.close()


def test_same_bits_same_credential_and_decision_over_wiegand_and_osdp(both):
    wiegand, osdp_d, pd = both
    for i, bits in enumerate(FRAMES, start=1):
        wiegand.cli("simulate", "wiegand", bits, check=0)
        pd.card(bits)
        assert wait_for(lambda n=i: len(access_events(osdp_d)) >= n and len(access_events(wiegand)) >= n, 10,
                        step=0.05), (bits, access_events(osdp_d), access_events(wiegand))
    over_wiegand = [comparable(e) for e in access_events(wiegand)]
    over_osdp = [comparable(e) for e in access_events(osdp_d)]
    assert over_wiegand == over_osdp
    outcome = [(e["type"], e.get("reason"), (e.get("holder") or {}).get("first_name")) for e in over_osdp]
    assert outcome == [
        ("access.granted", None, "Ada"),
        ("access.denied", "unknown_credential", None),
        ("access.granted", None, "Hid"),
        ("access.granted", None, "Uid"),  # a Raw card (accept_raw, the default), matched by its bits
        ("access.denied", "invalid_format", None),  # bad parity is never a guess
        ("access.denied", "invalid_format", None),
    ]
    assert over_osdp[5]["swapped"] is True and over_osdp[4]["bits"] == BAD
