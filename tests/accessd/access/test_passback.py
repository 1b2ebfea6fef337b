"""Anti-passback: readers with a direction, soft and hard, timed and daily resets, restarts."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

from accessd.protocols.credential import Credential

from accessd.access.decision import Holder
from accessd.access.policy import AccessPolicy, Decided, PolicySettings, Present, Publish, RecordPassage
from accessd.config import parse_config
from accessd.shell.daemon import Daemon
from accessd.shell.scheduler import VirtualClock

TZ = ZoneInfo("Europe/Berlin")
CARD = Credential.card("0318601", 26)
ANN = Holder(id=1, first_name="Ann", has_card=True)


def at(*args) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()


class Lookup:
    def find(self, credential):
        return ANN

    def get(self, holder_id):
        return ANN

    def pin_matches(self, holder_id, pin):
        return False


def policy(mode="hard", **kw):
    return AccessPolicy(PolicySettings(passback=mode, directions=(("in1", "in"), ("out1", "out")), **kw), Lookup(), TZ)


def go(p, reader, wall):
    actions = p.handle(Present(credential=CARD, reader=reader), now=0.0, wall=wall)
    (d,) = [a for a in actions if isinstance(a, Decided)]
    return d.decision.reason, actions


def test_hard_denies_a_second_entry_until_an_exit():
    p = policy()
    reason, actions = go(p, "in1", at(2026, 11, 30, 8, 0))
    assert reason is None
    assert RecordPassage(holder_id=1, direction="in", at=at(2026, 11, 30, 8, 0)) in actions
    assert go(p, "in1", at(2026, 11, 30, 8, 1))[0] == "passback"
    assert go(p, "other", at(2026, 11, 30, 8, 1))[0] is None  # a reader with no direction does not count
    assert go(p, "out1", at(2026, 11, 30, 12, 0))[0] is None
    assert go(p, "out1", at(2026, 11, 30, 12, 1))[0] == "passback"
    assert go(p, "in1", at(2026, 11, 30, 13, 0))[0] is None


def test_soft_grants_and_alarms():
    p = policy("soft")
    go(p, "in1", at(2026, 11, 30, 8, 0))
    reason, actions = go(p, "in1", at(2026, 11, 30, 8, 1))
    assert reason is None
    (alarm,) = [a for a in actions if isinstance(a, Publish) and a.type == "alarm.passback"]
    assert alarm.fields == {"holder": ANN.brief(), "reader": "in1", "direction": "in"}


def test_timed_and_daily_resets():
    p = policy(passback_reset=3600)
    go(p, "in1", at(2026, 11, 30, 8, 0))
    assert go(p, "in1", at(2026, 11, 30, 8, 59, 59))[0] == "passback"
    assert go(p, "in1", at(2026, 11, 30, 9, 0))[0] is None  # an hour later: reset
    p = policy(passback_daily=3 * 3600)  # 03:00 device time
    go(p, "in1", at(2026, 11, 30, 20, 0))
    assert go(p, "in1", at(2026, 12, 1, 2, 59, 59))[0] == "passback"
    assert go(p, "in1", at(2026, 12, 1, 3, 0))[0] is None


def test_off_by_default():
    p = AccessPolicy(PolicySettings(directions=(("in1", "in"),)), Lookup(), TZ)
    go(p, "in1", at(2026, 11, 30, 8, 0))
    reason, actions = go(p, "in1", at(2026, 11, 30, 8, 1))
    assert reason is None and not [a for a in actions if isinstance(a, RecordPassage)]


def test_state_survives_a_restart(tmp_path):
    text = (f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
            f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n[access]\npassback = "hard"\n'
            f'[access.directions]\nin1 = "in"\nout1 = "out"\n')
    wall = at(2026, 11, 30, 8, 0)

    async def once(first: bool):
        d = Daemon(parse_config(tomllib.loads(text)), clock=VirtualClock(), virtual_time=True, wall=lambda: wall)
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        try:
            if first:
                d.access.store.add(first_name="Ann", card="0318601", bit_length=26)
            out = d.access.present(CARD, "in1")
            return (await out if isinstance(out, asyncio.Future) else out).reason
        finally:
            d.request_stop()
            await task

    assert asyncio.run(once(True)) is None
    assert asyncio.run(once(False)) == "passback"
