"""Access by schedule: holders and groups limited in time, through the pure policy, the
config, the entry list and an in-process daemon in virtual time."""

from __future__ import annotations

import asyncio
import os
import tomllib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from accessd.protocols.credential import Credential
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accessd.access.decision import REASONS, Holder
from accessd.access.policy import AccessPolicy, Decided, PolicySettings, Present, Publish, TakeUse
from accessd.access.schedule import Group, HolidayList, Schedule, ScheduleBook
from accessd.config import parse_config
from accessd.errors import ConfigError
from accessd.shell.daemon import Daemon
from accessd.shell.scheduler import VirtualClock
from accessd.store.entrylist import EntryList, InvalidField

TZ = ZoneInfo("Europe/Berlin")
CARD = Credential.card("0318601", 26)
PUBLIC = HolidayList.parse("public", ["12-25", "12-26", "01-01"])
BOOK = ScheduleBook(
    {"office": Schedule.parse("office", TZ, weekly=["Mon-Fri 07:00-19:00"], holidays=[PUBLIC]),
     "evening": Schedule.parse("evening", TZ, weekly=["Mon-Fri 18:00-23:00"]),
     "night": Schedule.parse("night", TZ, weekly=["daily 22:00-06:00"])},
    {"cleaners": Group(name="cleaners", schedules=("evening", "night")),
     "staff": Group(name="staff", schedules=("office",)),
     "anytime": Group(name="anytime")},
)


def at(*args) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()


class Lookup:
    def __init__(self, holder):
        self.holder = holder

    def find(self, credential):
        return self.holder

    def get(self, holder_id):
        return self.holder

    def pin_matches(self, holder_id, pin):
        return False


def decide(holder: Holder, wall: float):
    p = AccessPolicy(PolicySettings(), Lookup(holder), TZ, book=BOOK)
    actions = p.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=wall)
    (d,) = [a for a in actions if isinstance(a, Decided)]
    return d.decision, actions


def holder(**kw) -> Holder:
    return Holder(id=1, first_name="Ann", has_card=True, **kw)


def test_outside_schedule_is_a_reason():
    assert "outside_schedule" in REASONS


@pytest.mark.parametrize(("kw", "wall", "reason"), [
    ({}, at(2026, 11, 29, 3, 0), None),  # no schedule: any time
    ({"schedule": "office"}, at(2026, 11, 30, 7, 0), None),  # Monday 07:00:00
    ({"schedule": "office"}, at(2026, 11, 30, 6, 59, 59), "outside_schedule"),
    ({"schedule": "office"}, at(2026, 12, 25, 10, 0), "outside_schedule"),  # Friday, a holiday
    ({"schedule": "office"}, at(2026, 11, 28, 10, 0), "outside_schedule"),  # Saturday
    ({"group": "cleaners"}, at(2026, 11, 30, 18, 30), None),  # evening
    ({"group": "cleaners"}, at(2026, 12, 5, 4, 0), None),  # Saturday 04:00: Friday night's interval
    ({"group": "cleaners"}, at(2026, 11, 30, 12, 0), "outside_schedule"),
    ({"group": "anytime"}, at(2026, 11, 30, 12, 0), None),  # a group with no schedules
    ({"group": "cleaners", "schedule": "office"}, at(2026, 11, 30, 12, 0), None),  # the holder's own decides
    ({"group": "cleaners", "schedule": "office"}, at(2026, 11, 30, 20, 0), "outside_schedule"),
    ({"schedule": "gone"}, at(2026, 11, 30, 12, 0), "outside_schedule"),  # not configured: fail closed
    ({"group": "gone"}, at(2026, 11, 30, 12, 0), "outside_schedule"),
])
def test_holder_and_group_schedules(kw, wall, reason):
    decision, actions = decide(holder(**kw), wall)
    assert decision.reason == reason
    assert decision.granted == (reason is None)
    if reason:
        (denied,) = [a for a in actions if isinstance(a, Publish) and a.type == "access.denied"]
        assert denied.fields["reason"] == "outside_schedule"


def test_order_suspended_and_expired_first_no_use_taken_outside():
    assert decide(holder(schedule="office", suspended=True), at(2026, 11, 28, 10, 0))[0].reason == "suspended"
    assert decide(holder(schedule="office", valid_to="2026-01-01"), at(2026, 11, 28, 10, 0))[0].reason == "expired"
    decision, actions = decide(holder(schedule="office", uses=3), at(2026, 11, 28, 10, 0))
    assert decision.reason == "outside_schedule" and decision.remaining_uses == 3
    assert not [a for a in actions if isinstance(a, TakeUse)]
    p = AccessPolicy(PolicySettings(), Lookup(holder(schedule="office", uses=3)), TZ, book=BOOK)
    actions = p.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=at(2026, 11, 30, 10, 0))
    assert [a for a in actions if isinstance(a, TakeUse)]  # inside: the use is taken, then granted


def test_dry_run_fork_keeps_the_book():
    p = AccessPolicy(PolicySettings(), Lookup(holder(schedule="office")), TZ, book=BOOK)
    f = p.fork()
    actions = f.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=at(2026, 11, 28, 10, 0))
    (d,) = [a for a in actions if isinstance(a, Decided)]
    assert d.decision.reason == "outside_schedule"


# ------------------------------------------------------------------------ config

CONFIG = """
[holidays.public]
dates = ["12-25", "12-26", "2026-04-03"]
[schedules.office]
weekly = ["Mon-Fri 07:00-19:00"]
holidays = ["public"]
[schedules.evening]
weekly = ["Mon-Fri 18:00-23:00"]
exceptions = ["2026-12-24..2026-12-31"]
valid_from = "2026-01-01"
[groups.cleaners]
schedules = ["evening"]
[groups.responders]
responder = true
"""


def test_config_builds_the_book():
    cfg = parse_config(tomllib.loads(CONFIG))
    book = cfg.schedule_book(TZ)
    assert sorted(book.schedules) == ["evening", "office"]
    assert book.groups["cleaners"].schedules == ("evening",)
    assert book.responder("responders") and not book.responder("cleaners") and not book.responder(None)
    assert not book.schedules["office"].active(at(2026, 4, 3, 10, 0))  # Good Friday


@pytest.mark.parametrize(("text", "message"), [
    ('[schedules.office]\nweekly = ["Mon-Fry 07:00-19:00"]',
     "schedules.office.weekly: unknown day 'Mon-Fry' (expected Mon … Sun, a range Mon-Fri or daily) in 'Mon-Fry 07:00-19:00'"),
    ('[schedules.office]\nexceptions = ["2026-13-01"]', "schedules.office.exceptions: no such date '2026-13-01'"),
    ('[schedules.office]\nholidays = ["public"]', "schedules.office.holidays[0]: no [holidays.public] table"),
    ('[groups.cleaners]\nschedules = ["evening"]', "groups.cleaners.schedules[0]: no [schedules.evening] table"),
    ('[holidays.public]\ndates = ["12-32"]', "holidays.public.dates: no such date '12-32'"),
    ('[schedules.office]\nweekly = "Mon-Fri 07:00-19:00"', "schedules.office.weekly: expected a list"),
    ('[schedules.office]\nhourly = []', "schedules.office.hourly: unknown key"),
    ('[schedules.office]\nvalid_to = "2026-01-01"\nvalid_from = "2026-02-01"', "schedules.office: valid_to is before valid_from"),
])
def test_config_errors_name_the_key_and_text(text, message):
    with pytest.raises(ConfigError) as err:
        parse_config(tomllib.loads(text))
    assert str(err.value).startswith(message)


# ------------------------------------------------------------------------ entry list


def test_the_entry_list_keeps_schedule_and_group(tmp_path):
    s = EntryList(tmp_path)
    h = s.add(first_name="Cleo", card="1", bit_length=26, group="cleaners")
    assert (h.schedule, h.group) == (None, "cleaners")
    h = s.update("Cleo", schedule="office")
    assert (h.schedule, h.group) == ("office", "cleaners")
    assert s.describe(h)["schedule"] == "office" and s.describe(h)["group"] == "cleaners"
    h = s.update("Cleo", group="")
    assert (h.schedule, h.group) == ("office", None)
    assert s.find(Credential.card("1", 26)).schedule == "office"
    with pytest.raises(InvalidField, match="schedule"):
        s.add(first_name="Bad", schedule="two words")
    s.import_csv(["first_name,card,bit_length,schedule,group\n", "Ivy,2,26,office,cleaners\n"])
    ivy = s.get("Ivy")
    assert (ivy.schedule, ivy.group) == ("office", "cleaners")
    s.close()


# ------------------------------------------------------------------------ in a daemon, virtual time


def test_in_a_daemon_the_holder_is_denied_outside_and_granted_inside(tmp_path):
    text = (f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
            f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n{CONFIG}')
    wall = [at(2026, 11, 30, 6, 59, 59)]  # Monday, one second before office hours

    async def main():
        d = Daemon(parse_config(tomllib.loads(text)), clock=VirtualClock(), virtual_time=True, wall=lambda: wall[0])
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        try:
            d.access.store.add(first_name="Ann", card="0318601", bit_length=26, schedule="office")
            out = []
            for step in (0, 1, 12 * 3600 - 1, 1):  # 06:59:59, 07:00:00, 18:59:59, 19:00:00
                wall[0] += step
                decision = d.access.present(CARD, "r1")
                if isinstance(decision, asyncio.Future):
                    decision = await decision
                out.append(decision.reason)
            # holders add names only configured schedules and groups
            from accessd.errors import CommandError

            with pytest.raises(CommandError, match="schedule: expected one of evening, office, got 'gym'"):
                d.access.cmd_add({"first_name": "Gus", "schedule": "gym"})
            with pytest.raises(CommandError, match="group: expected one of cleaners, responders"):
                d.access.cmd_add({"first_name": "Gus", "group": "gym"})
            return out
        finally:
            d.request_stop()
            await task

    assert asyncio.run(main()) == ["outside_schedule", None, None, "outside_schedule"]


# ------------------------------------------------------------------------ the property: decisions

FUZZ_EXAMPLES = int(os.environ.get("ACCESSD_FUZZ_EXAMPLES", "2000"))  # as tests/conftest.py
DAYNAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@st.composite
def sites(draw):
    """A book of 1–4 schedules (hour-aligned weekly intervals) and 0–3 groups, and a holder."""
    names = [f"s{i}" for i in range(draw(st.integers(1, 4)))]
    spans = {}
    schedules = {}
    for n in names:
        items = []
        for _ in range(draw(st.integers(0, 3))):
            day = draw(st.integers(0, 6))
            start, end = draw(st.integers(0, 23)), draw(st.integers(1, 24))
            if end == start:
                continue
            items.append((day, start, end if end > start else end + 24))
        spans[n] = items
        schedules[n] = Schedule.parse(n, TZ, weekly=[f"{DAYNAMES[d]} {a:02d}:00-{b % 24 if b != 24 else 24:02d}:00"
                                                     for d, a, b in items])
    groups = {f"g{i}": Group(name=f"g{i}", schedules=tuple(draw(st.lists(st.sampled_from(names), max_size=3))))
              for i in range(draw(st.integers(0, 3)))}
    schedule = draw(st.one_of(st.none(), st.sampled_from(names), st.just("missing")))
    group = draw(st.one_of(st.none(), st.sampled_from(sorted(groups) or ["none"]), st.just("missing")))
    return ScheduleBook(schedules, groups), spans, schedule, group


def reference_allows(spans, groups, schedule, group, ts) -> bool:
    """Every interval of every relevant schedule checked on the wall clock (no DST near these instants)."""
    wall = datetime.fromtimestamp(ts, TZ).replace(tzinfo=None)

    def active(name):
        for day, start, end in spans.get(name, []):
            for k in (0, 1):
                d = wall.date() - timedelta(days=k)
                if d.weekday() == day:
                    base = datetime(d.year, d.month, d.day)
                    if base + timedelta(hours=start) <= wall < base + timedelta(hours=end):
                        return True
        return False

    if schedule is not None:
        return schedule in spans and active(schedule)
    if group is not None:
        g = groups.get(group)
        return g is not None and (not g.schedules or any(active(n) for n in g.schedules))
    return True


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(), st.floats(at(2026, 5, 1), at(2026, 9, 1)))
def test_decisions_match_brute_force(site, ts):
    book, spans, schedule, group = site
    h = Holder(id=1, first_name="Ann", has_card=True, schedule=schedule, group=group)
    p = AccessPolicy(PolicySettings(), Lookup(h), TZ, book=book)
    actions = p.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=ts)
    (d,) = [a for a in actions if isinstance(a, Decided)]
    allowed = reference_allows(spans, book.groups, schedule, group, ts)
    assert d.decision.granted == allowed
    assert d.decision.reason == (None if allowed else "outside_schedule")
