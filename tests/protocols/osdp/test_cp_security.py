"""The CP's security and NAK branches, each driven by one forged reply on a simulated bus.

A :class:`Forger` wraps a fake PD and replaces its reply to one command (the first
``times`` of them) by a crafted one: what a broken, old or hostile reader could send.
"""

from __future__ import annotations

import pytest
from accessd.protocols.osdp import cp as cpm
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp import phy
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from osdp_fakepd import KEY, Bus, Counter, FakePd


class Forger:
    def __init__(self, pd: FakePd, code: int, forge, times: int = 1) -> None:
        self.pd = pd
        self.code = code
        self.forge = forge
        self.times = times

    def __getattr__(self, name):
        return getattr(self.pd, name)

    def handle(self, raw: bytes) -> bytes | None:
        out = self.pd.handle(raw)
        f = phy.parse(raw)
        if f.code == self.code and self.times and out is not None:
            self.times -= 1
            return self.forge(f, phy.parse(out), self.pd)
        return out


def plain(code: int, data: bytes = b""):
    return lambda f, out, pd: phy.build(f.address, code, data, sqn=f.sqn, reply=True)


def same_without_scb(f, out, pd):
    return phy.build(f.address, out.code, out.data, sqn=f.sqn, reply=True)


def rmac_with_scb(flag: int, rmac: bytes | None = None):
    return lambda f, out, pd: phy.build(f.address, out.code, rmac if rmac is not None else out.data, sqn=f.sqn,
                                        reply=True, scb=bytes((3, 0x14, flag)))


def secure_nak(code: int):
    return lambda f, out, pd: pd._wrap(0x41, bytes((code,)), f.sqn)


def names(bus):
    return [p.COMMANDS[f.code].NAME for _, f in bus.sent if f.code in p.COMMANDS]


def run(pd, cfg, until=4.0, **kw):
    cp = ControlPanel([cfg], random=Counter(), now=0.0, **kw)
    bus = Bus(cp=cp, pds={pd.address: pd})
    seen = bus.run(until)
    return bus, [e for _, e in seen]


def alerts(seen):
    return [e.kind for e in seen if isinstance(e, ev.SecurityAlert)]


# (name, forged command code, forgery, times, expected alerts, online in the end (or how many Online
# events: 1 when the session survives), state if not)
CASES = [
    ("CHLNG answered with ACK", 0x76, plain(0x40), 99, ["downgrade"], False, "refused"),
    ("CCRYPT without SCS_12", 0x76, same_without_scb, 99, ["downgrade"], False, "refused"),
    ("CHLNG refused with NAK 3", 0x76, plain(0x41, b"\x03"), 99, ["downgrade"], False, "refused"),
    ("SCRYPT answered with ACK", 0x77, plain(0x40), 1, ["rmac_rejected"], True, None),
    ("RMAC-I without SCS_14", 0x77, same_without_scb, 1, ["rmac_rejected"], True, None),
    ("server cryptogram rejected (SCB 0xFF)", 0x77, rmac_with_scb(0xFF), 1, ["rmac_rejected"], True, None),
    ("bad RMAC-I", 0x77, rmac_with_scb(0x01, bytes(16)), 1, ["mac_mismatch"], True, None),
    ("SCRYPT refused with NAK 5", 0x77, plain(0x41, b"\x05"), 1, ["wrong_key"], True, None),
    ("CHLNG refused with NAK 6 forever", 0x76, plain(0x41, b"\x06"), 99, ["wrong_key"], False, "id"),
    ("secure NAK 4: the PD restarted", 0x60, secure_nak(4), 1, [], True, None),
    ("secure NAK 5 in a session: restarted", 0x60, secure_nak(5), 1, [], True, None),
    ("secure NAK 1 to a POLL", 0x60, secure_nak(1), 1, [], 1, None),
    ("plaintext reply to a secure POLL", 0x60, plain(0x40), 1, ["plaintext_reply"], True, None),
    ("plaintext NAK to a secure POLL", 0x60, plain(0x41, b"\x01"), 1, ["secure_channel_lost"], True, None),
    ("bad reply MAC", 0x60, lambda f, out, pd: out.raw[:-6] + bytes(4) + phy.crc16(out.raw[:-6] + bytes(4))
     .to_bytes(2, "little"), 1, ["mac_mismatch"], True, None),
    ("CCRYPT where an ACK belongs", 0x60, lambda f, out, pd: pd._wrap(0x76, bytes(32), f.sqn), 1, [], 1, None),
    ("ID answered with ACK", 0x61, plain(0x40), 2, [], True, None),
    ("CAP refused with NAK 1", 0x62, plain(0x41, b"\x01"), 1, [], True, None),
    ("CAP answered with SQN 0 after a retransmit", 0x64, lambda f, out, pd: phy.build(f.address, 0x40, b"", sqn=0,
                                                                                      reply=True), 1, [], True, None),
]


@pytest.mark.parametrize("name,code,forge,times,kinds,online,state", CASES, ids=[c[0] for c in CASES])
def test_forged_replies_in_a_secure_session(name, code, forge, times, kinds, online, state):
    pd = Forger(FakePd(1, scbk=KEY), code, forge, times)
    bus, seen = run(pd, PdConfig(address=1, scbk=KEY), until=8.0)
    assert alerts(seen) == kinds
    assert bus.cp.is_online(1) is bool(online)
    if online:
        assert bus.cp.is_secure(1)
        expected = online if online is not True else (1 if code in (0x61, 0x62, 0x76, 0x77) else 2)
        assert sum(isinstance(e, ev.Online) for e in seen) == expected
        assert pd.times == 0  # the forgery was sent and the CP recovered from it
    else:
        assert bus.cp.state(1) == state and not [e for e in seen if isinstance(e, ev.Online)]
        assert set(names(bus)) <= {"ID", "CAP", "CHLNG"}  # nothing else ever went out


@pytest.mark.parametrize("name,code,forge,online", [
    ("NAK 4 to a plaintext POLL: re-handshake", 0x60, plain(0x41, b"\x04"), 2),
    ("NAK 1 to a plaintext POLL: nothing happens", 0x60, plain(0x41, b"\x01"), 1),
    ("NAK 6 without an SCBK", 0x64, plain(0x41, b"\x06"), 1),
])
def test_naks_in_plaintext(name, code, forge, online):
    pd = Forger(FakePd(1), code, forge, 1)
    bus, seen = run(pd, PdConfig(address=1))
    assert sum(isinstance(e, ev.Online) for e in seen) == online
    if b"\x06" in forge(phy.parse(phy.build(1, 0x60)), None, None):
        assert alerts(seen) == ["secure_channel_required"] and bus.cp.state(1) == "refused"
    else:
        assert not alerts(seen) and bus.cp.is_online(1)


@pytest.mark.parametrize("name,forge,times,provisioned", [
    ("KEYSET refused with NAK 1", plain(0x41, b"\x01"), 1, True),
    ("KEYSET answered with PDID", lambda f, out, pd: pd._wrap(0x45, bytes(12), f.sqn), 1, True),
])
def test_install_mode_keyset_failures_retry(name, forge, times, provisioned):
    inner = FakePd(1, install=True)
    pd = Forger(inner, 0x75, forge, times)
    bus, seen = run(pd, PdConfig(address=1, scbk=KEY, install_mode=True), until=8.0)
    assert sum(isinstance(e, ev.Provisioned) for e in seen) == 1 and inner.keyset == KEY
    assert bus.cp.is_online(1) and bus.cp.is_secure(1)


def test_an_offline_pd_that_naks_its_probe_stays_offline_until_it_answers():
    pd = Forger(FakePd(1), 0x61, plain(0x41, b"\x01"), 0)
    cp = ControlPanel([PdConfig(address=1)], random=Counter(), now=0.0, offline_after=1.0, probe_interval=0.2)
    bus = Bus(cp=cp, pds={1: pd})
    pd.pd.silent = True
    bus.run(1.5)
    assert cp.state(1) == "offline"
    pd.pd.silent = False
    pd.times = 3  # the next probes are NAKed: still offline, probed again
    seen = [e for _, e in bus.run(1.5 + 0.45)]
    assert cp.state(1) == "offline" and pd.times == 1 and not seen
    bus.run(8.0)
    assert cp.is_online(1) and pd.times == 0


def test_an_offline_pd_answering_nak_4_restarts_the_handshake():
    pd = Forger(FakePd(1), 0x61, plain(0x41, b"\x04"), 0)
    cp = ControlPanel([PdConfig(address=1)], random=Counter(), now=0.0, offline_after=1.0, probe_interval=0.2)
    bus = Bus(cp=cp, pds={1: pd})
    pd.pd.silent = True
    bus.run(1.5)
    pd.pd.silent = False
    pd.times = 1
    seen = bus.run(3.0)
    assert cp.is_online(1)
    assert [type(e).__name__ for _, e in seen if isinstance(e, (ev.Connecting, ev.Online))] == ["Connecting", "Online"]


def test_keyset_while_online_rekeys_and_handshakes_on_the_new_key():
    pd = FakePd(1, scbk=KEY)
    bus, _ = run(pd, PdConfig(address=1, scbk=KEY), until=1.0)
    new = bytes(range(0x40, 0x50))
    h = bus.cp.submit(1, p.KeySet(key=new))
    seen = [e for _, e in bus.run(3.0)]
    assert [e.ok for e in seen if isinstance(e, ev.CommandDone) and e.handle == h] == [True]
    assert pd.scbk == new and bus.cp.is_online(1) and bus.cp.is_secure(1)
    assert [e.reason for e in seen if isinstance(e, ev.Offline)] == ["re-handshake"]
    assert not alerts(seen)


def test_keyset_needs_a_secure_channel():
    bus, _ = run(FakePd(1), PdConfig(address=1), until=1.0)
    h = bus.cp.submit(1, p.KeySet(key=KEY))
    (done,) = [e for e in bus.cp.events() if isinstance(e, ev.CommandDone)]
    assert done.handle == h and not done.ok and "secure channel" in done.detail


@pytest.mark.parametrize("reply,event", [
    (p.Keypad(reader=0, data=b""), None),
    (p.FormattedCard(reader=0, direction=1, data=b"ABC"), ev.FormattedCardRead(address=1, reader=0, direction=1,
                                                                                text="ABC")),
    (p.InputStatus(status=b"\x01\x00"), ev.IoStatus(address=1, kind="input", status=(1, 0))),
    (p.ManufacturerReply(vendor=b"\x01\x02\x03", data=b"\x09"),
     ev.ManufacturerData(address=1, vendor=b"\x01\x02\x03", data=b"\x09")),
    (p.Com(address=1, baud=9600), None),  # a COM nobody asked for changes nothing
])
def test_online_replies_become_events(reply, event):
    pd = FakePd(1)
    bus, _ = run(pd, PdConfig(address=1), until=1.0)
    pd.events.append(reply)
    seen = [e for _, e in bus.run(1.2) if not isinstance(e, ev.CommandDone)]
    assert seen == ([event] if event else [])
    assert bus.cp.is_online(1)


def test_comset_to_a_taken_address_keeps_the_address_and_without_baud_keeps_none():
    a, b = FakePd(1), FakePd(2)
    cp = ControlPanel([PdConfig(address=1), PdConfig(address=2)], random=Counter(), now=0.0)
    bus = Bus(cp=cp, pds={1: a, 2: b})
    bus.run(1.0)
    cp.submit(1, p.ComSet(address=2, baud=38400))
    seen = [e for _, e in bus.run(1.2)]
    (moved,) = [e for e in seen if isinstance(e, ev.ComChanged)]
    assert (moved.old_address, moved.address) == (1, 1) and cp.baud is None
    assert cp.addresses == [1, 2]


def test_trace_reports_every_packet_and_other_api_errors():
    cp = ControlPanel([PdConfig(address=1)], random=Counter(), now=0.0, trace=True)
    bus = Bus(cp=cp, pds={1: FakePd(1)})
    seen = [e for _, e in bus.run(0.1)]
    packets = [e for e in seen if isinstance(e, ev.Packet)]
    assert packets[0].direction == "tx" and packets[1].direction == "rx"
    assert {e.raw for e in packets} >= {f.raw for _, f in bus.sent}
    with pytest.raises(ValueError, match="no PD with address 9"):
        cp.info(9)
    bad = ControlPanel([PdConfig(address=1, scbk=KEY)], random=lambda n: bytes(n - 1), now=0.0)
    with pytest.raises(ValueError, match="8 bytes"):
        Bus(cp=bad, pds={1: FakePd(1, scbk=KEY)}).run(1.0)
    with pytest.raises(ValueError, match="16 bytes"):
        PdConfig(address=1, scbk=bytes(8))


def test_every_fault_in_the_table_names_a_real_state():
    for (state, fault), new in cpm.ON_FAULT.items():
        assert isinstance(state, cpm.State) and isinstance(fault, cpm.Fault) and isinstance(new, cpm.State)
    assert set(cpm.STEPS) == set(cpm.State) - {cpm.State.REFUSED}
    for step in cpm.STEPS.values():
        assert step.command.CODE in p.COMMANDS and all(r.CODE in p.REPLIES for r in step.expects)


def test_offline_while_a_command_is_on_the_wire():
    pd = FakePd(1)
    cp = ControlPanel([PdConfig(address=1)], random=Counter(), now=0.0, offline_after=1.0, reply_timeout=0.9)
    bus = Bus(cp=cp, pds={1: pd})
    bus.run(0.5)
    pd.silent = True
    seen = [e for _, e in bus.run(3.0)]
    (off,) = [e for e in seen if isinstance(e, ev.Offline)]
    assert "1 s" in off.reason and cp.state(1) == "offline"
    assert cp.next_deadline() is not None  # still probing


def test_a_reply_hidden_behind_a_stray_som_is_found_when_the_partial_times_out():
    pd = FakePd(1)
    cp = ControlPanel([PdConfig(address=1)], random=Counter(), now=0.0)
    bus = Bus(cp=cp, pds={1: pd})
    bus.run(1.0)
    bus.arrival = None  # the PD's own reply is lost; a noisy line delivers this instead
    replies = cp.info(1)["replies"]
    t = bus.now
    cp.receive(b"\x53\x00\x20\x00\x04" + phy.build(1, 0x40, sqn=cp._pd(1).sqn, reply=True), t)
    assert cp.data_to_send() == b""  # bytes are pending on the line: nothing is sent
    cp.tick(t + 0.15)
    errors = [e for e in cp.events() if isinstance(e, ev.BusError)]
    assert errors and "partial frame timed out" in errors[0].error
    assert cp.info(1)["replies"] == replies + 1 and cp.info(1)["timeouts"] == 0


def test_an_authentic_reply_with_a_bad_payload_is_a_bus_error_not_a_lost_reply():
    pd = Forger(FakePd(1), 0x60, plain(0x50, b"\x00\x01\x1a\x00\xaa"), 1)  # 26 bits in one byte
    bus, seen = run(pd, PdConfig(address=1), until=1.0)
    (err,) = [e for e in seen if isinstance(e, ev.BusError)]
    assert "RAW" in err.error and err.data.startswith(b"\x53\x81")
    assert bus.cp.is_online(1) and bus.cp.info(1)["timeouts"] == 0 and pd.times == 0
    assert not [e for e in seen if isinstance(e, ev.CardRead)]


def test_bytes_arriving_between_commands_never_make_a_deadline_in_the_past():
    """Found by the fuzz loop: a partial frame pending when a send was due gave a deadline
    that tick() could not act on (a busy loop on the bus thread)."""
    cp = ControlPanel([PdConfig(address=1)], random=Counter(), now=0.0, poll_interval=0.1)
    bus = Bus(cp=cp, pds={1: FakePd(1)})
    bus.run(0.5)
    bus.run(bus.arrival[0] if bus.arrival else bus.now)  # the reply is in: the next POLL is due in 0.1 s
    t = bus.now
    cp.receive(b"\x53\x81\x20\x00", t + 0.05)  # a stray partial frame
    cp.tick(t + 0.1)
    assert cp.data_to_send() == b""  # the line is busy
    assert cp.next_deadline() > t + 0.1
    cp.tick(cp.next_deadline())  # the partial is given up and the POLL goes out
    assert phy.parse(cp.data_to_send()).code == 0x60
