"""accessd-cli's human output: relative times, one line per event, tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accessd.cli import render


@pytest.fixture(autouse=True)
def berlin(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")


NOW = datetime(2026, 12, 2, 9, 30, 15, tzinfo=UTC)  # 10:30:15 in Berlin


@pytest.mark.parametrize(("text", "want"), [
    ("today", "2026-12-02T00:00:00+01:00"),
    ("yesterday", "2026-12-01T00:00:00+01:00"),
    ("-1h", "2026-12-02T09:30:15+01:00"),
    ("-30m", "2026-12-02T10:00:15+01:00"),
    ("-2d", "2026-11-30T10:30:15+01:00"),
    ("now", "2026-12-02T10:30:15+01:00"),
    ("2026-11-24T08:00", "2026-11-24T08:00"),  # absolute: the daemon parses it as before
])
def test_relative_times_become_absolute(text, want):
    assert render.absolute_time(text, NOW) == want


def test_local_time_and_utc():
    assert render.local("2026-12-02T09:30:15Z") == "Dec 02 10:30:15"
    assert render.local("2026-12-02T09:30:15+00:00", utc=True) == "Dec 02 09:30:15"


ACCESS = {
    "seq": 7, "time": "2026-12-02T09:30:15Z", "type": "access.denied", "reason": "expired", "reader": "reader1",
    "holder": {"id": 4, "first_name": "Dave", "last_name": "Expired"},
    "credential": {"kind": "card", "bit_length": 26, "hex": "0181F51", "format": "H10301", "facility_code": 12, "card_number": 1000},
}


def test_an_access_event_is_one_line_within_80_columns():
    line = render.event_line(ACCESS, columns=80)
    assert line == "Dec 02 10:30:15  access.denied    expired  Dave Expired  H10301 12/1000  reader1"
    assert len(line) <= 80
    long = {**ACCESS, "holder": {"first_name": "A" * 60, "last_name": "B" * 30}}
    assert len(render.event_line(long, columns=80)) == 80 and render.event_line(long, columns=80).endswith("…")
    assert "\033[" not in line and render.event_line(ACCESS, colour=True).startswith("\033[31m")


def test_plural_and_table():
    assert render.plural(1, "use") == "1 use" and render.plural(2, "use") == "2 uses" and render.plural(0, "use") == "0 uses"
    assert render.table(["ID", "NAME"], [["1", "Alice"], ["12", "Bob"]], right={0}).splitlines() == [
        "ID  NAME", " 1  Alice", "12  Bob"]
