"""End to end: a libosdp reader on a pty → accessd (subprocess) → decision → LED/buzzer back over OSDP."""

from __future__ import annotations

import json

import osdp
from accessd.protocols.wiegand.formats import LIBRARY
from osdp_peer import KEY, Bus, Reader, wait_for


def events(d, glob="*"):
    return d.result("events", type=glob, limit=1000)["events"]


def reader_state(d):
    return d.result("status")["readers"]["door1"]


def led_colors(reader):
    return [c["on_color"] for c in reader.commands if c.get("command") == osdp.Command.LED]


def test_cards_pins_feedback_tamper_and_provisioning(daemon_factory):
    bus = Bus()
    reader = Reader(bus, 1, install_mode=True)
    try:
        d = daemon_factory(
            f'[reader]\nprotocol = "osdp"\nid = "door1"\n'
            f'[reader.osdp]\nport = "{bus.port}"\nbaud = 115200\naddress = 1\nscbk = "{KEY.hex()}"\n'
            f'install_mode = true\npin_timeout = 3\n'
        )
        # install mode: the configured key is provisioned, then the session runs on it
        assert wait_for(lambda: reader_state(d)["state"] == "connected", 8, step=0.1), reader_state(d)
        st = reader_state(d)
        assert st["secure"] is True and st["provisioned"] is True
        assert reader.keyset == KEY
        record = json.loads((d.state_dir / "osdp-provisioned.json").read_text())
        assert "1" in record and KEY.hex() not in json.dumps(record)
        types = [e["type"] for e in events(d, "reader.*")]
        assert types[:1] == ["reader.connecting"] and "reader.provisioned" in types and "reader.connected" in types

        # a known card → granted → green LED and a beep over OSDP
        bits = LIBRARY.encode("H10301", facility_code=12, card_number=3456)
        d.cli("holders", "add", "--first-name", "Ada", "--format", "H10301", "--fc", "12", "--cn", "3456", check=0)
        d.cli("holders", "add", "--first-name", "Pin", "--pin", "4321", check=0)
        before = len(reader.commands)
        reader.card(bits)
        granted = wait_for(lambda: events(d, "access.granted"), 6, step=0.05)
        assert granted and granted[0]["reader"] == "door1"
        cred = granted[0]["credential"]
        assert (cred["format"], cred["facility_code"], cred["card_number"]) == ("H10301", 12, 3456)
        assert wait_for(lambda: osdp.CommandLEDColor.Green in led_colors(reader), 5)
        assert wait_for(lambda: any(c["command"] == osdp.Command.Buzzer for c in reader.commands[before:]), 5)

        # an unknown card → denied → red LED
        reader.card(LIBRARY.encode("H10301", facility_code=12, card_number=999))
        denied = wait_for(lambda: events(d, "access.denied"), 6, step=0.05)
        assert denied[0]["reason"] == "unknown_credential"
        assert wait_for(lambda: osdp.CommandLEDColor.Red in led_colors(reader), 5)

        # keypad digits → PIN → granted
        reader.keys("4321#")
        assert wait_for(lambda: len(events(d, "access.granted")) == 2, 6, step=0.05)
        pin_grant = events(d, "access.granted")[1]
        assert pin_grant["credential"]["kind"] == "pin" and "4321" not in json.dumps(pin_grant)

        # digits and then nothing: pin_timeout
        reader.keys("12")
        timeouts = wait_for(lambda: [e for e in events(d, "access.denied") if e["reason"] == "pin_timeout"], 8,
                            step=0.1)
        assert timeouts and timeouts[0]["reader"] == "door1"

        # LSTATR tamper → a tamper event
        reader.tamper(True)
        tampers = wait_for(lambda: events(d, "tamper"), 6, step=0.05)
        assert (tampers[0]["reader"], tampers[0]["input"], tampers[0]["state"]) == ("door1", "reader_tamper", "active")
        assert d.stop() == 0

        # restart: the provisioning record keeps install mode from being entered again
        d2 = daemon_factory(
            f'[reader]\nprotocol = "osdp"\nid = "door1"\n'
            f'[reader.osdp]\nport = "{bus.port}"\nbaud = 115200\naddress = 1\nscbk = "{KEY.hex()}"\n'
            f'install_mode = true\n'
        )
        since = events(d2)[-1]["seq"] if events(d2) else 0
        assert wait_for(lambda: reader_state(d2)["state"] == "connected", 8, step=0.1)
        new = [e["type"] for e in events(d2, "reader.*") if e["seq"] > since - 50]
        assert new.count("reader.provisioned") == 1  # only the first run's
        assert d2.stop() == 0
    finally:
        reader.stop()
        bus.close()


def test_missing_port_is_reported_and_status_says_not_connected(daemon_factory):
    d = daemon_factory('[reader]\nprotocol = "osdp"\nid = "door1"\n[reader.osdp]\nport = "/dev/ttyNOSUCH0"\n'
                       'offline_after = 1\n')
    st = wait_for(lambda: reader_state(d)["state"] == "not_connected" and reader_state(d), 8, step=0.1)
    assert st, reader_state(d)
    assert "/dev/ttyNOSUCH0" in st["port_error"] and "not found" in st["port_error"]
    assert "/dev/ttyNOSUCH0" in d.log()
    assert d.stop() == 0


def test_unwritable_trace_is_a_config_error_naming_the_key(daemon_factory, tmp_path):
    d = daemon_factory(f'[reader]\nprotocol = "osdp"\n[reader.osdp]\nport = "/dev/ttyNOSUCH0"\n'
                       f'trace = "{tmp_path}/no/such/dir/trace.jsonl"\n', start=False)
    try:
        d.start(timeout=10)
    except RuntimeError as exc:
        text = str(exc)
    else:  # pragma: no cover - the daemon must refuse
        d.stop()
        text = ""
    assert "exited with 2" in text and "reader.osdp.trace" in text


def test_two_readers_on_one_bus_through_the_daemon(daemon_factory):
    bus = Bus()
    first, second = Reader(bus, 1), Reader(bus, 2)
    try:
        d = daemon_factory(f'[reader]\nprotocol = "osdp"\nid = "door1"\n'
                           f'[reader.osdp]\nport = "{bus.port}"\nbaud = 115200\naddress = 1\naddresses = [2]\n')
        both = lambda: {k: v["state"] for k, v in d.result("status")["readers"].items()}  # noqa: E731
        assert wait_for(lambda: both() == {"door1": "connected", "door1.2": "connected"}, 8, step=0.1), both()
        second.card(LIBRARY.encode("H10301", facility_code=1, card_number=2))
        reads = wait_for(lambda: events(d, "credential.read"), 6, step=0.05)
        assert reads[0]["reader"] == "door1.2" and reads[0]["credential"]["card_number"] == 2
        denied = wait_for(lambda: events(d, "access.denied"), 6, step=0.05)
        assert denied[0]["reader"] == "door1.2"
        # the red LED went to the reader that read the card, not to its neighbour
        assert wait_for(lambda: osdp.CommandLEDColor.Red in led_colors(second), 5)
        assert not led_colors(first)
        assert d.stop() == 0
    finally:
        first.stop()
        second.stop()
        bus.close()
