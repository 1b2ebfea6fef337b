"""Human output of ``accessd-cli``: local times, one line per event, aligned tables, colour.

Colour only when standard output is a terminal (and ``NO_COLOR`` is not set), never in
``--json`` or CSV output; lines are cut to the terminal's width only on a terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta

RESET = "\033[0m"
COLOURS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m", "bold": "\033[1m", "dim": "\033[2m"}


def tty() -> bool:
    return sys.stdout.isatty()


def colour_on(args) -> bool:
    return tty() and not os.environ.get("NO_COLOR") and not getattr(args, "json", False) and not getattr(args, "csv", False)


def paint(text: str, colour: str | None, on: bool) -> str:
    return f"{COLOURS[colour]}{text}{RESET}" if on and colour else text


def width() -> int | None:
    """The terminal's columns, or None when output is not a terminal (nothing is cut)."""
    return shutil.get_terminal_size((80, 24)).columns if tty() else None


def cut(text: str, columns: int | None) -> str:
    return text if columns is None or len(text) <= columns else text[: columns - 1] + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def local(iso: str | None, *, utc: bool = False) -> str:
    """An event's ISO 8601 UTC time as ``Dec 02 10:30:15`` (journalctl's short form) in the
    device's zone, or in UTC; ``--json`` and CSV keep the full ISO 8601 UTC time."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    if not utc:
        from ..timeutil import device_tz

        t = t.astimezone(device_tz())
    else:
        t = t.astimezone(UTC)
    return f"{_MONTHS[t.month - 1]} {t:%d %H:%M:%S}"  # not %b: the same in every locale


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def absolute_time(text: str | None, now: datetime | None = None) -> str | None:
    """``today``, ``yesterday``, ``now``, ``-30m``, ``-1h``, ``-2d`` → ISO 8601 with the
    device's offset (computed here, so the daemon gets an absolute time); other text as is."""
    if text is None:
        return None
    word = text.strip().lower()
    from ..timeutil import device_tz

    now = (now or datetime.now(UTC)).astimezone(device_tz())
    if word == "now":
        t = now
    elif word in ("today", "yesterday"):
        t = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=word == "yesterday")
    elif m := _RELATIVE.match(word):
        t = now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    else:
        return text
    return t.isoformat(timespec="seconds")


def name_of(holder) -> str:
    if not isinstance(holder, dict):
        return str(holder) if holder else ""
    return " ".join(filter(None, (holder.get("first_name"), holder.get("last_name"))))


def credential_text(cred) -> str:
    if not isinstance(cred, dict):
        return str(cred) if cred else ""
    kind = cred.get("kind")
    if cred.get("card_number") is not None:
        fc = f"{cred['facility_code']}/" if cred.get("facility_code") is not None else ""
        return f"{cred.get('format') or 'card'} {fc}{cred['card_number']}"
    if cred.get("hex"):
        return f"card {cred['hex']}/{cred.get('bit_length')}"
    if kind == "pin":
        return "PIN"
    if kind == "qr":
        return "QR"
    return kind or ""


_SKIP = {"seq", "time", "type", "holder", "credential", "reader", "reason", "decision", "id"}


def _value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def event_colour(event: dict) -> str | None:
    t = event.get("type", "")
    if t == "access.granted":
        return "green"
    if t == "access.denied" or t in ("door.forced_open", "tamper") or t.startswith(("alarm.", "security.")):
        return "red"
    if t in ("door.held_open", "reader.disconnected") or t.endswith("_error"):
        return "yellow"
    return None


def event_line(event: dict, *, utc: bool = False, colour: bool = False, columns: int | None = None) -> str:
    """One line: local time, type, then what matters for that type (who, what, where, why)."""
    t = event.get("type", "?")
    parts: list[str] = []
    if t.startswith("access."):
        if event.get("reason"):
            parts.append(str(event["reason"]))
        who = name_of(event.get("holder"))
        parts.append(who or "unknown")
        cred = credential_text(event.get("credential"))
        if cred:
            parts.append(cred)
    else:
        for key in ("name", "state", "reason", "input"):
            if event.get(key) is not None:
                parts.append(_value(event[key]))
        who = name_of(event.get("holder"))
        if who:
            parts.append(who)
        for key, v in event.items():
            if key in _SKIP or key in ("name", "state", "input") or v is None or isinstance(v, dict | list):
                continue
            parts.append(f"{key}={_value(v)}")
    if event.get("reader") and t != "system.started":
        parts.append(str(event["reader"]))
    line = f"{local(event.get('time'), utc=utc)}  {t:<16} {'  '.join(parts)}".rstrip()
    line = cut(line, columns)
    return paint(line, event_colour(event), colour)


def table(headers: list[str], rows: list[list[str]], *, columns: int | None = None, right: set[int] = frozenset()) -> str:
    """Aligned columns, two spaces apart; the last column takes what is left of the width."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            last = i == len(cells) - 1
            out.append(cell if last else (cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])))
        return cut("  ".join(out).rstrip(), columns)

    return "\n".join([line(headers), *(line(r) for r in rows)])
