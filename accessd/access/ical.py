"""iCalendar (RFC 5545) import for schedules: ``VEVENT``s with ``RRULE``/``RDATE``/``EXDATE``.

Parsed by ``icalendar``; recurrences expanded by ``dateutil.rrule`` (an ``rruleset`` per
event, cached).  An event is in force from each occurrence's start until its start plus the
event's length (``DTEND - DTSTART`` or ``DURATION``; an all-day event is whole days).  A
``DTSTART`` with ``TZID`` is in that zone (recurrences keep its wall-clock time across DST
changes), a floating one in the device's zone, ``Z`` in UTC.  Imported only when a schedule
names a file, so the daemon does not load the libraries otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

SLACK = timedelta(hours=3)  # widen look-ups by more than any DST shift


class IcalError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class IcalEvent:
    """One VEVENT: its occurrences (an ``rruleset`` of aware datetimes) and length."""

    summary: str
    occurrences: object  # dateutil.rrule.rruleset
    length: timedelta

    def _starts(self, lo: datetime, hi: datetime) -> list[datetime]:
        return self.occurrences.between(lo, hi, inc=True)

    def active(self, ts: float, tz: tzinfo) -> bool:
        t = datetime.fromtimestamp(ts, tz)
        for start in self._starts(t - self.length - SLACK, t + SLACK):
            if start.timestamp() <= ts < (start + self.length).timestamp():
                return True
        return False

    def boundaries(self, lo: float, hi: float, tz: tzinfo) -> list[float]:
        """Starts and ends of occurrences in (lo, hi]."""
        a, b = datetime.fromtimestamp(lo, tz), datetime.fromtimestamp(hi, tz)
        out = []
        for start in self._starts(a - self.length - SLACK, b + SLACK):
            for edge in (start.timestamp(), (start + self.length).timestamp()):
                if lo < edge <= hi:
                    out.append(edge)
        return out


def _aware(value, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tz)
    raise IcalError(f"expected a date or date-time, got {value!r}")


def _dts(prop) -> list:
    props = prop if isinstance(prop, list) else [prop]
    return [d.dt for p in props for d in p.dts]


def parse_ical(text: str | bytes, tz: tzinfo) -> tuple[IcalEvent, ...]:
    """The VEVENTs of a calendar; :class:`IcalError` names what is wrong."""
    import icalendar
    from dateutil.rrule import rruleset, rrulestr

    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise IcalError(f"not an iCalendar file: {exc}") from None
    events = []
    for n, ev in enumerate(cal.walk("VEVENT"), 1):
        summary = str(ev.get("SUMMARY", f"event {n}"))
        if "DTSTART" not in ev:
            raise IcalError(f"VEVENT {summary!r} has no DTSTART")
        raw_start = ev.decoded("DTSTART")
        start = _aware(raw_start, tz)
        if "DTEND" in ev:
            end = _aware(ev.decoded("DTEND"), start.tzinfo)
            length = end.replace(tzinfo=None) - start.replace(tzinfo=None)  # wall-clock length
        elif "DURATION" in ev:
            length = ev.decoded("DURATION")
        else:
            length = timedelta(days=1) if not isinstance(raw_start, datetime) else timedelta(0)
        if length <= timedelta(0):
            raise IcalError(f"VEVENT {summary!r} has no length (DTEND or DURATION)")
        rs = rruleset(cache=True)
        rules = ev.get("RRULE")
        if rules is not None:
            for rule in rules if isinstance(rules, list) else [rules]:
                text_rule = rule.to_ical().decode()
                try:
                    rs.rrule(rrulestr(text_rule, dtstart=start, cache=True))
                except (ValueError, TypeError) as exc:
                    raise IcalError(f"VEVENT {summary!r}: bad RRULE {text_rule!r}: {exc}") from None
        else:
            rs.rdate(start)
        if "RDATE" in ev:
            for d in _dts(ev["RDATE"]):
                rs.rdate(_aware(d, start.tzinfo))
        if "EXDATE" in ev:
            for d in _dts(ev["EXDATE"]):
                rs.exdate(_aware(d, start.tzinfo))
        events.append(IcalEvent(summary, rs, length))
    if not events:
        raise IcalError("the calendar has no VEVENT")
    return tuple(events)
