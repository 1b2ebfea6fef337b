"""Door modes: the pure Modes, the door's Hold, the policy by mode, and a daemon in virtual time."""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from accessd.protocols.credential import Credential

from accessd.access.decision import Holder
from accessd.access.policy import AccessPolicy, Decided, PolicySettings, Present
from accessd.access.schedule import Group, Schedule, ScheduleBook
from accessd.config import parse_config
from accessd.door.machine import Contact, Door, DoorPolicy, Emit, Grant, Hold, ManualLock, SetRelay, Tick
from accessd.door.modes import ModeEntry, Modes
from accessd.errors import ConfigError
from accessd.shell.daemon import Daemon
from accessd.shell.scheduler import VirtualClock

TZ = ZoneInfo("Europe/Berlin")


def at(*args) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()


BOOK = ScheduleBook({
    "office": Schedule.parse("office", TZ, weekly=["Mon-Fri 08:00-18:00"]),
    "lunch": Schedule.parse("lunch", TZ, weekly=["Mon-Fri 12:00-13:00"]),
    "night": Schedule.parse("night", TZ, weekly=["daily 22:00-06:00"]),
}, {"fire": Group(name="fire", responder=True), "staff": Group(name="staff")})


# ------------------------------------------------------------------------ Modes (pure)


def test_scheduled_modes_in_order_and_their_changes():
    m = Modes(BOOK, (ModeEntry(schedule="lunch", mode="unlocked"), ModeEntry(schedule="office", mode="card_only"),
                     ModeEntry(schedule="night", mode="card_and_pin")), "locked")
    (start,) = m.evaluate(at(2026, 11, 30, 7, 0))
    assert (start.mode, start.source) == ("locked", "start")
    assert m.next_change(at(2026, 11, 30, 7, 0)) == at(2026, 11, 30, 8, 0)
    (c,) = m.evaluate(at(2026, 11, 30, 8, 0))
    assert (c.mode, c.previous, c.source) == ("card_only", "locked", "schedule")
    (c,) = m.evaluate(at(2026, 11, 30, 12, 0))
    assert c.mode == "unlocked"  # the first entry wins
    assert m.evaluate(at(2026, 11, 30, 12, 30)) == []
    assert m.evaluate(at(2026, 11, 30, 13, 0))[0].mode == "card_only"
    assert m.evaluate(at(2026, 11, 30, 22, 0))[0].mode == "card_and_pin"


def test_first_card_unlock():
    m = Modes(BOOK, (ModeEntry(schedule="office", mode="unlocked", first_card=True),), "card_only")
    m.evaluate(at(2026, 11, 30, 7, 0))
    assert m.mode == "card_only"
    assert m.evaluate(at(2026, 11, 30, 8, 0)) == []  # scheduled unlocked, but no card yet
    assert m.status() == {"mode": "card_only", "scheduled": "unlocked", "lockdown": False, "waiting_first_card": True}
    (c,) = m.granted()
    assert (c.mode, c.source, c.waiting_first_card) == ("unlocked", "first_card", False)
    assert m.granted() == []
    (c,) = m.evaluate(at(2026, 11, 30, 18, 0))
    assert c.mode == "card_only"
    assert m.evaluate(at(2026, 12, 1, 8, 0)) == []  # the next day waits again
    assert m.waiting


def test_lockdown_overrides_and_is_lifted():
    m = Modes(BOOK, (ModeEntry(schedule="office", mode="unlocked"),))
    m.evaluate(at(2026, 11, 30, 9, 0))
    assert m.mode == "unlocked"
    (c,) = m.set_lockdown(True)
    assert (c.mode, c.previous, c.source) == ("lockdown", "unlocked", "command")
    assert m.evaluate(at(2026, 11, 30, 18, 0)) == []  # schedules change underneath
    (c,) = m.set_lockdown(False)
    assert (c.mode, c.previous) == ("locked", "lockdown")


def test_entries_are_checked():
    with pytest.raises(ValueError, match="first_card applies to the unlocked mode"):
        ModeEntry(schedule="office", mode="card_only", first_card=True)
    with pytest.raises(ValueError, match="mode: expected one of"):
        ModeEntry(schedule="office", mode="lockdown")
    with pytest.raises(ValueError, match="no schedule 'gym'"):
        Modes(BOOK, (ModeEntry(schedule="gym", mode="unlocked"),))


# ------------------------------------------------------------------------ the door's Hold


def test_hold_keeps_the_door_unlocked_without_a_deadline():
    door = Door(DoorPolicy(access_time=5, open_too_long=10))
    actions = door.handle(Hold(unlocked=True, mode="unlocked"), 0.0)
    assert actions[0] == SetRelay(unlocked=True)
    assert actions[1].type == "door.unlocked" and actions[1].fields["reason"] == "mode"
    assert door.next_deadline() is None
    assert door.handle(Grant(), 1.0) == []  # free access: nothing to add
    assert door.handle(ManualLock(), 2.0) == []  # a hand lock does not end a mode (lockdown does)
    door.handle(Contact(open=True), 3.0)
    assert door.next_deadline() is None  # no held-open alarm during free access
    assert door.handle(Tick(), 1000.0) == []
    actions = door.handle(Hold(unlocked=False, mode="locked"), 1000.0)
    assert SetRelay(unlocked=False) in actions
    assert Emit(type="door.locked", fields={"reason": "mode"}) in actions
    assert any(a.type == "door.held_open" for a in actions if isinstance(a, Emit))  # overdue: alarms now
    assert door.status(1000.0)["hold"] is False


def test_hold_over_a_timed_unlock():
    door = Door(DoorPolicy(access_time=5))
    door.handle(Grant(), 0.0)
    actions = door.handle(Hold(unlocked=True), 1.0)
    assert SetRelay(unlocked=True) not in actions and actions[0].fields["extended"] is True
    assert door.handle(Tick(), 10.0) == []  # the grant's deadline no longer locks


# ------------------------------------------------------------------------ the policy by mode

CARD = Credential.card("0318601", 26)
PIN = Credential(kind="pin", pin="1234")


class Lookup:
    def __init__(self, holder, pin="1234"):
        self.holder, self.pin, self.finds = holder, pin, 0

    def find(self, credential):
        self.finds += 1
        return self.holder

    def get(self, holder_id):
        return self.holder

    def pin_matches(self, holder_id, pin):
        return pin == self.pin


def present(mode, holder, credential, pin=None, card_and_pin=False):
    lookup = Lookup(holder)
    p = AccessPolicy(PolicySettings(card_and_pin=card_and_pin), lookup, TZ, book=BOOK)
    p.mode = mode
    actions = p.handle(Present(credential=credential, reader="r1", ref=1, pin=pin), now=0.0,
                       wall=at(2026, 11, 30, 9, 0))
    decided = [a for a in actions if isinstance(a, Decided)]
    return (decided[0].decision.reason if decided else "waiting"), lookup.finds


ANN = Holder(id=1, first_name="Ann", has_card=True, has_pin=True, group="staff")
FIRE = Holder(id=2, first_name="Fay", has_card=True, group="fire")


def test_policy_by_mode():
    assert present("locked", ANN, CARD) == (None, 1)  # access.card_and_pin = false
    assert present("card_and_pin", ANN, CARD) == ("waiting", 1)  # the mode asks for the PIN
    assert present("card_and_pin", ANN, CARD, pin="1234") == (None, 1)
    assert present("card_only", ANN, CARD) == (None, 1)
    assert present("card_only", ANN, PIN) == ("credential_not_allowed", 0)  # refused before the look-up
    assert present("pin_only", ANN, CARD) == ("credential_not_allowed", 0)
    assert present("pin_only", ANN, PIN)[0] is None
    assert present("pin_only", ANN, PIN, card_and_pin=True)[0] is None  # the PIN alone is the mode
    assert present("card_only", ANN, CARD, card_and_pin=True) == (None, 1)  # no PIN asked
    assert present("locked", ANN, PIN, card_and_pin=True)[0] == "pin_mismatch"  # as without modes
    assert present("lockdown", ANN, CARD) == ("lockdown", 1)
    assert present("lockdown", FIRE, CARD) == (None, 1)
    assert present("lockdown", None, CARD)[0] == "unknown_credential"
    assert present("unlocked", ANN, CARD) == (None, 1)


# ------------------------------------------------------------------------ config and a daemon

MODES = """
[schedules.office]
weekly = ["Mon-Fri 08:00-18:00"]
[schedules.early]
weekly = ["Mon-Fri 07:00-08:00"]
[groups.fire]
responder = true
[modes]
default = "locked"
[[modes.scheduled]]
schedule = "office"
mode = "unlocked"
first_card = true
[[modes.scheduled]]
schedule = "early"
mode = "card_and_pin"
"""


def test_config_errors():
    with pytest.raises(ConfigError, match=r"modes.scheduled\[0\].schedule: no \[schedules.gym\] table"):
        parse_config(tomllib.loads('[[modes.scheduled]]\nschedule = "gym"\nmode = "unlocked"'))
    with pytest.raises(ConfigError, match=r"modes.scheduled\[0\].mode: expected one of"):
        parse_config(tomllib.loads('[schedules.a]\n[[modes.scheduled]]\nschedule = "a"\nmode = "lockdown"'))
    with pytest.raises(ConfigError, match=r"modes.scheduled\[0\].first_card: first_card applies to mode"):
        parse_config(tomllib.loads('[schedules.a]\n[[modes.scheduled]]\nschedule = "a"\nmode = "pin_only"\n'
                                   'first_card = true'))


def test_daemon_modes_in_virtual_time(tmp_path):
    """Mode changes at their second, first-card unlock, lockdown, status: mono and wall move together."""
    text = (f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
            f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n{MODES}')
    clock = VirtualClock(1000.0)
    wall0 = at(2026, 11, 30, 6, 59, 58)  # a Monday

    def wall():
        return wall0 + (clock.now - 1000.0)

    async def main():
        d = Daemon(parse_config(tomllib.loads(text)), clock=clock, virtual_time=True, wall=wall)
        events: list[dict] = []
        publish = d.publish

        def record(type, **fields):  # noqa: A002
            out = publish(type, **fields)
            events.append({**out, "at": wall()})
            return out

        d.publish = record
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        try:
            s = d.access.store
            s.add(first_name="Ann", card="0318601", bit_length=26, pin="482913")
            s.add(first_name="Fay", card="1", bit_length=26, group="fire")
            modes = [e for e in events if e["type"] == "door.mode"]
            assert [m["mode"] for m in modes] == ["locked"]
            status = d.door.door_status()["mode"]
            assert status["next_change"] == "2026-11-30T06:00:00Z"  # 07:00 CET
            d.scheduler.advance(clock, 2)  # 07:00:00
            modes = [e for e in events if e["type"] == "door.mode"]
            assert modes[-1]["mode"] == "card_and_pin" and modes[-1]["at"] == at(2026, 11, 30, 7, 0)
            assert d.access.policy.mode == "card_and_pin"
            d.scheduler.advance(clock, 3600)  # 08:00:00: unlocked, but first card
            last = [e for e in events if e["type"] == "door.mode"][-1]
            assert (last["mode"], last["scheduled"], last["waiting_first_card"]) == ("locked", "unlocked", True)
            assert last["at"] == at(2026, 11, 30, 8, 0)
            assert not d.door.relay.unlocked
            d.scheduler.advance(clock, 600)
            decision = d.access.present(Credential.card("0318601", 26), "r1", pin="482913")
            if isinstance(decision, asyncio.Future):
                decision = await decision
            assert decision.granted
            last = [e for e in events if e["type"] == "door.mode"][-1]
            assert (last["mode"], last["source"]) == ("unlocked", "first_card")
            assert d.door.relay.unlocked and d.door.door.hold
            d.scheduler.advance(clock, 3600)  # long after the access time: still held
            assert d.door.relay.unlocked
            assert d.door.door_status()["mode"]["next_change"] == "2026-11-30T17:00:00Z"
            d.scheduler.advance(clock, at(2026, 11, 30, 18, 0) - wall() - 0.5)
            assert d.door.relay.unlocked  # 17:59:59.5
            d.scheduler.advance(clock, 0.5)
            last = [e for e in events if e["type"] == "door.mode"][-1]
            assert (last["mode"], last["at"]) == ("locked", at(2026, 11, 30, 18, 0))
            assert not d.door.relay.unlocked
            locked = [e for e in events if e["type"] == "door.locked"][-1]
            assert locked["reason"] == "mode" and locked["at"] == at(2026, 11, 30, 18, 0)
            # lockdown: responders only
            d.door.set_lockdown(True)
            assert d.access.policy.mode == "lockdown"
            ann = d.access.present(Credential.card("0318601", 26), "r1", pin="482913")
            ann = await ann if isinstance(ann, asyncio.Future) else ann
            fay = d.access.present(Credential.card("1", 26), "r1")
            fay = await fay if isinstance(fay, asyncio.Future) else fay
            assert (ann.reason, fay.granted) == ("lockdown", True)
            d.door.set_lockdown(False)
            assert d.door.door_status()["mode"]["mode"] == "locked"
            return events
        finally:
            d.request_stop()
            await task

    asyncio.run(main())


def test_daemon_mode_changes_across_dst_at_their_second(tmp_path):
    """Clocks forward (2026-03-29) and back (2026-10-25): the unlock and relock instants."""
    text = (f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
            f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n'
            '[schedules.s]\nweekly = ["Sun 02:30-03:30"]\n[[modes.scheduled]]\nschedule = "s"\nmode = "unlocked"\n')
    for day, expected in (
        ((2026, 3, 29), ["2026-03-29T01:00:00+00:00", "2026-03-29T01:30:00+00:00"]),  # 03:00 CEST (the gap), 03:30
        ((2026, 10, 25), ["2026-10-25T00:30:00+00:00", "2026-10-25T02:30:00+00:00"]),  # 02:30 CEST … 03:30 CET
    ):
        clock = VirtualClock(1000.0)
        wall0 = at(*day, 0, 0)

        def wall(clock=clock, wall0=wall0):
            return wall0 + (clock.now - 1000.0)

        async def main(clock=clock, wall=wall):
            d = Daemon(parse_config(tomllib.loads(text)), clock=clock, virtual_time=True, wall=wall)
            seen = []
            publish = d.publish

            def record(type, **fields):  # noqa: A002
                if type in ("door.unlocked", "door.locked"):
                    seen.append((type, datetime.fromtimestamp(wall(), ZoneInfo("UTC")).isoformat()))
                return publish(type, **fields)

            d.publish = record
            task = asyncio.create_task(d.run())
            while d.server._server is None:
                if task.done():
                    await task
                await asyncio.sleep(0.01)
            try:
                d.scheduler.advance(clock, 6 * 3600)
                return seen
            finally:
                d.request_stop()
                await task

        seen = asyncio.run(main())
        assert seen == [("door.unlocked", expected[0]), ("door.locked", expected[1])], day
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
