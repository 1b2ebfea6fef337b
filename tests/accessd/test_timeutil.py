from datetime import UTC, datetime, timedelta

import pytest

from accessd.timeutil import device_tz, parse_time


def test_device_zone_prefers_config_then_tz_then_localtime(monkeypatch):
    assert str(device_tz("America/New_York")) == "America/New_York"
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    assert str(device_tz()) == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "Not/AZone")
    zone = device_tz()  # falls through to /etc/localtime (a real zone with its rules) or UTC
    assert zone.utcoffset(datetime(2026, 1, 1)) is not None
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        device_tz("Mars/Olympus")


BERLIN = device_tz("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24", datetime(2026, 11, 23, 23, 0, tzinfo=UTC)),  # midnight, device zone (CET)
        ("2026-07-01T08:00", datetime(2026, 7, 1, 6, 0, tzinfo=UTC)),  # CEST: DST rules, not a fixed offset
        ("2026-11-24T08:00:00+01:00", datetime(2026, 11, 24, 7, 0, tzinfo=UTC)),
        ("2026-11-24T08:00:00Z", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
    ],
)
def test_parse_time(text, expected):
    parsed = parse_time(text, BERLIN)
    assert parsed == expected and parsed.utcoffset() is not None


def test_parse_time_names_what_it_expected():
    with pytest.raises(ValueError, match=r"expected an ISO 8601 date or date-time .* got 'next week'"):
        parse_time("next week", BERLIN)


def test_a_date_time_across_the_dst_change():
    before = parse_time("2026-03-29T01:30", BERLIN)
    after = parse_time("2026-03-29T03:30", BERLIN)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=1)  # 02:00–03:00 does not exist
