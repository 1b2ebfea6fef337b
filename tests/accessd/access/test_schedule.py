"""Schedules: weekly and dated intervals, exceptions, holidays, DST, next_change."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accessd.access.schedule import HolidayList, Schedule, ScheduleError, transitions

FUZZ_EXAMPLES = int(os.environ.get("ACCESSD_FUZZ_EXAMPLES", "2000"))  # as tests/conftest.py

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(tz, *args, fold=0) -> float:
    return datetime(*args, tzinfo=tz, fold=fold).timestamp()


def local(tz, ts: float) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat()


def changes(s: Schedule, ts: float, n: int) -> list[str]:
    out = []
    for _ in range(n):
        ts = s.next_change(ts)
        out.append(local(s.tz, ts))
    return out


def test_office_hours_weekdays():
    s = Schedule.parse("office", BERLIN, weekly=["Mon-Fri 07:00-19:00"])
    assert s.active(at(BERLIN, 2026, 11, 23, 7, 0))  # a Monday
    assert not s.active(at(BERLIN, 2026, 11, 23, 6, 59, 59))
    assert s.active(at(BERLIN, 2026, 11, 23, 18, 59, 59, 999999))
    assert not s.active(at(BERLIN, 2026, 11, 23, 19, 0))
    assert not s.active(at(BERLIN, 2026, 11, 28, 12, 0))  # Saturday
    assert changes(s, at(BERLIN, 2026, 11, 27, 12, 0), 3) == [
        "2026-11-27T19:00:00+01:00", "2026-11-30T07:00:00+01:00", "2026-11-30T19:00:00+01:00"]


def test_seconds_and_fractions():
    s = Schedule.parse("s", BERLIN, weekly=["daily 07:00:30-07:00:45"])
    t = at(BERLIN, 2026, 11, 23, 7, 0, 10) + 0.25
    assert s.next_change(t) == at(BERLIN, 2026, 11, 23, 7, 0, 30)
    assert s.next_change(at(BERLIN, 2026, 11, 23, 7, 0, 30)) == at(BERLIN, 2026, 11, 23, 7, 0, 45)


def test_interval_across_midnight():
    s = Schedule.parse("night", BERLIN, weekly=["Fri 22:00-06:00"])
    assert s.active(at(BERLIN, 2026, 11, 27, 22, 0))
    assert s.active(at(BERLIN, 2026, 11, 28, 5, 59, 59))  # Saturday morning: Friday's interval
    assert not s.active(at(BERLIN, 2026, 11, 28, 6, 0))
    assert not s.active(at(BERLIN, 2026, 11, 27, 5, 0))  # Friday morning: Thursday has none
    assert changes(s, at(BERLIN, 2026, 11, 27, 12, 0), 2) == ["2026-11-27T22:00:00+01:00", "2026-11-28T06:00:00+01:00"]
    whole = Schedule.parse("w", BERLIN, weekly=["Sun-Mon 00:00-24:00"])  # wraps the week
    assert whole.active(at(BERLIN, 2026, 11, 29, 0, 0)) and whole.active(at(BERLIN, 2026, 11, 30, 23, 59, 59))
    assert changes(whole, at(BERLIN, 2026, 11, 29, 12, 0), 1) == ["2026-12-01T00:00:00+01:00"]


def test_holiday_on_a_weekday():
    public = HolidayList.parse("public", ["12-25", "12-26", "2026-04-03"])
    s = Schedule.parse("staff", BERLIN, weekly=["Mon-Fri 07:00-19:00"], holidays=[public])
    assert not s.active(at(BERLIN, 2026, 12, 25, 10, 0))  # Friday, Christmas
    assert not s.active(at(BERLIN, 2027, 12, 27 - 2, 10, 0))  # yearly
    assert not s.active(at(BERLIN, 2026, 4, 3, 10, 0))  # Good Friday 2026
    assert s.active(at(BERLIN, 2027, 3, 26, 10, 0))  # a Friday in 2027, not a holiday
    assert changes(s, at(BERLIN, 2026, 12, 24, 12, 0), 2) == ["2026-12-24T19:00:00+01:00", "2026-12-28T07:00:00+01:00"]


def test_holiday_blanks_the_overnight_part():
    public = HolidayList.parse("public", ["2026-12-25"])
    s = Schedule.parse("night", BERLIN, weekly=["Thu 22:00-06:00"], holidays=[public])
    assert s.active(at(BERLIN, 2026, 12, 24, 23, 59, 59))  # Thursday 24th is no holiday
    assert s.next_change(at(BERLIN, 2026, 12, 24, 23, 0)) == at(BERLIN, 2026, 12, 25, 0, 0)


def test_dates_exceptions_and_bounds():
    s = Schedule.parse("s", BERLIN, weekly=["Mon-Fri 08:00-17:00"], dates=["2026-12-24 08:00-12:00", "2026-11-28"],
                       exceptions=["2026-12-22..2026-12-23", "12-31"], first="2026-11-01", last="2027-06-30")
    assert s.active(at(BERLIN, 2026, 11, 28, 3, 0))  # a Saturday given whole
    assert not s.active(at(BERLIN, 2026, 12, 22, 10, 0)) and not s.active(at(BERLIN, 2026, 12, 23, 10, 0))
    assert s.active(at(BERLIN, 2026, 12, 24, 10, 0))  # Thursday: weekly and dated
    assert not s.active(at(BERLIN, 2026, 12, 31, 10, 0))
    assert not s.active(at(BERLIN, 2026, 10, 30, 10, 0)) and not s.active(at(BERLIN, 2027, 7, 1, 10, 0))
    assert s.active(at(BERLIN, 2027, 6, 30, 16, 59, 59))
    assert s.next_change(at(BERLIN, 2027, 6, 30, 12, 0)) == at(BERLIN, 2027, 6, 30, 17, 0)
    assert s.next_change(at(BERLIN, 2027, 6, 30, 18, 0)) is None  # never again


def test_yearly_range_wraps_the_year():
    s = Schedule.parse("s", BERLIN, weekly=["daily 00:00-24:00"], exceptions=["12-30..01-02"])
    assert not s.active(at(BERLIN, 2026, 12, 30, 0, 0)) and not s.active(at(BERLIN, 2027, 1, 2, 23, 0))
    assert s.active(at(BERLIN, 2027, 1, 3, 0, 0)) and s.active(at(BERLIN, 2026, 12, 29, 23, 59, 59))
    assert changes(s, at(BERLIN, 2026, 12, 1, 0, 0), 2) == ["2026-12-30T00:00:00+01:00", "2027-01-03T00:00:00+01:00"]


def test_dst_forward_berlin():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:00-03:00 is never shown
    s = Schedule.parse("s", BERLIN, weekly=["Sun 02:30-03:30", "Sun 07:00-08:00"])
    assert changes(s, at(BERLIN, 2026, 3, 29, 0, 0), 4) == [
        "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00",
        "2026-03-29T07:00:00+02:00", "2026-03-29T08:00:00+02:00"]
    assert s.next_change(at(BERLIN, 2026, 3, 29, 0, 0)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    assert s.active(at(BERLIN, 2026, 3, 29, 3, 0)) and not s.active(at(BERLIN, 2026, 3, 29, 1, 59, 59))
    # the day is 23 hours: 07:00 is 6 hours after midnight
    assert at(BERLIN, 2026, 3, 29, 7, 0) - at(BERLIN, 2026, 3, 29, 0, 0) == 6 * 3600
    # an interval wholly in the gap never runs
    gap = Schedule.parse("g", BERLIN, weekly=["Sun 02:10-02:50"])
    assert changes(gap, at(BERLIN, 2026, 3, 28, 12, 0), 1) == ["2026-04-05T02:10:00+02:00"]


def test_dst_back_berlin():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 is shown twice
    s = Schedule.parse("s", BERLIN, weekly=["Sun 02:15-02:45"])  # one span through both passes
    assert changes(s, at(BERLIN, 2026, 10, 25, 0, 0), 2) == ["2026-10-25T02:15:00+02:00", "2026-10-25T02:45:00+01:00"]
    assert s.active(at(BERLIN, 2026, 10, 25, 2, 10, fold=1))  # the second 02:10: still on, no flapping
    assert s.next_change(at(BERLIN, 2026, 10, 25, 2, 50, fold=0)) == at(BERLIN, 2026, 10, 25, 2, 45, fold=1)
    ends = Schedule.parse("e", BERLIN, weekly=["Sun 01:00-02:30"])
    assert changes(ends, at(BERLIN, 2026, 10, 25, 0, 0), 2) == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:30:00+01:00"]
    later = Schedule.parse("l", BERLIN, weekly=["Sun 02:30-04:00"])
    assert changes(later, at(BERLIN, 2026, 10, 25, 0, 0), 2) == ["2026-10-25T02:30:00+02:00", "2026-10-25T04:00:00+01:00"]
    on = later.next_change(at(BERLIN, 2026, 10, 25, 0, 0))
    assert later.next_change(on) - on == 90 * 60 + 3600  # the interval and the repeated hour
    # an end at the first second of the repeated hour: the clock never shows 01:xx again
    two = Schedule.parse("t", BERLIN, weekly=["Sun 01:00-02:00"])
    assert changes(two, at(BERLIN, 2026, 10, 25, 0, 0), 2) == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00"]
    # the day is 25 hours: an all-day schedule holds for all of them
    day = Schedule.parse("d", BERLIN, weekly=["Sun 00:00-24:00"])
    on = day.next_change(at(BERLIN, 2026, 10, 24, 12, 0))
    assert day.next_change(on) - on == 25 * 3600


def test_dst_new_york_both_ways():
    s = Schedule.parse("s", NEW_YORK, weekly=["daily 01:30-02:30"])
    # 2026-03-08: 02:00 EST → 03:00 EDT: 02:30 is skipped, the span ends at the change
    assert changes(s, at(NEW_YORK, 2026, 3, 8, 0, 0), 2) == ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00"]
    # 2026-11-01: 02:00 EDT → 01:00 EST: on from the first 01:30 to 02:30 EST
    assert changes(s, at(NEW_YORK, 2026, 11, 1, 0, 0), 2) == ["2026-11-01T01:30:00-04:00", "2026-11-01T02:30:00-05:00"]


def test_transitions_to_the_second():
    found = transitions(BERLIN, at(BERLIN, 2026, 10, 25, 0, 0), at(BERLIN, 2026, 10, 26, 0, 0))
    assert found == [datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()]
    assert transitions(BERLIN, at(BERLIN, 2026, 10, 26, 0, 0), at(BERLIN, 2026, 10, 27, 0, 0)) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weekly": ["Mon-Fry 07:00-19:00"]}, "office: unknown day 'Mon-Fry' (expected Mon … Sun, a range Mon-Fri or daily) in 'Mon-Fry 07:00-19:00'"),
    ({"weekly": ["Mon 07:00-25:00"]}, "office: no such time 25:00 in 'Mon 07:00-25:00'"),
    ({"weekly": ["Mon 07:00"]}, "office: expected a time interval HH:MM-HH:MM, got '07:00' in 'Mon 07:00'"),
    ({"weekly": ["Mon 07:00-07:00"]}, "office: an interval must not end where it starts"),
    ({"weekly": ["07:00-19:00"]}, "office: expected DAYS HH:MM-HH:MM"),
    ({"dates": ["2026-02-30"]}, "office: no such date '2026-02-30' in '2026-02-30'"),
    ({"exceptions": ["2026-12-31..2026-12-01"]}, "office: the range ends before it starts"),
    ({"exceptions": ["2026-12-24..12-26"]}, "office: a range is either two dates with years or two without"),
    ({"first": "12-01"}, "office: valid_from/valid_to is one date YYYY-MM-DD"),
])
def test_parse_errors_name_the_schedule_and_text(kwargs, message):
    with pytest.raises(ScheduleError) as info:
        Schedule.parse("office", BERLIN, **kwargs)
    assert str(info.value).startswith(message)
    assert info.value.name == "office"


# ------------------------------------------------------------------------ the property

ZONES = [ZoneInfo(z) for z in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC")]
DAYNAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# instants near the 2026 DST changes of these zones, and anywhere in the year
NEAR = [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC), datetime(2026, 3, 8, 7, tzinfo=UTC),
        datetime(2026, 11, 1, 6, tzinfo=UTC), datetime(2026, 4, 4, 15, tzinfo=UTC), datetime(2026, 10, 3, 15, tzinfo=UTC)]


@st.composite
def schedules(draw):
    """(Schedule, reference data): intervals on whole minutes, some overnight, some holidays."""
    tz = draw(st.sampled_from(ZONES))
    spans = []
    texts = []
    for _ in range(draw(st.integers(0, 4))):
        days = sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=7)))
        start = draw(st.integers(0, 24 * 60 - 1))
        end = draw(st.integers(0, 24 * 60).filter(lambda e, s=start: e != s))
        texts.append(f"{','.join(DAYNAMES[d] for d in days)} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
        spans.append((frozenset(days), start * 60, (end if end > start else end + 24 * 60) * 60))
    off = draw(st.sets(st.dates(date(2026, 2, 20), date(2026, 12, 10)), max_size=6))
    holidays = HolidayList.parse("h", [d.isoformat() for d in sorted(off)])
    return Schedule.parse("p", tz, weekly=texts, holidays=[holidays]), (tz, spans, off)


def _walls(tz, instants):
    return [datetime.fromtimestamp(t, tz).replace(tzinfo=None) for t in instants]


def reference_state(ref, wall, seen_max, to_come_min) -> bool:
    """Every interval as the span its definition gives, checked by brute force: the span
    has begun once the clock has shown its start (``seen_max``: the latest time the clock
    has shown), and has not ended while the clock will still show a time before its end
    (``to_come_min``).  Blanked days by the clock's date now."""
    tz, spans, off = ref
    if wall.date() in off:
        return False
    for days, start, end in spans:
        for k in (-2, -1, 0, 1):
            d = wall.date() + timedelta(days=k)
            if d.weekday() in days:
                midnight = datetime(d.year, d.month, d.day)
                if seen_max >= midnight + timedelta(seconds=start) and to_come_min < midnight + timedelta(seconds=end):
                    return True
    return False


def reference_active(ref, ts: float) -> bool:
    tz = ref[0]
    minute = int(ts) // 60 * 60
    past = _walls(tz, [ts, *range(minute, minute - 3 * 3600, -60)])
    future = _walls(tz, [ts, *range(minute + 60, minute + 3 * 3600, 60)])
    return reference_state(ref, past[0], max(past), min(future))


def reference_next_change(ref, ts: float, days: int) -> float | None:
    """Minute by minute (every change in these schedules is on a whole minute)."""
    tz = ref[0]
    first = (int(ts) // 60 + 1) * 60
    grid = list(range(first - 3 * 3600, first + days * 86400 + 3 * 3600, 60))
    walls = _walls(tz, grid)
    seen, to_come = [], [None] * len(walls)
    for w in walls:
        seen.append(max(seen[-1], w) if seen else w)
    low = walls[-1]
    for i in range(len(walls) - 1, -1, -1):
        low = min(low, walls[i])
        to_come[i] = low
    now = reference_active(ref, ts)
    for i in range(180, len(grid) - 180):
        if reference_state(ref, walls[i], seen[i], to_come[i]) != now:
            return float(grid[i])
    return None


instants = st.one_of(
    st.builds(lambda base, s: base.timestamp() + s, st.sampled_from(NEAR), st.floats(-3 * 86400, 3 * 86400)),
    st.floats(datetime(2026, 3, 1, tzinfo=UTC).timestamp(), datetime(2026, 12, 1, tzinfo=UTC).timestamp()),
)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), instants)
def test_active_matches_brute_force(sched, ts):
    schedule, ref = sched
    assert schedule.active(ts) == reference_active(ref, ts)


@pytest.mark.fuzz
@settings(max_examples=max(20, FUZZ_EXAMPLES // 20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), instants)
def test_next_change_matches_brute_force(sched, ts):
    """Against the brute-force reference, two days ahead."""
    schedule, ref = sched
    expected = reference_next_change(ref, ts, 2)
    got = schedule.next_change(ts)
    if expected is None:
        assert got is None or got >= ts + 2 * 86400 - 60
    else:
        assert got == expected
