"""Schedules: when a holder, a group or a door mode is in force.  Pure: no clock, no I/O.

A :class:`Schedule` is data parsed from the config's texts and evaluated in the device's
time zone with its DST rules.  Instants are Unix seconds (the policy's ``wall``):

* ``active(ts)`` — is the schedule in force at ``ts``;
* ``next_change(ts)`` — the first instant after ``ts`` at which ``active`` differs
  (exact to the second, across DST changes in both directions), or None when it does
  not change within :data:`HORIZON_DAYS`.

The texts::

    weekly = ["Mon-Fri 07:00-19:00", "Sat,Sun 10:00-12:30", "Fri 22:00-06:00"]
    dates = ["2026-12-24 08:00-12:00", "2026-07-01..2026-07-31"]
    exceptions = ["2026-12-31", "12-24..12-26"]
    holidays = ["public"]               # [holidays.NAME] lists
    valid_from = "2026-01-01"           # optional bounds (dates, inclusive)
    valid_to = "2026-12-31"

Weekly intervals and dated intervals are in *wall-clock* time: ``07:00-19:00`` is in force
while the device's clock shows 07:00:00 … 18:59:59.  An end at or before the start
crosses midnight (``22:00-06:00`` runs into the next day); ``24:00`` is the end of the
day.  A dated entry without times is the whole day.  Across a DST change an interval is
one unbroken span: it begins the first time the clock shows its start and ends when the
clock has shown its end for the last time.  So when clocks go back, ``02:30-04:00`` holds
through both passes of 02:30–03:00 (an hour longer), and ``01:00-02:30`` holds until the
second 02:30; when they go forward, a start or end the clock skips is the instant of the
change (``02:30-03:30`` begins at 03:00; an interval wholly inside the gap never runs).

``exceptions`` and holiday lists blank whole calendar days (00:00–24:00 of the date, also the
part of an overnight interval that runs into it).  A date is ``YYYY-MM-DD`` (that day),
``MM-DD`` (every year) or a range ``A..B`` of either kind (a yearly range may wrap the
year: ``12-30..01-02``).  ``valid_from``/``valid_to`` bound the schedule to whole days.

A :class:`ScheduleBook` holds a site's schedules and access groups, and answers whether
a holder may pass now (:meth:`ScheduleBook.allows`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

HORIZON_DAYS = 800  # next_change looks this far ahead
DAY = 86400
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2}))?"
_INTERVAL = re.compile(rf"{_TIME}\s*-\s*{_TIME}")


class ScheduleError(ValueError):
    """A schedule's text does not parse: ``name`` is the schedule, ``text`` the bad entry."""

    def __init__(self, name: str, text: str, detail: str) -> None:
        super().__init__(f"{name}: {detail} in {text!r}")
        self.name = name
        self.text = text
        self.detail = detail


# ------------------------------------------------------------------------ dates


@dataclass(frozen=True, slots=True)
class DateRule:
    """A day, a range of days, or the same every year (``year`` None: month/day only)."""

    first: tuple[int, int, int]  # (year or 0, month, day)
    last: tuple[int, int, int]
    yearly: bool

    def matches(self, d: date) -> bool:
        if not self.yearly:
            return self.first <= (d.year, d.month, d.day) <= self.last
        md = (0, d.month, d.day)
        if self.first <= self.last:
            return self.first <= md <= self.last
        return md >= self.first or md <= self.last  # wraps the new year


def _date_part(name: str, text: str, part: str) -> tuple[tuple[int, int, int], bool]:
    m = re.fullmatch(r"(?:(\d{4})-)?(\d{2})-(\d{2})", part)
    if not m:
        raise ScheduleError(name, text, f"expected a date YYYY-MM-DD or MM-DD, got {part!r}")
    year = int(m[1]) if m[1] else None
    month, day = int(m[2]), int(m[3])
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: 02-29 is a yearly date
    except ValueError:
        raise ScheduleError(name, text, f"no such date {part!r}") from None
    return (year or 0, month, day), year is None


def parse_dates(name: str, text: str) -> DateRule:
    """``2026-12-24``, ``12-25``, ``2026-12-24..2026-12-31`` or ``12-24..12-26``."""
    parts = [p.strip() for p in text.split("..")]
    if len(parts) > 2 or not all(parts):
        raise ScheduleError(name, text, "expected a date or a range FIRST..LAST")
    first, yearly = _date_part(name, text, parts[0])
    last, yearly_last = _date_part(name, text, parts[-1])
    if yearly != yearly_last:
        raise ScheduleError(name, text, "a range is either two dates with years or two without")
    if not yearly and last < first:
        raise ScheduleError(name, text, "the range ends before it starts")
    return DateRule(first, last, yearly)


@dataclass(frozen=True, slots=True)
class HolidayList:
    """``[holidays.NAME] dates = [...]``: days on which schedules that name the list are off."""

    name: str
    rules: tuple[DateRule, ...]

    @classmethod
    def parse(cls, name: str, dates: list[str]) -> HolidayList:
        return cls(name, tuple(parse_dates(name, t) for t in dates))

    def matches(self, d: date) -> bool:
        return any(r.matches(d) for r in self.rules)


# ------------------------------------------------------------------------ intervals


def _seconds(name: str, text: str, h: str, m: str, s: str | None) -> int:
    hh, mm, ss = int(h), int(m), int(s or 0)
    if mm > 59 or ss > 59 or hh > 24 or (hh == 24 and (mm or ss)):
        raise ScheduleError(name, text, f"no such time {h}:{m}{':' + s if s else ''}")
    return hh * 3600 + mm * 60 + ss


def parse_interval(name: str, text: str, part: str) -> tuple[int, int]:
    """``07:00-19:00`` → (start, end) in seconds of the start day; end > start, ≤ 2 days."""
    m = _INTERVAL.fullmatch(part.strip())
    if not m:
        raise ScheduleError(name, text, f"expected a time interval HH:MM-HH:MM, got {part.strip()!r}")
    start = _seconds(name, text, *m.groups()[:3])
    end = _seconds(name, text, *m.groups()[3:])
    if start == DAY:
        raise ScheduleError(name, text, "an interval cannot start at 24:00")
    if end == start:
        raise ScheduleError(name, text, "an interval must not end where it starts (00:00-24:00 is the whole day)")
    if end < start:
        end += DAY  # crosses midnight
    return start, end


def _days(name: str, text: str, spec: str) -> frozenset[int]:
    if spec.lower() in ("daily", "every day"):
        return frozenset(range(7))
    days: set[int] = set()
    for item in spec.split(","):
        ends = [p.strip().lower() for p in item.split("-")]
        if len(ends) > 2 or not all(len(e) >= 3 and any(full.startswith(e) for full in _DAYS) for e in ends):
            raise ScheduleError(name, text, f"unknown day {item.strip()!r} (expected Mon … Sun, a range Mon-Fri or daily)")
        a, b = (next(i for i, full in enumerate(_DAYS) if full.startswith(e)) for e in (ends[0], ends[-1]))
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


@dataclass(frozen=True, slots=True)
class Weekly:
    """``Mon-Fri 07:00-19:00``: the interval on each of ``days`` (0 = Monday)."""

    days: frozenset[int]
    start: int
    end: int

    @classmethod
    def parse(cls, name: str, text: str) -> Weekly:
        m = re.fullmatch(r"\s*([A-Za-z, -]+?)\s+(\d.*)", text)
        if not m:
            raise ScheduleError(name, text, "expected DAYS HH:MM-HH:MM (such as Mon-Fri 07:00-19:00)")
        return cls(_days(name, text, m[1]), *parse_interval(name, text, m[2]))


@dataclass(frozen=True, slots=True)
class Dated:
    """``2026-12-24 08:00-12:00`` or ``2026-07-01..2026-07-31`` (whole days)."""

    dates: DateRule
    start: int
    end: int

    @classmethod
    def parse(cls, name: str, text: str) -> Dated:
        head, _, rest = text.strip().partition(" ")
        start, end = parse_interval(name, text, rest) if rest.strip() else (0, DAY)
        return cls(parse_dates(name, head), start, end)


# ------------------------------------------------------------------------ the schedule


@dataclass(frozen=True, slots=True)
class Schedule:
    """See the module docstring.  Build with :meth:`parse`."""

    name: str
    tz: tzinfo
    weekly: tuple[Weekly, ...] = ()
    dated: tuple[Dated, ...] = ()
    exceptions: tuple[DateRule, ...] = ()
    holidays: tuple[HolidayList, ...] = ()
    first: date | None = None
    last: date | None = None
    events: tuple = ()  # iCalendar VEVENTs (accessd/access/ical.py), in force at their occurrences
    _tods: tuple[int, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def parse(cls, name: str, tz: tzinfo, *, weekly: list[str] = (), dates: list[str] = (),
              exceptions: list[str] = (), holidays: list[HolidayList] = (), first: str | None = None,
              last: str | None = None, events: tuple = ()) -> Schedule:
        w = tuple(Weekly.parse(name, t) for t in weekly)
        d = tuple(Dated.parse(name, t) for t in dates)
        bounds = []
        for text in (first, last):
            if text is None:
                bounds.append(None)
                continue
            rule = parse_dates(name, text)
            if rule.yearly or rule.first != rule.last:
                raise ScheduleError(name, text, "valid_from/valid_to is one date YYYY-MM-DD")
            bounds.append(date(*rule.first))
        if bounds[0] and bounds[1] and bounds[1] < bounds[0]:
            raise ScheduleError(name, f"{first}..{last}", "valid_to is before valid_from")
        tods = sorted({0} | {i.start for i in (*w, *d)} | {i.end % DAY for i in (*w, *d)})
        return cls(name, tz, w, d, tuple(parse_dates(name, t) for t in exceptions), tuple(holidays),
                   bounds[0], bounds[1], tuple(events), tuple(tods))

    # -- evaluation on the wall clock
    def off_day(self, d: date) -> bool:
        """Whether the whole day ``d`` is blanked (outside from/to, an exception, a holiday)."""
        if (self.first and d < self.first) or (self.last and d > self.last):
            return True
        return any(r.matches(d) for r in self.exceptions) or any(h.matches(d) for h in self.holidays)

    def active_local(self, local: datetime) -> bool:
        """In force at the naive wall-clock time ``local`` (exact away from DST changes)."""
        d = local.date()
        if self.off_day(d):
            return False
        tod = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        wd = d.weekday()
        yesterday = d - timedelta(days=1)
        for i in self.weekly:
            if (wd in i.days and i.start <= tod < i.end) or ((wd - 1) % 7 in i.days and tod < i.end - DAY):
                return True
        for i in self.dated:
            if (i.dates.matches(d) and i.start <= tod < i.end) or (tod < i.end - DAY and i.dates.matches(yesterday)):
                return True
        return False

    def active(self, ts: float) -> bool:
        tz = self.tz
        wall = datetime.fromtimestamp(ts, tz)
        if self.events and not self.off_day(wall.date()) and any(e.active(ts, tz) for e in self.events):
            return True
        if datetime.fromtimestamp(ts - 2 * DAY, tz).utcoffset() == datetime.fromtimestamp(ts + 2 * DAY, tz).utcoffset():
            return self.active_local(wall.replace(tzinfo=None))  # no DST change near: the wall clock is the span
        d = wall.date()
        if self.off_day(d):
            return False
        for day in (d - timedelta(days=2), d - timedelta(days=1), d, d + timedelta(days=1)):
            for start, end in self._spans(day):
                if self._start(day, start) <= ts < self._end(day, end):
                    return True
        return False

    def _spans(self, day: date):
        wd = day.weekday()
        for i in self.weekly:
            if wd in i.days:
                yield i.start, i.end
        for i in self.dated:
            if i.dates.matches(day):
                yield i.start, i.end

    def _start(self, day: date, tod: int) -> float:
        """The first instant the clock shows ``tod`` (seconds, < 2 days) of ``day`` or later."""
        wall = datetime.combine(day + timedelta(days=tod // DAY), _tod(tod % DAY), self.tz)
        t0, t1 = wall.timestamp(), wall.replace(fold=1).timestamp()
        return t0 if t0 <= t1 else transitions(self.tz, t1, t0)[0]  # t0 > t1: skipped, the change

    def _end(self, day: date, tod: int) -> float:
        """The instant after which the clock never again shows a time before ``tod`` of ``day``."""
        wall = datetime.combine(day + timedelta(days=tod // DAY), _tod(tod % DAY), self.tz)
        t0, t1 = wall.timestamp(), wall.replace(fold=1).timestamp()
        if t0 > t1:
            return transitions(self.tz, t1, t0)[0]  # skipped: the change
        if t0 < t1:  # repeated: its second pass, unless it is the first second of the repeated hour
            before = wall - timedelta(seconds=1)
            if before.timestamp() != before.replace(fold=1).timestamp():
                return t1
        return t0

    def next_change(self, ts: float) -> float | None:
        """The first instant after ``ts`` at which :meth:`active` differs, or None.

        The active state only changes where the wall clock crosses one of the
        schedule's times of day (both passes of a repeated hour) or where the clock
        itself jumps (a DST change); those instants are the candidates, checked in order."""
        now = self.active(ts)
        day = datetime.fromtimestamp(ts, self.tz).date() - timedelta(days=1)
        for _ in range(0, HORIZON_DAYS, 7):
            days = [day + timedelta(days=k) for k in range(9)]
            limit = self._instant(days[7], 0)
            found = sorted({c for d in days for c in self._candidates(d) if ts < c <= limit}
                           | {c for e in self.events for c in e.boundaries(ts, limit, self.tz)})
            for c in found:
                if self.active(c) != now:
                    return c
            day = days[7]
        return None

    def _instant(self, d: date, tod: int, fold: int = 0) -> float:
        return datetime.combine(d, _tod(tod), self.tz).replace(fold=fold).timestamp()

    def _candidates(self, d: date) -> list[float]:
        out = []
        for tod in self._tods:
            t = datetime.combine(d, _tod(tod), self.tz)
            out.append(t.timestamp())
            out.append(t.replace(fold=1).timestamp())
        out.extend(transitions(self.tz, self._instant(d, 0), self._instant(d + timedelta(days=1), 0)))
        return out


def _tod(seconds: int) -> time:
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)


def transitions(tz: tzinfo, start: float, end: float) -> list[float]:
    """The instants in (start, end] at which ``tz``'s UTC offset changes (at most one a
    day is assumed, found to the second by bisection)."""
    def offset(t: float) -> timedelta:
        return datetime.fromtimestamp(t, tz).utcoffset()

    lo, hi = int(start), int(end)
    if offset(lo) == offset(hi):
        return []
    base = offset(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset(mid) == base:
            lo = mid
        else:
            hi = mid
    return [float(hi)]


def next_change(schedules: list[Schedule], ts: float) -> float | None:
    """The earliest :meth:`Schedule.next_change` of several."""
    return min((c for s in schedules if (c := s.next_change(ts)) is not None), default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """``[groups.NAME]``: holders that share schedules (any of them active lets them in;
    none: no time limit) and whether they are responders (admitted in lockdown)."""

    name: str
    schedules: tuple[str, ...] = ()
    responder: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleBook:
    """A site's schedules and groups, by name."""

    schedules: dict[str, Schedule] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)

    def allows(self, schedule: str | None, group: str | None, ts: float) -> bool:
        """Whether a holder with this schedule and group may pass at ``ts``.  The holder's
        own schedule decides when set, else the group's; a name that is not configured
        (the config changed under the list) never allows."""
        if schedule is not None:
            s = self.schedules.get(schedule)
            return s is not None and s.active(ts)
        if group is not None:
            g = self.groups.get(group)
            if g is None:
                return False
            return not g.schedules or any((s := self.schedules.get(n)) is not None and s.active(ts) for n in g.schedules)
        return True

    def limited(self, schedule: str | None, group: str | None) -> bool:
        """Whether such a holder is limited in time at all."""
        if schedule is not None:
            return True
        g = self.groups.get(group) if group is not None else None
        return group is not None and (g is None or bool(g.schedules))

    def responder(self, group: str | None) -> bool:
        g = self.groups.get(group) if group is not None else None
        return g is not None and g.responder
