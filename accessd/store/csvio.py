"""The entry list's CSV: header and rows in, rows out, and the staging of chunked imports.

The columns are DESIGN's (``CSV_COLUMNS``, a public contract) plus the extra columns
accepted on import (``CSV_EXTRA_COLUMNS``); both come from the one list of holder fields
(``accessd.store.fields``).  Every row is validated by the same walker as the CLI and
the socket.

A chunked import (the daemon's ``holders.import``) validates each chunk as it arrives
and appends its rows, PINs already hashed, to a staging file (``import-<session>.tmp``
in the state directory); the commit inserts the staged rows in one transaction
(``EntryList.import_staged``).
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from accessd.errors import EntryListError, InvalidField
from accessd.protocols.wiegand.formats import LIBRARY, FormatLibrary

from .fields import CSV_COLUMNS, CSV_EXTRA_COLUMNS, HOLDER_COLUMNS, normalize_holder

MAX_ERRORS = 1000  # an import stops listing errors here


def note(errors: list, exc: EntryListError) -> None:
    if len(errors) < MAX_ERRORS:
        errors.append(exc)


def parse_header(row: list[str], errors: list) -> list[str] | None:
    """Validate the CSV header row; None (with errors) when unusable."""
    header = [h.strip().lower() for h in row]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    allowed = set(CSV_COLUMNS) | set(CSV_EXTRA_COLUMNS)
    bad = False
    for name in header:
        if name not in allowed:
            errors.append(InvalidField(name, name, f"a column among {', '.join(CSV_COLUMNS)}", 1))
            bad = True
    if "first_name" not in header:
        errors.append(InvalidField("first_name", ",".join(header), "a first_name column in the header", 1))
        bad = True
    if len(set(header)) != len(header):
        errors.append(InvalidField("header", ",".join(header), "each column once", 1))
        bad = True
    return None if bad else header


def parse_csv(
    lines: Iterable[str],
    errors: list,
    *,
    header: list[str] | None = None,
    first_line: int = 1,
    hash_pin: Callable[[str], bytes] | None = None,
    formats: FormatLibrary = LIBRARY,
) -> Iterator[tuple[int, dict | None]]:
    """Yield (line number, normalised fields or None) for each data row; errors go to ``errors``.

    Line numbers count the header as line 1, as a spreadsheet shows them.  With
    ``header`` given, ``lines`` continue a file whose header was already read and
    ``first_line`` is the number of their first line.  With ``hash_pin``, a row's
    ``pin`` is replaced by its keyed hash at once (so no clear PIN is kept around).
    """
    reader = csv.reader(lines)
    offset = first_line - 1
    if header is None:
        try:
            row = next(reader)
        except StopIteration:
            errors.append(InvalidField("header", "", "a header row naming the columns", 1))
            return
        header = parse_header(row, errors)
        if header is None:
            return
    width = len(header)
    end = reader.line_num
    for row in reader:
        line = end + 1 + offset  # where the record starts (a quoted field may span lines)
        end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            note(errors, InvalidField("row", ",".join(row)[:80], f"{width} columns as in the header", line))
            yield line, None
            continue
        raw = {k: v for k, v in zip(header, row, strict=True) if v or k == "first_name"}
        try:
            fields = normalize_holder(raw, formats=formats)
        except InvalidField as exc:
            note(errors, InvalidField(exc.field, exc.value, exc.expected, line))
            yield line, None
            continue
        if hash_pin is not None and fields.get("pin"):
            fields["pin"] = hash_pin(fields["pin"])
        yield line, fields


def rows_to_csv(rows: list[dict], *, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# ---------------------------------------------------------------- import staging

STAGING_COLUMNS = (
    "line",
    *HOLDER_COLUMNS,
    "card_hex",
    "bit_length",
    "format",
    "facility_code",
    "card_number",
    "pin_hash",
    "qr",
)
STAGING_SCHEMA = "CREATE TABLE IF NOT EXISTS staged (" + ", ".join(STAGING_COLUMNS) + ")"


def holder_values(f: dict) -> tuple:
    """A holder's own columns, in ``HOLDER_COLUMNS``' order (as the staging table has them)."""
    return tuple(
        int(f.get("suspended", False)) if k == "suspended" else f.get(k, "" if k in ("last_name", "notes") else None)
        for k in HOLDER_COLUMNS
    )


def open_staging(path: Path | str) -> sqlite3.Connection:
    """A scratch file for an import's validated rows (no journal: it is thrown away)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(STAGING_SCHEMA)
    return conn


def stage_rows(conn: sqlite3.Connection, rows: Iterable[tuple[int, dict]]) -> None:
    """Append validated rows (PINs already hashed) to a staging file."""
    out = []
    for line, f in rows:
        pin = f.get("pin")
        if isinstance(pin, str):
            raise ValueError("hash the PIN before staging a row")
        card = f.get("card") or (None, None, None, None, None)
        out.append((line, *holder_values(f), *card, pin, f.get("qr")))
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO staged VALUES ({', '.join('?' * len(STAGING_COLUMNS))})", out)
    conn.execute("COMMIT")


def staged_fields(row: tuple) -> tuple[int, dict]:
    """A staging table row back as (line, fields) in ``normalize_holder``'s shape."""
    n = len(HOLDER_COLUMNS)
    line = row[0]
    fields = dict(zip(HOLDER_COLUMNS, row[1:1 + n], strict=True))
    fields["suspended"] = bool(fields["suspended"])
    card_hex, bits, fmt, fc, cn, pin, qr = row[1 + n:]
    if card_hex is not None or cn is not None:
        fields["card"] = (card_hex, bits, fmt, fc, cn)
    if pin is not None:
        fields["pin"] = pin
    if qr is not None:
        fields["qr"] = qr
    return line, fields
