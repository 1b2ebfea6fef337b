"""The CP state machine against fake PDs on a simulated bus with a fake clock."""

from __future__ import annotations

import pytest
from accessd.protocols.osdp import cp as cpm
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from accessd.protocols.osdp.errors import IllegalTransition
from osdp_fakepd import KEY, Bus, Counter, FakePd


def make(pds, configs, **kw):
    cp = ControlPanel(configs, random=Counter(), now=0.0, **kw)
    return Bus(cp=cp, pds={pd.address: pd for pd in pds})


def kinds(seen, *types):
    return [e for _, e in seen if not types or isinstance(e, types)]


def sent_names(bus, address=None):
    out = []
    for _, f in bus.sent:
        if address is None or f.address == address:
            cls = p.COMMANDS.get(f.code)
            out.append(cls.NAME if cls else hex(f.code))
    return out


# (name, fake PD kwargs, PD config kwargs, expected command sequence prefix, online?, secure?)
HANDSHAKES = [
    ("plaintext", {}, {}, ["ID", "CAP", "LSTAT", "POLL"], True, False),
    ("secure", {"scbk": KEY}, {"scbk": KEY}, ["ID", "CAP", "CHLNG", "SCRYPT", "LSTAT", "POLL"], True, True),
    ("install", {"install": True}, {"scbk": KEY, "install_mode": True},
     ["ID", "CAP", "CHLNG", "SCRYPT", "KEYSET", "ID", "CAP", "CHLNG", "SCRYPT", "LSTAT"], True, True),
    ("provisioned skips install", {"scbk": KEY}, {"scbk": KEY, "install_mode": True, "provisioned": True},
     ["ID", "CAP", "CHLNG", "SCRYPT", "LSTAT"], True, True),
    ("downgrade refused", {"caps_sc": False}, {"scbk": KEY}, ["ID", "CAP"], False, False),
    ("wrong key", {"scbk": bytes(16)}, {"scbk": KEY}, ["ID", "CAP", "CHLNG", "ID", "CAP", "CHLNG"], False, False),
    ("default-key PD without install mode", {"install": True}, {"scbk": KEY},
     ["ID", "CAP", "CHLNG", "ID", "CAP", "CHLNG"], False, False),
]


@pytest.mark.parametrize("name,pdkw,cfgkw,prefix,online,secure", HANDSHAKES, ids=[h[0] for h in HANDSHAKES])
def test_handshakes(name, pdkw, cfgkw, prefix, online, secure):
    pd = FakePd(1, **pdkw)
    bus = make([pd], [PdConfig(address=1, **cfgkw)])
    seen = bus.run(3.0)
    assert sent_names(bus)[: len(prefix)] == prefix
    assert bus.cp.is_online(1) is online
    assert bus.cp.is_secure(1) is secure
    assert isinstance(seen[0][1], ev.Connecting)
    if online:
        (on,) = kinds(seen, ev.Online)
        assert on.secure is secure and on.pdid["serial"] == 1234
    else:
        assert not kinds(seen, ev.Online)


def test_sqn_starts_at_zero_and_cycles_1_2_3():
    bus = make([FakePd(1)], [PdConfig(address=1)])
    bus.run(0.2)
    sqns = [f.sqn for _, f in bus.sent]
    assert sqns[:8] == [0, 1, 2, 3, 1, 2, 3, 1]


def test_install_mode_keyset_carries_the_configured_key_and_reports_provisioned():
    pd = FakePd(1, install=True)
    bus = make([pd], [PdConfig(address=1, scbk=KEY, install_mode=True)])
    seen = bus.run(2.0)
    assert pd.keyset == KEY
    assert len(kinds(seen, ev.Provisioned)) == 1
    assert bus.cp.info(1)["provisioned"] is True
    # the KEYSET went inside the secure channel (SCS_17), never in plaintext
    (keyset,) = [f for _, f in bus.sent if f.code == 0x75]
    assert keyset.scb_type == 0x17 and KEY not in keyset.raw


def test_install_mode_with_a_pd_that_already_has_the_key():
    pd = FakePd(1, scbk=KEY)  # provisioned before, but this CP has no record of it
    bus = make([pd], [PdConfig(address=1, scbk=KEY, install_mode=True)])
    seen = bus.run(4.0)
    assert bus.cp.is_online(1) and bus.cp.is_secure(1)
    assert pd.keyset is None  # never re-keyed
    assert len(kinds(seen, ev.Provisioned)) == 1 and bus.cp.info(1)["provisioned"]


def test_wrong_key_is_reported_once_and_never_online():
    bus = make([FakePd(1, scbk=bytes(16))], [PdConfig(address=1, scbk=KEY)])
    seen = bus.run(20.0)
    alerts = kinds(seen, ev.SecurityAlert)
    assert [a.kind for a in alerts] == ["wrong_key"]
    assert not kinds(seen, ev.Online)
    assert bus.cp.state(1) != "online"


def test_downgrade_is_a_security_alert_and_plaintext_never_goes_online():
    bus = make([FakePd(1, caps_sc=False)], [PdConfig(address=1, scbk=KEY)])
    seen = bus.run(20.0)
    assert [a.kind for a in kinds(seen, ev.SecurityAlert)] == ["downgrade"]
    assert not kinds(seen, ev.Online)
    # and never a POLL or any other command in plaintext
    assert set(sent_names(bus)) <= {"ID", "CAP"}


def test_pd_that_requires_sc_without_key_is_reported():
    bus = make([FakePd(1, require_sc=True)], [PdConfig(address=1)])
    seen = bus.run(3.0)
    assert "secure_channel_required" in [a.kind for a in kinds(seen, ev.SecurityAlert)]


def test_offline_after_8_s_of_silence_and_back_within_2_s():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    assert bus.cp.is_online(1)
    pd.silent = True
    seen = bus.run(12.0)
    last_answer = max(bus.replies)
    (off,) = kinds(seen, ev.Offline)
    t_off = next(t for t, e in seen if isinstance(e, ev.Offline))
    assert 8.0 - 1e-9 <= t_off - last_answer <= 9.0, t_off - last_answer
    assert "8" in off.reason
    pd.silent = False
    pd.restart()
    back_from = bus.now
    seen = bus.run(16.0)
    t_on = next(t for t, e in seen if isinstance(e, ev.Online))
    assert t_on - back_from <= 2.0
    assert bus.cp.is_secure(1)


def test_retransmit_uses_the_same_bytes_and_sqn():
    pd = FakePd(1)
    bus = make([pd], [PdConfig(address=1)])
    bus.run(0.5)
    pd.silent = True
    bus.run(1.0)
    pd.silent = False
    bus.run(1.5)
    frames = [f for t, f in bus.sent if 0.5 <= t <= 1.5]
    first = frames[0]
    retrans = [f for f in frames if f.raw == first.raw]
    assert len(retrans) >= 2  # sent again, identical
    assert bus.cp.is_online(1)


def test_pd_restart_nak4_rehandshakes():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    n = len(bus.sent)
    pd.restart()  # session and SQN gone; it NAKs the next secure POLL
    seen = bus.run(2.0)
    names = sent_names(bus)[n:]
    assert names[:1] == ["POLL"] and "ID" in names and "CHLNG" in names
    assert bus.cp.is_online(1) and bus.cp.is_secure(1)
    assert kinds(seen, ev.Online)


def test_mac_failure_drops_the_session_and_rehandshakes():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    pd.corrupt_mac = True
    seen = bus.run(1.1)
    assert "mac_mismatch" in [a.kind for a in kinds(seen, ev.SecurityAlert)]
    assert not bus.cp.is_online(1)
    pd.corrupt_mac = False
    pd.restart()
    bus.run(4.0)
    assert bus.cp.is_online(1) and bus.cp.is_secure(1)


def test_plaintext_reply_inside_a_session_is_refused():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    pd.plaintext_in_session = True
    pd.events.append(p.RawCard.from_bits("1" * 26))
    seen = bus.run(1.2)
    assert "plaintext_reply" in [a.kind for a in kinds(seen, ev.SecurityAlert)]
    assert not kinds(seen, ev.CardRead)  # the injected card was not believed


def test_busy_repeats_the_command_with_the_same_sqn():
    pd = FakePd(1)
    bus = make([pd], [PdConfig(address=1)])
    bus.run(0.5)
    pd.busy = 2
    start = len(bus.sent)
    bus.run(0.7)
    frames = [f for _, f in bus.sent[start:start + 3]]
    assert frames[0].sqn == frames[1].sqn == frames[2].sqn
    assert bus.cp.is_online(1)


def test_card_keypad_and_status_events_when_online():
    pd = FakePd(1, scbk=KEY)
    pd.lstat = p.LocalStatus(tamper=1, power=0)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    pd.events += [p.RawCard.from_bits("10" * 13), p.Keypad.from_keys("12#"), p.LocalStatus(tamper=0, power=1)]
    seen = bus.run(1.5)
    (card,) = kinds(seen, ev.CardRead)
    assert card.bits == "10" * 13 and card.address == 1
    (keys,) = kinds(seen, ev.KeypadKeys)
    assert keys.keys == "12#"
    statuses = kinds(bus.log, ev.LocalStatus)
    assert [(s.tamper, s.power_failure) for s in statuses] == [(True, False), (False, True)]


def test_command_queue_completion():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    h1 = bus.cp.submit(1, p.Led(records=(p.LedRecord(temp_control=2, temp_on_color=2, temp_on_time=5, temp_timer=10),)))
    h2 = bus.cp.submit(1, p.Buzzer())
    h3 = bus.cp.submit(1, p.Text(text="Hello"))  # the fake PD NAKs TEXT
    seen = bus.run(1.5)
    done = {e.handle: e for e in kinds(seen, ev.CommandDone)}
    assert done[h1].ok and done[h2].ok
    assert not done[h3].ok and "NAK 3" in done[h3].detail
    assert [n for n, _ in pd.received if n in ("LED", "BUZ")] == ["LED", "BUZ"]
    with pytest.raises(ValueError, match="cannot be queued"):
        bus.cp.submit(1, p.Poll())


def test_comset_moves_the_pd_to_its_new_address_and_baud():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)], baud=9600)
    bus.run(1.0)
    h = bus.cp.submit(1, p.ComSet(address=9, baud=38400))
    seen = bus.run(1.1)
    (moved,) = kinds(seen, ev.ComChanged)
    assert (moved.old_address, moved.address, moved.baud) == (1, 9, 38400)
    assert [e.ok for e in kinds(seen, ev.CommandDone) if e.handle == h] == [True]
    pd.address = pd.moved_to
    bus.pds = {9: pd}
    n = len(bus.sent)
    bus.run(1.5)
    assert {f.address for _, f in bus.sent[n:]} == {9}
    assert bus.cp.is_online(9) and bus.cp.is_secure(9) and bus.cp.baud == 38400


def test_a_command_on_the_wire_when_the_pd_falls_silent_completes_as_failed():
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    pd.silent = True
    h1 = bus.cp.submit(1, p.Buzzer())
    h2 = bus.cp.submit(1, p.Buzzer(count=2))
    seen = bus.run(10.0)
    done = {e.handle: e for e in kinds(seen, ev.CommandDone)}
    assert set(done) == {h1, h2} and not done[h1].ok and not done[h2].ok
    assert "offline" in done[h1].detail or "left online" in done[h1].detail


def test_commands_for_an_offline_pd_fail_at_once():
    bus = make([FakePd(1, scbk=KEY)], [PdConfig(address=1, scbk=KEY)])
    h = bus.cp.submit(1, p.Buzzer())
    (done,) = kinds([(0, e) for e in bus.cp.events()], ev.CommandDone)
    assert done.handle == h and not done.ok


def test_two_pds_round_robin():
    a, b = FakePd(1, scbk=KEY), FakePd(2)
    bus = make([a, b], [PdConfig(address=1, scbk=KEY), PdConfig(address=2)])
    bus.run(2.0)
    assert bus.cp.is_online(1) and bus.cp.is_online(2)
    assert bus.cp.is_secure(1) and not bus.cp.is_secure(2)
    tail = [f.address for _, f in bus.sent[-10:]]
    assert tail in ([1, 2] * 5, [2, 1] * 5)


def test_an_absent_pd_costs_the_others_only_its_timeout_slot():
    a = FakePd(1)
    bus = make([a], [PdConfig(address=1), PdConfig(address=2)])
    bus.run(20.0)
    assert bus.cp.is_online(1) and bus.cp.state(2) == "offline"
    polls = [t for t, f in bus.sent if f.address == 1 and 10 <= t < 20]
    gaps = sorted(b - x for x, b in zip(polls, polls[1:]))
    assert max(gaps) <= 0.2 + 0.011 + 1e-9  # at worst one 200 ms probe slot of PD 2
    assert len(polls) > 10 / 0.011 * 0.6  # PD 1 is still polled nearly flat out


def test_switch_gap_quiet_line_before_another_pd_and_round_robin_stays_fair():
    pds = [FakePd(a) for a in (1, 2, 3)]
    bus = make(pds, [PdConfig(address=a) for a in (1, 2, 3)], switch_gap=0.05)
    bus.run(3.0)
    assert all(bus.cp.is_online(a) for a in (1, 2, 3))
    tail = [(t, f.address) for t, f in bus.sent if t >= 1.0]
    # every PD served in turn: the PD addressed last never keeps the bus
    assert [a for _, a in tail[:9]] in ([1, 2, 3] * 3, [2, 3, 1] * 3, [3, 1, 2] * 3)
    # a command to another PD only after the previous reply plus the gap (replies take 10 ms)
    for (t0, a0), (t1, a1) in zip(tail, tail[1:]):
        assert a1 != a0 and t1 - t0 >= 0.01 + 0.05 - 1e-9


def test_switch_gap_costs_nothing_with_one_pd():
    bus = make([FakePd(1)], [PdConfig(address=1)], switch_gap=0.05)
    bus.run(2.0)
    polls = [t for t, f in bus.sent if t >= 1.0]
    assert max(b - a for a, b in zip(polls, polls[1:])) <= 0.011


def test_a_silent_pd_is_retried_once_then_probed_at_probe_interval():
    a, b = FakePd(1), FakePd(2)
    bus = make([a, b], [PdConfig(address=1), PdConfig(address=2)], probe_interval=0.5)
    bus.run(1.0)
    b.silent = True
    bus.run(6.0)
    to_b = [t for t, f in bus.sent if f.address == 2 and t >= 1.0]
    assert len(to_b) <= 2 + 5 / 0.5 + 1  # the command, one retry, then one probe per probe_interval
    assert all(y - x >= 0.5 for x, y in zip(to_b[1:], to_b[2:]))
    assert bus.cp.info(1)["timeouts"] == 0 and bus.cp.info(2)["timeouts"] == len(to_b)
    a_polls = [t for t, f in bus.sent if f.address == 1 and t >= 1.0]
    assert len(a_polls) > len(to_b) * 10  # PD 1 keeps the bus between the probes


def test_a_reply_that_started_in_time_is_waited_for_at_low_baud():
    pd = FakePd(1)
    bus = make([pd], [PdConfig(address=1)], baud=9600, reply_timeout=0.02)
    bus.run(1.0)
    assert bus.cp.is_online(1)
    # the PD answers a little before the timeout and its reply is still arriving when the timer fires
    sent_before = bus.cp.info(1)["sent"]
    deadline = bus.cp.next_deadline()
    half = phy.build(1, 0x50, bytes.fromhex("00011a00aabbccc0"), sqn=bus.cp._pd(1).sqn, reply=True)
    bus.cp.receive(half[:6], deadline - 0.001)
    bus.cp.tick(deadline)  # the timeout: bytes are still arriving, so the CP keeps waiting
    assert bus.cp.data_to_send() == b"" and bus.cp.info(1)["timeouts"] == 0
    bus.cp.receive(half[6:], deadline + 0.005)
    assert [e.bits for e in bus.cp.events() if isinstance(e, ev.CardRead)] == ["10101010101110111100110011"]
    assert bus.cp.info(1)["sent"] == sent_before + 1  # the next POLL, not a retransmit


def test_poll_interval_is_respected():
    bus = make([FakePd(1)], [PdConfig(address=1)], poll_interval=0.1)
    bus.run(5.0)
    polls = [t for t, f in bus.sent if f.code == 0x60]
    assert all(b - a >= 0.1 - 1e-9 for a, b in zip(polls, polls[1:]))


def test_reply_timeout_accounts_for_wire_time():
    bus = make([FakePd(1)], [PdConfig(address=1)], baud=9600)
    bus.pds[1].silent = True
    bus.run(0.0001)
    frame = bus.sent[0][1]
    assert bus.cp.next_deadline() == pytest.approx(len(frame.raw) * 10 / 9600 + 0.2)


def test_illegal_transition_raises_naming_state_and_event():
    with pytest.raises(IllegalTransition, match="no transition from state id on rekeyed") as exc:
        cpm.next_on_fault(cpm.State.ID, cpm.Fault.REKEYED)
    assert (exc.value.state, exc.value.event) == ("id", "rekeyed")
    with pytest.raises(IllegalTransition, match="no transition from state refused on reply"):
        cpm.next_on_reply(cpm.State.REFUSED, cpm.Facts())


@pytest.mark.parametrize("kw,msg", [
    ({"pds": []}, "at least one PD"),
    ({"pds": [PdConfig(address=1), PdConfig(address=1)]}, "distinct"),
    ({"pds": [PdConfig(address=1)], "reply_timeout": 0}, "reply_timeout"),
])
def test_constructor_validation(kw, msg):
    pds = kw.pop("pds")
    with pytest.raises(ValueError, match=msg):
        ControlPanel(pds, random=Counter(), now=0.0, **kw)


def test_pd_config_validation():
    with pytest.raises(ValueError, match="install_mode needs an scbk"):
        PdConfig(address=1, install_mode=True)
    with pytest.raises(ValueError, match="0-126"):
        PdConfig(address=127)
    assert "0x10" not in repr(PdConfig(address=1, scbk=KEY)) and "<set>" in repr(PdConfig(address=1, scbk=KEY))


from accessd.protocols.osdp import phy  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.binary(max_size=64),
    st.builds(lambda sqn, code, data: phy.build(1, code, data, sqn=sqn, reply=True),
              st.integers(0, 3), st.sampled_from([0x40, 0x41, 0x45, 0x46, 0x48, 0x50, 0x53, 0x76, 0x78, 0x79]),
              st.binary(max_size=40)),
    st.builds(lambda b, i, v: b[:i] + bytes([v]) + b[i + 1:],
              st.just(phy.build(1, 0x50, bytes.fromhex("00011a00aabbccc0"), sqn=1, reply=True)),
              st.integers(0, 15), st.integers(0, 255)),
), max_size=8))
@example([b"S\x81\x08\x00\x04@\x08\x06"] * 2)  # two forged ACKs with SQN 0: "the PD restarted", twice
@example([b"S\x81\x08\x00\x07@["])  # a partial plaintext ACK completed by the PD's real reply
def test_hostile_bytes_never_crash_the_cp_and_it_recovers(chunks):
    pd = FakePd(1, scbk=KEY)
    bus = make([pd], [PdConfig(address=1, scbk=KEY)])
    bus.run(1.0)
    assert bus.cp.is_online(1)
    t = bus.now
    for c in chunks:  # injected on the wire between the CP's command and the PD's reply
        bus.cp.receive(c, t)
        bus.cp.tick(t)
        t += 0.001
    bus.now = t
    bus.run(t + 0.25)  # the injected bytes meet the PD's next reply (a partial frame completes)
    end = t + 12.0  # worst case: a forged reply broke the session → offline → re-handshake
    while not (bus.cp.is_online(1) and bus.cp.is_secure(1)) and bus.now < end:
        bus.run(bus.now + 0.25)
    assert bus.cp.is_online(1) and bus.cp.is_secure(1)
    pd.events.append(p.RawCard.from_bits("1" * 26))
    seen = bus.run(bus.now + 0.5)
    assert [e.bits for e in kinds(seen, ev.CardRead)] == ["1" * 26]
