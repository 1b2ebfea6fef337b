"""Our CP against libosdp's PeripheralDevice (a real OSDP reader implementation) on a pty."""

from __future__ import annotations

import os
import time

import osdp
import pytest
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp import phy
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from accessd.wiring.serial_port import SerialPort
from osdp_peer import KEY, Bus, Cp, Reader, wait_for


@pytest.fixture
def bus():
    b = Bus()
    yield b
    for ch in list(b.channels):
        ch.muted = True
    b.close()


@pytest.fixture
def cleanup():
    items = []
    yield items
    for item in reversed(items):
        item.stop()


def test_plaintext_card_and_keypad(bus, cleanup):
    reader = Reader(bus, 1)
    cp = Cp(bus, [PdConfig(address=1)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.online(1), 6)
    assert not cp.secure(1)
    (online,) = cp.of(ev.Online)
    assert online.pdid["serial"] == 123457 and online.capabilities["communication_security"] == 1
    reader.card("1" + "00000001" + "0000000000000001" + "0")
    reader.keys("1234#")
    assert wait_for(lambda: cp.of(ev.CardRead) and cp.of(ev.KeypadKeys), 5)
    assert cp.of(ev.CardRead)[0].bits == "1" + "00000001" + "0000000000000001" + "0"
    assert cp.of(ev.KeypadKeys)[0].keys == "1234#"


def test_secure_channel_with_configured_key_and_led_buzzer(bus, cleanup):
    reader = Reader(bus, 1, scbk=KEY, enforce_secure=True)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.online(1), 6)
    assert cp.secure(1) and reader.pd.is_sc_active()
    h1 = cp.runner.submit(1, p.Led(records=(p.LedRecord(temp_control=2, temp_on_time=5, temp_off_time=0,
                                                        temp_on_color=2, temp_off_color=2, temp_timer=20),)))
    h2 = cp.runner.submit(1, p.Buzzer(tone=2, on_time=2, off_time=0, count=1))
    assert wait_for(lambda: {e.handle for e in cp.of(ev.CommandDone) if e.ok} >= {h1, h2}, 6)
    led = next(c for c in reader.commands if c["command"] == osdp.Command.LED)
    assert led["temporary"] and led["on_color"] == osdp.CommandLEDColor.Green
    assert any(c["command"] == osdp.Command.Buzzer for c in reader.commands)
    reader.card("10" * 18)
    assert wait_for(lambda: cp.of(ev.CardRead), 5)[0].bits == "10" * 18
    reader.tamper(True)
    assert wait_for(lambda: [s for s in cp.of(ev.LocalStatus) if s.tamper], 6)


def test_install_mode_provisions_the_configured_key(bus, cleanup):
    reader = Reader(bus, 1, install_mode=True)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY, install_mode=True)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.of(ev.Provisioned), 6)
    assert reader.keyset == KEY
    assert wait_for(lambda: cp.online(1) and cp.secure(1), 6)
    assert cp.runner.info(1)["provisioned"]
    cp.stop()
    reader.stop()
    cleanup.clear()
    # the reader restarts with the key it stored; a CP that recorded the provisioning uses it
    reader2 = Reader(bus, 1, scbk=reader.keyset, enforce_secure=True)
    cp2 = Cp(bus, [PdConfig(address=1, scbk=KEY, install_mode=True, provisioned=True)])
    cleanup += [reader2, cp2]
    assert wait_for(lambda: cp2.online(1) and cp2.secure(1), 6)
    assert not cp2.of(ev.Provisioned) and reader2.keyset is None


def test_wrong_key_never_online_and_reported(bus, cleanup):
    reader = Reader(bus, 1, scbk=bytes(range(16)), enforce_secure=True)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.of(ev.SecurityAlert), 6)
    time.sleep(1.5)
    assert not cp.of(ev.Online) and not cp.online(1)
    assert [a.kind for a in cp.of(ev.SecurityAlert)] == ["wrong_key"]


def test_default_key_reader_is_not_rekeyed_without_install_mode(bus, cleanup):
    reader = Reader(bus, 1, install_mode=True)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.of(ev.SecurityAlert), 6)
    time.sleep(1.0)
    assert reader.keyset is None and not cp.of(ev.Online)


def strip_secure_channel_capability(raw: bytes) -> bytes:
    """A man in the middle rewriting osdp_PDCAP so the reader seems to lack a secure channel."""
    try:
        f = phy.parse(raw)
    except Exception:
        return raw
    if f.code != 0x46:
        return raw
    caps = p.PdCap.parse(f.data)
    kept = p.PdCap(capabilities=tuple(c for c in caps.capabilities if c.function != 9))
    return phy.build(f.address, 0x46, kept.build(), sqn=f.sqn, reply=True, use_crc=f.use_crc)


def test_capability_downgrade_is_refused_and_reported(bus, cleanup):
    reader = Reader(bus, 1, scbk=KEY)
    reader.channel.rewrite = strip_secure_channel_capability
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.of(ev.SecurityAlert), 6)
    assert [a.kind for a in cp.of(ev.SecurityAlert)] == ["downgrade"]
    time.sleep(0.5)
    assert not cp.of(ev.Online) and not cp.online(1)
    # nothing but ID/CAP ever went to the reader in plaintext
    assert not reader.commands


def test_reader_restarts_mid_session(bus, cleanup):
    reader = Reader(bus, 1, scbk=KEY, enforce_secure=True)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY)])
    cleanup += [cp]
    assert wait_for(lambda: cp.online(1), 6)
    reader.stop()
    restarted_at = time.monotonic()
    reader2 = Reader(bus, 1, scbk=KEY, enforce_secure=True)  # fresh state: no session, SQN expects 0
    cleanup.append(reader2)
    assert wait_for(lambda: cp.when(ev.Online, after=restarted_at), 6)
    assert cp.secure(1) and reader2.pd.is_sc_active()
    reader2.card("1" * 26)
    assert wait_for(lambda: cp.of(ev.CardRead), 5)
    assert not cp.of(ev.Offline) or all(o.reason == "re-handshake" for o in cp.of(ev.Offline))


def test_silent_reader_goes_offline_in_8_to_9_s_and_back_within_2_s(bus, cleanup):
    reader = Reader(bus, 1, scbk=KEY, enforce_secure=True)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY)])
    cleanup += [reader, cp]
    assert wait_for(lambda: cp.online(1), 6)
    reader.channel.muted = True  # cut the wire
    cut = time.monotonic()
    assert wait_for(lambda: cp.when(ev.Offline), 10, step=0.05)
    took = cp.when(ev.Offline) - cut
    assert 7.8 <= took <= 9.0, took  # the last good reply came up to one poll before the cut
    reader.channel.muted = False
    back = time.monotonic()
    assert wait_for(lambda: cp.when(ev.Online, after=back), 6)
    assert cp.when(ev.Online, after=back) - back <= 2.0
    assert cp.secure(1)


def test_two_readers_on_one_bus(bus, cleanup):
    a = Reader(bus, 1, scbk=KEY, enforce_secure=True)
    b = Reader(bus, 2)
    cp = Cp(bus, [PdConfig(address=1, scbk=KEY), PdConfig(address=2)])
    cleanup += [a, b, cp]
    assert wait_for(lambda: cp.online(1) and cp.online(2), 6)
    assert cp.secure(1) and not cp.secure(2)
    a.card("1" * 26)
    b.card("0" * 26)
    assert wait_for(lambda: len(cp.of(ev.CardRead)) == 2, 5)
    assert {(e.address, e.bits) for e in cp.of(ev.CardRead)} == {(1, "1" * 26), (2, "0" * 26)}
    # one reader unplugged: the other keeps working
    b.channel.muted = True
    time.sleep(0.5)
    a.card("10" * 13)
    assert wait_for(lambda: [e for e in cp.of(ev.CardRead) if e.bits == "10" * 13], 5)


def test_event_loop_runner_and_jsonl_trace(bus, cleanup, tmp_path):
    """BusLoop (the CP in the asyncio loop) and the packet trace, against the real reader."""
    import asyncio

    from accessd.readers.osdp import BusLoop, Tracer

    reader = Reader(bus, 1, scbk=KEY, enforce_secure=True)
    cleanup.append(reader)
    path = tmp_path / "trace.jsonl"
    seen = []

    async def run():
        loop = asyncio.get_running_loop()
        cp = ControlPanel([PdConfig(address=1, scbk=KEY)], random=os.urandom, now=loop.time(), trace=True)
        port = SerialPort(bus.port, baud=115200).open()
        tracer = Tracer(str(path), "jsonl")
        runner = BusLoop(cp, port, seen.extend, loop, tracer=tracer)
        runner.start()
        try:
            for _ in range(300):
                if cp.is_online(1):
                    break
                await asyncio.sleep(0.01)
            reader.card("1" * 30)
            for _ in range(200):
                if any(isinstance(e, ev.CardRead) for e in seen):
                    break
                await asyncio.sleep(0.01)
            return cp.is_secure(1)
        finally:
            runner.stop()
            port.close()
            tracer.close()

    assert asyncio.run(run()) is True
    (card,) = [e for e in seen if isinstance(e, ev.CardRead)]
    assert card.bits == "1" * 30
    assert not [e for e in seen if isinstance(e, ev.Packet)]  # the tracer took them
    import json

    records = [json.loads(line) for line in path.read_text().splitlines()]
    codes = [r["code"] for r in records]
    assert codes[:4] == ["ID", "PDID", "CAP", "PDCAP"] and "CHLNG" in codes and "RMAC_I" in codes
    assert {r["dir"] for r in records} == {"tx", "rx"}
    assert KEY.hex() not in path.read_text()


def test_usb_adapter_unplugged_and_back(tmp_path, cleanup):
    """The port disappears under the bus thread and comes back as another device: reopened, online again."""
    link = tmp_path / "ttyUSB0"
    bus1 = Bus()
    link.symlink_to(bus1.port)
    reader = Reader(bus1, 1)
    cp = Cp(None, [PdConfig(address=1)], port=str(link), reopen_interval=0.2, offline_after=1.0)
    try:
        assert wait_for(lambda: cp.online(1), 6)
        reader.stop()
        bus1.close()  # unplugged: the pty hangs up
        link.unlink()
        assert wait_for(lambda: cp.runner.port_error, 6)
        assert str(link) in cp.runner.port_error
        assert wait_for(lambda: cp.of(ev.Offline), 6)
        bus2 = Bus()
        link.symlink_to(bus2.port)
        reader2 = Reader(bus2, 1)
        cleanup.append(reader2)
        back = time.monotonic()
        assert wait_for(lambda: cp.when(ev.Online, after=back), 6)
        assert cp.runner.port_error is None
        reader2.card("01" * 13)
        assert wait_for(lambda: cp.of(ev.CardRead), 5)[0].bits == "01" * 13
    finally:
        cp.stop()
        for item in list(cleanup):
            item.stop()
        cleanup.clear()
        if "bus2" in locals():
            bus2.close()
