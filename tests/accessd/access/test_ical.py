"""iCalendar import: VEVENT with RRULE, EXDATE, all-day and floating events, across DST."""

from __future__ import annotations

import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from accessd.access.ical import IcalError, parse_ical
from accessd.access.schedule import HolidayList, Schedule
from accessd.config import parse_config
from accessd.errors import ConfigError

TZ = ZoneInfo("Europe/Berlin")

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//accessd tests//EN
BEGIN:VEVENT
UID:cleaning@example
SUMMARY:Cleaning
DTSTART;TZID=Europe/Berlin:20261019T200000
DTEND;TZID=Europe/Berlin:20261019T213000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE
EXDATE;TZID=Europe/Berlin:20261104T200000
END:VEVENT
BEGIN:VEVENT
UID:open-day@example
SUMMARY:Open day
DTSTART;VALUE=DATE:20261128
DTEND;VALUE=DATE:20261129
END:VEVENT
BEGIN:VEVENT
UID:floating@example
SUMMARY:Floating
DTSTART:20261201T090000
DURATION:PT2H
END:VEVENT
END:VCALENDAR
"""


def at(*args, fold=0) -> float:
    return datetime(*args, tzinfo=TZ, fold=fold).timestamp()


def sched(**kw) -> Schedule:
    return Schedule.parse("cleaning", TZ, events=parse_ical(ICS, TZ), **kw)


def test_weekly_rrule_keeps_its_wall_time_across_dst():
    s = sched()
    assert s.active(at(2026, 10, 21, 20, 0))  # Wednesday, CEST
    assert not s.active(at(2026, 10, 21, 21, 30))
    assert s.active(at(2026, 10, 26, 20, 0))  # Monday after the change to CET: still 20:00 local
    assert not s.active(at(2026, 10, 26, 19, 59, 59))
    assert s.next_change(at(2026, 10, 26, 12, 0)) == at(2026, 10, 26, 20, 0)
    assert s.next_change(at(2026, 10, 26, 20, 0)) == at(2026, 10, 26, 21, 30)


def test_exdate_all_day_and_floating():
    s = sched()
    assert not s.active(at(2026, 11, 4, 20, 30))  # EXDATE
    assert s.active(at(2026, 11, 2, 20, 30))
    assert s.active(at(2026, 11, 28, 0, 0)) and s.active(at(2026, 11, 28, 23, 59, 59))  # all day
    assert not s.active(at(2026, 11, 29, 0, 0))
    assert s.active(at(2026, 12, 1, 9, 0)) and not s.active(at(2026, 12, 1, 11, 0))  # floating: device time
    assert s.next_change(at(2026, 11, 27, 22, 0)) == at(2026, 11, 28, 0, 0)


def test_holidays_and_weekly_combine_with_events():
    s = sched(weekly=["Fri 08:00-09:00"], holidays=[HolidayList.parse("h", ["2026-10-21"])])
    assert not s.active(at(2026, 10, 21, 20, 0))  # a holiday blanks the event too
    assert s.active(at(2026, 10, 23, 8, 30))
    assert s.next_change(at(2026, 10, 21, 12, 0)) == at(2026, 10, 23, 8, 0)


def test_errors():
    with pytest.raises(IcalError, match="no VEVENT"):
        parse_ical("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", TZ)
    with pytest.raises(IcalError, match="no DTSTART"):
        parse_ical("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n", TZ)


def test_config_reads_the_file(tmp_path):
    path = tmp_path / "cleaning.ics"
    path.write_text(ICS)
    cfg = parse_config(tomllib.loads(f'[schedules.cleaning]\nical = "{path}"\n'))
    assert cfg.schedule_book(TZ).schedules["cleaning"].active(at(2026, 10, 21, 20, 0))
    with pytest.raises(ConfigError, match=r"schedules.cleaning.ical: cannot read"):
        parse_config(tomllib.loads(f'[schedules.cleaning]\nical = "{tmp_path}/missing.ics"\n'))
    bad = tmp_path / "bad.ics"
    bad.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n")
    with pytest.raises(ConfigError, match=r"schedules.cleaning.ical: .*bad.ics: the calendar has no VEVENT"):
        parse_config(tomllib.loads(f'[schedules.cleaning]\nical = "{bad}"\n'))
