"""The pure decision: a table for every reason, exact-second boundaries, DST."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from accessd.access.decision import REASONS, Decision, Holder, decide, window_end, window_start

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)


def holder(**kw):
    return Holder(id=7, first_name="Ann", last_name="Lee", **kw)


TABLE = [
    # (holder kwargs or None, decide kwargs, granted, reason, remaining)
    ({}, {}, True, None, None),
    ({"uses": 3}, {}, True, None, 2),
    ({"uses": 1}, {}, True, None, 0),
    ({"uses": 0}, {}, False, "uses_exhausted", 0),
    (None, {}, False, "unknown_credential", None),
    ({"suspended": True}, {}, False, "suspended", None),
    ({"valid_from": "2026-06-16"}, {}, False, "not_yet_valid", None),
    ({"valid_to": "2026-06-14"}, {}, False, "expired", None),
    ({"valid_from": "2026-06-01", "valid_to": "2026-06-30"}, {}, True, None, None),
    ({}, {"pin_ok": False}, False, "pin_mismatch", None),
    ({}, {"pin_ok": True}, True, None, None),
    ({}, {"locked_out": True}, False, "locked_out", None),
    # precedence: lockout hides everything; identity before holder state
    (None, {"locked_out": True}, False, "locked_out", None),
    ({"suspended": True}, {"pin_ok": False}, False, "pin_mismatch", None),
    ({"suspended": True, "valid_to": "2020-01-01"}, {}, False, "suspended", None),
    ({"valid_to": "2020-01-01", "uses": 0}, {}, False, "expired", 0),
    ({"valid_from": "2030-01-01", "uses": 0}, {}, False, "not_yet_valid", 0),
    ({"uses": 2}, {"in_schedule": False}, False, "outside_schedule", 2),  # before uses: none is taken
    ({"valid_to": "2020-01-01"}, {"in_schedule": False}, False, "expired", None),
    ({"suspended": True}, {"in_schedule": False}, False, "suspended", None),
    ({"uses": 2}, {"refusal": "lockdown"}, False, "lockdown", 2),
    ({"suspended": True}, {"refusal": "lockdown"}, False, "lockdown", None),  # before the holder's state
    ({}, {"pin_ok": False, "refusal": "lockdown"}, False, "pin_mismatch", None),  # after the identity
    ({"uses": 1}, {"passback": True}, False, "passback", 1),  # before uses
    ({}, {"passback": True, "in_schedule": False}, False, "outside_schedule", None),
]


@pytest.mark.parametrize("hkw, dkw, granted, reason, remaining", TABLE)
def test_decision_table(hkw, dkw, granted, reason, remaining):
    h = None if hkw is None else holder(**hkw)
    d = decide(holder=h, now=NOW, tz=BERLIN, **dkw)
    assert (d.granted, d.reason, d.remaining_uses) == (granted, reason, remaining)
    out = d.to_json()
    assert out["decision"] == ("granted" if granted else "denied")
    assert out["reason"] == reason
    if h is not None and reason != "locked_out":
        assert out["holder"] == {"id": 7, "first_name": "Ann", "last_name": "Lee"}
    else:
        assert out["holder"] is None


def test_every_decision_reason_is_covered_by_the_table_or_reader_level():
    # pin_timeout and invalid_format are reader-level denials, fault the shell's: not decide()'s
    seen = {row[3] for row in TABLE if row[3]}
    assert seen | {"pin_timeout", "invalid_format", "fault", "credential_not_allowed"} == set(REASONS)
    for reason in ("pin_timeout", "invalid_format"):
        assert Decision(granted=False, reason=reason).to_json()["reason"] == reason


def test_decision_rejects_inconsistent_values():
    with pytest.raises(ValueError, match="deny reason"):
        Decision(granted=False, reason="nope")
    with pytest.raises(ValueError, match="no reason"):
        Decision(granted=True, reason="expired")
    with pytest.raises(ValueError, match="aware"):
        decide(holder=holder(valid_to="2026-01-01"), now=datetime(2026, 1, 1), tz=BERLIN)


def at(text):
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    "valid_from, now, reason",
    [
        ("2026-06-15T08:00:00", "2026-06-15T07:59:59.999999+02:00", "not_yet_valid"),
        ("2026-06-15T08:00:00", "2026-06-15T08:00:00+02:00", None),
        ("2026-06-15T08:00:00Z", "2026-06-15T07:59:59+00:00", "not_yet_valid"),
        ("2026-06-15T08:00:00Z", "2026-06-15T08:00:00+00:00", None),
        ("2026-06-15", "2026-06-14T23:59:59+02:00", "not_yet_valid"),
        ("2026-06-15", "2026-06-15T00:00:00+02:00", None),
    ],
)
def test_valid_from_exact_second(valid_from, now, reason):
    d = decide(holder=holder(valid_from=valid_from), now=at(now), tz=BERLIN)
    assert d.reason == reason


@pytest.mark.parametrize(
    "valid_to, now, reason",
    [
        ("2026-06-15T18:00:00", "2026-06-15T18:00:00+02:00", None),
        ("2026-06-15T18:00:00", "2026-06-15T18:00:00.999+02:00", None),
        ("2026-06-15T18:00:00", "2026-06-15T18:00:01+02:00", "expired"),
        ("2026-06-15T18:00:00+00:00", "2026-06-15T20:00:00+02:00", None),
        ("2026-06-15T18:00:00+00:00", "2026-06-15T20:00:01+02:00", "expired"),
        ("2026-06-15", "2026-06-15T23:59:59+02:00", None),
        ("2026-06-15", "2026-06-16T00:00:00+02:00", "expired"),
    ],
)
def test_valid_to_exact_second(valid_to, now, reason):
    d = decide(holder=holder(valid_to=valid_to), now=at(now), tz=BERLIN)
    assert d.reason == reason


def test_time_zone_decides_what_a_local_time_means():
    h = holder(valid_to="2026-06-15T18:00:00")
    now = at("2026-06-15T17:30:00+00:00")  # 19:30 in Berlin, 13:30 in New York
    assert decide(holder=h, now=now, tz=BERLIN).reason == "expired"
    assert decide(holder=h, now=now, tz=ZoneInfo("America/New_York")).granted


def test_spring_forward_day_is_23_hours():
    # Berlin 2026-03-29: 02:00 CET -> 03:00 CEST.  A date covers the local day.
    start = window_start("2026-03-29", BERLIN)
    end = window_end("2026-03-29", BERLIN)
    assert start == at("2026-03-29T00:00:00+01:00")
    assert end == at("2026-03-30T00:00:00+02:00")
    assert end - start == timedelta(hours=23)
    h = holder(valid_to="2026-03-29")
    assert decide(holder=h, now=at("2026-03-29T23:59:59+02:00"), tz=BERLIN).granted
    assert decide(holder=h, now=at("2026-03-30T00:00:00+02:00"), tz=BERLIN).reason == "expired"


def test_fall_back_ambiguous_time_is_its_first_occurrence():
    # Berlin 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    h = holder(valid_to="2026-10-25T02:30:00")
    first = at("2026-10-25T02:30:00+02:00")
    second = at("2026-10-25T02:30:00+01:00")
    assert decide(holder=h, now=first, tz=BERLIN).granted
    assert decide(holder=h, now=first + timedelta(seconds=1), tz=BERLIN).reason == "expired"
    assert decide(holder=h, now=second, tz=BERLIN).reason == "expired"
    assert window_end("2026-10-25", BERLIN) - window_start("2026-10-25", BERLIN) == timedelta(hours=25)


def test_skipped_local_time_uses_the_offset_before_the_change():
    # 02:30 does not exist on 2026-03-29 in Berlin; it is read as 02:30+01:00 (= 03:30 CEST)
    assert window_start("2026-03-29T02:30:00", BERLIN) == at("2026-03-29T01:30:00+00:00")
    h = holder(valid_from="2026-03-29T02:30:00")
    assert decide(holder=h, now=at("2026-03-29T03:29:59+02:00"), tz=BERLIN).reason == "not_yet_valid"
    assert decide(holder=h, now=at("2026-03-29T03:30:00+02:00"), tz=BERLIN).granted


def test_holder_validation():
    with pytest.raises(ValueError, match="first_name"):
        Holder(id=1, first_name="")
    with pytest.raises(ValueError, match="uses"):
        Holder(id=1, first_name="A", uses=-1)
