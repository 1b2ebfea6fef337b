"""Event rules and auxiliary outputs: the intercom's example end to end on mock pins."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from accessd.protocols.credential import Credential

from accessd.access.schedule import Schedule, ScheduleBook
from accessd.config import parse_config
from accessd.errors import CommandError, ConfigError
from accessd.rules.engine import Rule, Rules
from accessd.shell.daemon import Daemon
from accessd.shell.scheduler import VirtualClock

TZ = ZoneInfo("Europe/Berlin")
ROOT = Path(__file__).resolve().parents[2]


def at(*args) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()


def test_engine_conditions():
    book = ScheduleBook({"office": Schedule.parse("office", TZ, weekly=["Mon-Fri 08:00-18:00"])})
    rules = Rules((Rule(name="a", on="access.*", match=(("holder.first_name", "Ann"),)),
                   Rule(name="b", on="door.forced_open", schedule="office"),
                   Rule(name="c", on="access.granted", holder_condition="access_granted"),
                   Rule(name="m")), book)
    ann = {"holder": {"id": 1, "first_name": "Ann"}}
    wall = at(2026, 11, 30, 9, 0)
    assert [f.rule.name for f in rules.on_event("access.granted", ann, wall, lambda h: {})] == ["a"]
    assert [f.rule.name for f in rules.on_event("access.granted", ann, wall, lambda h: {"access_granted": True})] == ["a", "c"]
    assert rules.on_event("access.denied", {"holder": None}, wall) == []
    assert [f.rule.name for f in rules.on_event("door.forced_open", {}, wall)] == ["b"]
    assert rules.on_event("door.forced_open", {}, at(2026, 11, 30, 19, 0)) == []
    assert rules.on_event("rule.fired", ann, wall) == []  # rules never fire on rules
    assert rules.trigger("m").trigger == "manual"


@pytest.mark.parametrize(("text", "message"), [
    ('[[rules]]\nname = "x"\npulse = { output = "siren" }', r"rules\[0\].pulse.output: no \[outputs.siren\] table"),
    ('[[rules]]\nname = "x"\nschedule = "office"', r"rules\[0\].schedule: no \[schedules.office\] table"),
    ('[[rules]]\nname = "x"\npublish = "access.granted"', r"rules\[0\].publish: expected an event type rule.NAME"),
    ('[[rules]]\nname = "x"\n[[rules]]\nname = "x"', r"rules\[1\].name: two rules are named"),
    ('[outputs.siren]\npin = 22', r"door.relay_pin|outputs.siren.pin: GPIO 22 is already used"),
])
def test_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(tomllib.loads(text))


def test_the_intercom_example_end_to_end_on_mock_pins(tmp_path):
    text = (ROOT / "examples" / "rules.toml").read_text()
    text = text.replace("/tmp/accessd-rules", str(tmp_path)).replace('protocol = "wiegand"', 'protocol = "none"')
    clock = VirtualClock(1000.0)

    async def main():
        d = Daemon(parse_config(tomllib.loads(text)), clock=clock, virtual_time=True,
                   wall=lambda: at(2026, 11, 28, 12, 0) + clock.now - 1000.0)  # a Saturday: no office mode
        events: list[dict] = []
        publish = d.publish

        def record(type, **fields):  # noqa: A002
            out = publish(type, **fields)
            events.append(out)
            return out

        d.publish = record
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        try:
            s = d.access.store
            s.add(first_name="Ann", card="0318601", bit_length=26, conditions={"access_granted": True})
            s.add(first_name="Bob", card="1", bit_length=26)
            pin16 = d.pin_factory.pin(16)
            assert d.status()["outputs"]["relay1"]["active"] is False
            bob = d.access.present(Credential.card("1", 26), "reader1")
            assert (await bob if isinstance(bob, asyncio.Future) else bob).granted
            assert d.status()["outputs"]["relay1"]["active"] is False  # no event condition: no pulse
            ann = d.access.present(Credential.card("0318601", 26), "reader1")
            assert (await ann if isinstance(ann, asyncio.Future) else ann).granted
            assert d.status()["outputs"]["relay1"] == {"active": True, "for": 7.0}
            high = pin16.state
            fired = [e for e in events if e["type"] == "rule.fired"]
            assert fired[-1]["rule"] == "relay1-on-grant" and fired[-1]["trigger"] == "access.granted"
            d.scheduler.advance(clock, 6.999)
            assert d.status()["outputs"]["relay1"]["active"] is True
            d.scheduler.advance(clock, 0.001)
            assert d.status()["outputs"]["relay1"]["active"] is False and pin16.state != high
            changed = [e for e in events if e["type"] == "output.changed"]
            assert [c["active"] for c in changed] == [True, False]
            # by hand
            out = d.rules.cmd_trigger({"name": "announce"})
            assert out["fired"] == "announce"
            assert [e for e in events if e["type"] == "rule.announce"][-1]["trigger"] == "manual"
            with pytest.raises(CommandError, match="no rule 'nope'"):
                d.rules.cmd_trigger({"name": "nope"})
            assert [r["name"] for r in d.rules.cmd_list({})["rules"]] == ["relay1-on-grant", "announce"]
        finally:
            d.request_stop()
            await task

    asyncio.run(main())
