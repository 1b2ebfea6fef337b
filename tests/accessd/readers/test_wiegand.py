"""The Wiegand reader component: a real daemon on mock pins, and the component in-process."""

import asyncio
import json
import time

import pytest
from accessd.protocols.pipeline import Presented, Rejected
from accessd.protocols.wiegand.formats import LIBRARY
from gpiozero.pins.mock import MockFactory

from accessd.config import parse_config
from accessd.errors import CommandError, ConfigError
from accessd.readers.wiegand import create
from accessd.shell.scheduler import Scheduler

H26 = LIBRARY.encode("H10301", facility_code=12, card_number=3456)
PINS = {"d0": 5, "d1": 6, "frame_floor": 0.15, "frame_ceiling": 0.3}  # tolerate a paused simulator thread
FLIP = str.maketrans("01", "10")


def events_of(daemon, after=0):
    return [e for e in daemon.result("events", after_seq=after)["events"]]


def wait_events(daemon, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = events_of(daemon)
        if pred(evs):
            return evs
        time.sleep(0.05)
    raise AssertionError(events_of(daemon))


# --- end to end: accessd --config on mock GPIO -----------------------------------

@pytest.fixture
def wiegand_daemon(daemon_factory):
    # generous end-of-frame bounds: the simulated reader is a Python thread on a shared, busy box
    return daemon_factory('[reader]\nprotocol = "wiegand"\nid = "front"\n[reader.wiegand]\nd0 = 5\nd1 = 6\n'
                          'keypress_format = "EightBitInvertPadded"\nframe_floor = 0.15\nframe_ceiling = 0.3\n')


def test_simulate_card_end_to_end(wiegand_daemon):
    d = wiegand_daemon
    hexv = format(int(H26, 2), "X")
    out = d.cli("simulate", "card", "--hex", hexv, "--bit-length", "26", "--json", check=0)
    result = json.loads(out.stdout)
    assert result["bits"] == H26 and result["result"] == "card"
    assert (result["decision"], result["reason"]) == ("denied", "unknown_credential")
    assert result["credential"]["format"] == "H10301" and result["credential"]["card_number"] == 3456
    evs = wait_events(d, lambda e: any(x["type"] == "access.denied" for x in e))
    read = next(e for e in evs if e["type"] == "credential.read")
    assert read["reader"] == "front"
    assert read["credential"] == {"kind": "card", "bit_length": 26, "hex": hexv.rjust(7, "0"), "format": "H10301",
                                  "facility_code": 12, "card_number": 3456}
    denied = next(e for e in evs if e["type"] == "access.denied")
    assert denied["reason"] == "unknown_credential" and denied["reader"] == "front"

    # enrol the card; the same presentation is now granted and unlocks the door
    d.cli("holders", "add", "--first-name", "Ada", "--format", "H10301", "--fc", "12", "--cn", "3456", check=0)
    last = events_of(d)[-1]["seq"]
    out = d.cli("simulate", "card", "--hex", hexv, "--bit-length", "26", "--json", check=0)
    assert json.loads(out.stdout)["decision"] == "granted"
    evs = wait_events(d, lambda e: any(x["type"] == "access.granted" and x["seq"] > last for x in e))
    granted = next(e for e in evs if e["type"] == "access.granted" and e["seq"] > last)
    assert granted["holder"]["first_name"] == "Ada" and granted["credential"]["card_number"] == 3456

    status = d.result("status")["readers"]["front"]
    assert status["state"] == "connected" and status["counts"]["cards"] == 2
    assert status["last_frame"]["bits"] == H26


def test_bad_parity_and_swapped_lines_are_invalid_format(wiegand_daemon):
    d = wiegand_daemon
    bad = H26[:5] + ("1" if H26[5] == "0" else "0") + H26[6:]
    d.cli("simulate", "wiegand", bad, check=0)
    d.cli("simulate", "wiegand", H26.translate(FLIP), check=0)
    evs = wait_events(d, lambda e: sum(x["type"] == "access.denied" for x in e) >= 2)
    denials = [e for e in evs if e["type"] == "access.denied"]
    assert [e["reason"] for e in denials] == ["invalid_format", "invalid_format"]
    assert denials[0]["bits"] == bad and "parity fails" in denials[0]["detail"]
    assert denials[1].get("swapped") is True and "D0/D1 swapped" in denials[1]["detail"]
    assert not any(e["type"] == "credential.read" for e in evs)


def test_simulate_keys_presents_a_pin(wiegand_daemon):
    d = wiegand_daemon
    out = d.cli("simulate", "keys", "4711#", "--json", check=0)
    answer = json.loads(out.stdout)
    assert answer["results"] == ["keys"] * 5 and answer["decision"] == "denied"
    evs = wait_events(d, lambda e: any(x["type"] == "access.denied" for x in e))
    read = next(e for e in evs if e["type"] == "credential.read")
    assert read["credential"] == {"kind": "pin"}  # the digits never leave the daemon
    assert "4711" not in json.dumps(evs)
    last = d.result("status")["readers"]["front"]["last_frame"]
    assert last["keys"] == "#" and "bits" not in last and "hex" not in last  # the last key frame


def test_simulate_refused_without_mock_pins_and_bad_params(wiegand_daemon):
    d = wiegand_daemon
    r = d.request("simulate.card", hex="XYZ", bit_length=26)
    assert not r["ok"] and r["error"]["kind"] == "invalid" and "hex" in r["error"]["message"]
    r = d.request("simulate.card", format="H10301", fc=256, cn=1)
    assert not r["ok"] and "facility code 256 is out of range for H10301 (0–255)" in r["error"]["message"]
    r = d.request("simulate.wiegand", bits="0120")
    assert not r["ok"] and r["error"]["kind"] == "invalid"
    done = d.cli("simulate", "keys", "12A")
    assert done.returncode == 2 and "simulate.keys" in done.stderr


# --- the component in-process, with a stand-in daemon ------------------------------

class Access:
    """The sink of the reader's pipeline: records what it was handed."""

    def __init__(self):
        self.calls = []

    def submit(self, outcome, reader):
        if isinstance(outcome, Presented):
            self.calls.append(("present", outcome.credential, reader))
        elif isinstance(outcome, Rejected):
            self.calls.append(("deny", "invalid_format", reader, outcome.fields()))
        else:
            self.calls.append(("deny", "pin_timeout", reader, {"digits": outcome.digits}))


class FakeDaemon:
    def __init__(self, toml: dict, *, mock=True):
        self.config = parse_config(toml)
        self.formats = self.config.format_library()
        self.pin_factory = MockFactory()
        self.mock = mock
        self.access = Access()
        self.readers = {}
        self.commands = {}
        self.published = []
        self.offset = 0.0
        self.loop = None
        self.scheduler = Scheduler(self.clock)

    def clock(self):
        return time.monotonic() + self.offset

    def publish(self, type, **fields):  # noqa: A002
        self.published.append((type, fields))

    def register_command(self, name, handler, *, privileged=False, audited=None):
        self.commands[name] = handler


def run_component(toml, body, *, mock=True):
    async def main():
        daemon = FakeDaemon(toml, mock=mock)
        daemon.loop = asyncio.get_running_loop()
        daemon.scheduler.attach(daemon.loop)  # the simulated reader sends real edges in real time
        comp = create(daemon, daemon.access)
        await comp.start()
        try:
            return await body(daemon, comp)
        finally:
            await comp.stop()
            daemon.pin_factory.close()

    return asyncio.run(main())


WIEGAND = {"reader": {"protocol": "wiegand", "wiegand": {**PINS}}}


def test_create_is_none_unless_wiegand_and_custom_formats_reach_the_library():
    daemon = FakeDaemon({"formats": [{"name": "Site40", "bit_length": 40, "cn_position": 1, "cn_size": 38,
                                      "start_parity": "Even", "stop_parity": "Odd"}]})
    assert create(daemon, daemon.access) is None
    assert daemon.formats.get("site40").bit_length == 40


def test_four_bit_keys_pin_and_timeout():
    toml = {"reader": {"protocol": "wiegand", "wiegand": {**PINS, "keypress_format": "FourBit",
                                                          "pin_length": 4, "pin_timeout": 3}}}

    async def body(daemon, comp):
        out = await daemon.commands["simulate.keys"]({"digits": "1234"})
        assert out == {"format": "FourBit", "frames": 4, "results": ["keys"] * 4}
        (call,) = daemon.access.calls
        assert call[0] == "present" and call[1].kind == "pin" and call[1].pin == "1234" and call[2] == "reader1"
        await daemon.commands["simulate.keys"]({"digits": "9"})
        assert comp.pipeline.pins.pending == 1 and comp.next_deadline() is not None
        daemon.offset = 10.0  # the PIN timeout has passed when the timer runs
        comp._tick(daemon.clock())
        assert daemon.access.calls[-1] == ("deny", "pin_timeout", "reader1", {"digits": 1})
        assert comp.pipeline.pins.pending == 0

    run_component(toml, body)


def test_buffered_pin_frame_vs_card_of_the_same_length():
    toml = {"reader": {"protocol": "wiegand", "wiegand": {**PINS, "keypress_format": "Wiegand26",
                                                          "keypress_facility_code": 200}}}

    async def body(daemon, comp):
        pin_frame = LIBRARY.encode("H10301", facility_code=200, card_number=4321)
        assert (await daemon.commands["simulate.wiegand"]({"bits": pin_frame}))["result"] == "keys"
        assert (await daemon.commands["simulate.wiegand"]({"bits": H26}))["result"] == "card"
        kinds = [(c[1].kind, c[1].pin or c[1].card_number) for c in daemon.access.calls]
        assert kinds == [("pin", "4321"), ("card", 3456)]

    run_component(toml, body)


def test_simulate_card_by_format():
    async def body(daemon, comp):
        out = await daemon.commands["simulate.card"]({"format": "Wiegand34", "fc": 7, "cn": 8})
        assert out["result"] == "card" and out["bits"] == LIBRARY.encode("H10306", facility_code=7, card_number=8)
        cred = daemon.access.calls[-1][1]
        assert (cred.format, cred.facility_code, cred.card_number) == ("H10306", 7, 8)

    run_component(WIEGAND, body)


def test_conversion_and_raw_cards():
    toml = {"reader": {"protocol": "wiegand", "wiegand": {**PINS, "keypress_format": "none",
                                                          "convert_to": "H10301", "fc_mode": "override",
                                                          "facility_code": 99}}}

    async def body(daemon, comp):
        uid = format(0x04A1B2C3, "032b")  # a 32-bit CSN reader: no format, converted
        out = await daemon.commands["simulate.wiegand"]({"bits": uid, "interval": 0.001})
        assert out["result"] == "card"
        cred = daemon.access.calls[-1][1]
        assert (cred.format, cred.facility_code, cred.card_number) == ("H10301", 99, 0xB2C3)
        assert LIBRARY.decode(cred.bits).chosen.card_number == 0xB2C3

    run_component(toml, body)


def test_invalid_frames_and_noise():
    async def body(daemon, comp):
        out = await daemon.commands["simulate.wiegand"]({"bits": H26[:-2]})
        assert out["result"] == "invalid" and out["detail"] == "no format of 24 bits"
        deny = daemon.access.calls[-1]
        assert deny[:3] == ("deny", "invalid_format", "reader1") and deny[3]["bits"] == H26[:-2]
        out = await daemon.commands["simulate.wiegand"]({"bits": "11110001"})  # 0xF1: F is not the inverse of 1
        assert out["result"] == "invalid"
        assert comp.status()["counts"]["invalid"] == 2

    toml = {"reader": {"protocol": "wiegand", "wiegand": {**PINS, "accept_raw": False,
                                                          "keypress_format": "EightBitInvertPadded"}}}
    run_component(toml, body)


def test_a_frame_of_an_unknown_length_is_a_raw_card_by_default():
    async def body(daemon, comp):
        out = await daemon.commands["simulate.wiegand"]({"bits": H26[:-2]})
        assert out["result"] == "card"
        cred = daemon.access.calls[-1][1]
        assert (cred.bits, cred.format) == (H26[:-2], None)

    run_component(WIEGAND, body)


def test_feedback_lights_and_returns_to_idle():
    toml = {"reader": {"protocol": "wiegand", "wiegand": {**PINS, "led_green_pin": 12,
                                                          "led_red_pin": 13, "feedback_time": 0.1}}}

    async def body(daemon, comp):
        green, red = daemon.pin_factory.pin(12), daemon.pin_factory.pin(13)
        assert comp.status()["led"] == "red" and (green.state, red.state) == (1, 0)  # active low
        comp.feedback(True)
        assert comp.status()["led"] == "green" and (green.state, red.state) == (0, 1)
        await asyncio.sleep(0.3)
        assert comp.status()["led"] == "red"
        assert ("reader.connected", {"reader": "reader1", "protocol": "wiegand", "d0": 5, "d1": 6}) in daemon.published

    run_component(toml, body)


def test_simulate_refused_unless_mock():
    async def body(daemon, comp):
        with pytest.raises(CommandError) as err:
            await daemon.commands["simulate.card"]({"hex": "1", "bit_length": 26})
        assert err.value.kind == "invalid" and "mock GPIO" in str(err.value)

    run_component(WIEGAND, body, mock=False)


@pytest.mark.parametrize("toml, message", [
    ({"reader": {"wiegand": {"format": "H99"}}}, "reader.wiegand.format: unknown Wiegand format 'H99'"),
    ({"reader": {"wiegand": {"convert_to": "Site"}}}, "reader.wiegand.convert_to: unknown Wiegand format 'Site'"),
    ({"formats": [{"name": "Wiegand26", "bit_length": 30, "cn_size": 16}]}, "the name 'Wiegand26' is already taken"),
    ({"formats": [{"name": "X", "bit_length": 26, "cn_size": 30}]}, "formats[0]: format X: card_number at bit 1"),
    ({"reader": {"wiegand": {"d0": 5, "d1": 5}}}, "GPIO 5 is already"),
    ({"reader": {"wiegand": {"pin_timeout": 2}}}, "reader.wiegand.pin_timeout: expected a number of seconds 3–50"),
    ({"reader": {"wiegand": {"keypress_format": "Morse"}}}, "reader.wiegand.keypress_format: expected one of"),
    ({"reader": {"wiegand": {"keypress_format": "Wiegand26", "keypress_facility_code": 300}}},
     "reader.wiegand.keypress_format: keypress facility code 300 is out of range for Wiegand26 (0–255)"),
    ({"reader": {"wiegand": {"key_map": {"*": 1}}}}, "keys '1' and '*' both send 0x1"),
])
def test_config_is_checked_at_load(toml, message):
    with pytest.raises(ConfigError) as err:
        parse_config(toml)
    assert message in str(err.value)


def test_custom_format_in_preference_is_accepted():
    cfg = parse_config({"formats": [{"name": "Site30", "bit_length": 30, "fc_position": 1, "fc_size": 12,
                                     "cn_position": 13, "cn_size": 16, "start_parity": "Even", "stop_parity": "Odd"}],
                        "reader": {"protocol": "wiegand", "wiegand": {"preference": ["Site30", "H10301"]}}})
    assert cfg.reader.wiegand.preference == ["Site30", "H10301"]


def test_a_line_held_low_disconnects_the_reader():
    async def body(daemon, comp):
        d1 = daemon.pin_factory.pin(6)
        d1.drive_low()  # a shorted cable / an unpowered reader pulling D1 down
        await asyncio.sleep(0.8)
        assert comp.status()["state"] == "not_connected" and comp.status()["fault"] == "D1 held low"
        assert daemon.published[-1] == ("reader.disconnected", {"reader": "reader1", "protocol": "wiegand",
                                                                "reason": "D1 held low"})
        d1.drive_high()
        await asyncio.sleep(0.05)
        assert comp.status()["state"] == "connected" and comp.status()["fault"] is None
        assert daemon.published[-1][0] == "reader.connected"
        assert daemon.access.calls == []  # the stuck pulse was never a credential
        # and cards read again afterwards
        assert (await daemon.commands["simulate.card"]({"format": "H10301", "fc": 1, "cn": 2}))["result"] == "card"

    run_component(WIEGAND, body)
