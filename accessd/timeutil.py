"""Times as users type them: ISO 8601 dates and date-times, in the device's time zone."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def device_tz(name: str | None = None) -> tzinfo:
    """The device's zone with its DST rules: ``name`` (the config), else ``TZ``, else /etc/localtime."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(env)
    with contextlib.suppress(OSError, ValueError), open("/etc/localtime", "rb") as f:
        return ZoneInfo.from_file(f, key="localtime")
    return UTC


def parse_time(text: str, tz: tzinfo | None = None) -> datetime:
    """``2026-11-24``, ``2026-11-24T08:00``, ``2026-11-24T08:00:00+01:00`` → aware datetime.

    A date means its midnight; a time without an offset is in ``tz`` (the device's zone).
    """
    text = text.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date or date-time (2026-11-24, 2026-11-24T08:00[+01:00]), got {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz or device_tz())
    return parsed
