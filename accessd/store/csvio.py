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

import contextlib
import csv
import io
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from accessd.errors import EntryListError, ImportFailed, InvalidField
from accessd.protocols.wiegand.formats import LIBRARY, FormatLibrary

from .fields import CSV_COLUMNS, CSV_EXTRA_COLUMNS, HOLDER_COLUMNS, normalize_holder

MAX_ERRORS = 1000  # an import stops listing errors here

# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """A text cell made safe to open in a spreadsheet: one ``'`` before a cell that starts
    with ``= + - @``, tab or CR, also when apostrophes already precede that character (so
    that :func:`restore` undoes exactly this); any other cell is unchanged."""
    if isinstance(cell, str) and cell.lstrip("'").startswith(FORMULA_START):
        return "'" + cell
    return cell


def restore(cell: str) -> str:
    """The inverse of :func:`neutralise` (an import reads back what an export wrote; a name
    such as ``'t Hooft`` stays as it is)."""
    if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_START):
        return cell[1:]
    return cell


def csv_lines(text: str) -> io.StringIO:
    """Lines of CSV text as the csv module and a file opened with ``newline=""`` split them
    (at \n, \r and \r\n only: never at U+2028, U+0085 or the other characters
    ``str.splitlines()`` also ends a line at)."""
    return io.StringIO(text, newline="")


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
    hash_qr: Callable[[str], bytes] | None = None,
    formats: FormatLibrary = LIBRARY,
) -> Iterator[tuple[int, dict | None]]:
    """Yield (line number, normalised fields or None) for each data row; errors go to ``errors``.

    Line numbers count the header as line 1, as a spreadsheet shows them.  With
    ``header`` given, ``lines`` continue a file whose header was already read and
    ``first_line`` is the number of their first line.  With ``hash_pin``, a row's
    ``pin`` is replaced by its keyed hash at once (so no clear PIN is kept around), and
    with ``hash_qr`` the ``qr`` text.
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
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a NUL byte, a field over the csv module's limit
            line = end + 1 + offset
            end = reader.line_num
            note(errors, InvalidField("row", "", f"a CSV record ({exc})", line))
            yield line, None
            continue
        line = end + 1 + offset  # where the record starts (a quoted field may span lines)
        end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            note(errors, InvalidField("row", ",".join(row)[:80], f"{width} columns as in the header", line))
            yield line, None
            continue
        raw = {k: restore(v) for k, v in zip(header, row, strict=True) if v or k == "first_name"}
        try:
            fields = normalize_holder(raw, formats=formats)
        except InvalidField as exc:
            note(errors, InvalidField(exc.field, exc.value, exc.expected, line))
            yield line, None
            continue
        if hash_pin is not None and fields.get("pin"):
            fields["pin"] = hash_pin(fields["pin"])
        if hash_qr is not None and fields.get("qr"):
            fields["qr"] = hash_qr(fields["qr"])
        yield line, fields


def safe_row(row: dict) -> dict:
    """An exported row with every text cell neutralised (:func:`neutralise`)."""
    return {k: neutralise(v) for k, v in row.items()}


def rows_to_csv(rows: list[dict], *, header: bool) -> str:
    buf = io.StringIO()
    # CRLF, as RFC 4180 and `holders export`: the writer then quotes a lone CR in a field too
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(safe_row(r) for r in rows)
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
    "qr_hash",
)
STAGING_SCHEMA = "CREATE TABLE IF NOT EXISTS staged (" + ", ".join(f'"{c}"' for c in STAGING_COLUMNS) + ")"


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
    """Append validated rows (PINs and QR texts already hashed) to a staging file."""
    out = []
    for line, f in rows:
        pin, qr = f.get("pin"), f.get("qr")
        if isinstance(pin, str) or isinstance(qr, str):
            raise ValueError("hash the PIN and the QR text before staging a row")
        card = f.get("card") or (None, None, None, None, None)
        out.append((line, *holder_values(f), *card, pin, qr))
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


class ImportSession:
    """One chunked CSV import: each chunk validated as it arrives (PINs and QR texts hashed at
    once), its
    rows appended to a staging file (``path``, mode 0600), all inserted at ``commit()``.

    Made by ``EntryList.open_import(session)``; ``commit`` is the store's function that
    inserts the staged rows in one transaction on a connection of its own (it runs in a
    worker thread while the daemon's loop keeps reading the list).
    """

    def __init__(
        self,
        path: Path,
        *,
        formats: FormatLibrary,
        hash_pin: Callable[[str], bytes],
        hash_qr: Callable[[str], bytes],
        commit: Callable[[Path, list, int], object],
    ) -> None:
        self.path = Path(path)
        self.formats = formats
        self.hash_pin = hash_pin
        self.hash_qr = hash_qr
        self._commit = commit
        self.db = open_staging(self.path)
        os.chmod(self.path, 0o600)
        self.header: list[str] | None = None
        self.used = time.monotonic()
        self.errors: list = []
        self.rows = 0

    def stage(self, text: str, first_line: int) -> None:
        """Validate and stage one chunk (whole records; the first chunk starts with the header).
        A header that cannot be used raises ``ImportFailed`` at once."""
        lines = csv_lines(text)
        if self.header is None:
            reader = csv.reader(lines)  # reads only the header's lines: parse_csv goes on from there
            try:
                head = next(reader)
            except (StopIteration, csv.Error):
                head = []
            self.header = parse_header(head, self.errors) if head else None
            if self.header is None:
                if not head:
                    self.errors.append(InvalidField("header", "", "a header row naming the columns", 1))
                raise ImportFailed(self.errors, 0)
            first_line += reader.line_num
        staged = []
        for line, fields in parse_csv(lines, self.errors, header=self.header, first_line=first_line,
                                      hash_pin=self.hash_pin, hash_qr=self.hash_qr, formats=self.formats):
            self.rows += 1
            if fields is not None:
                staged.append((line, fields))
        stage_rows(self.db, staged)

    def commit(self):
        """Insert everything staged, all or nothing (``ImportReport``, or ``ImportFailed``).
        Rows with errors were not staged; the others are still inserted so that duplicates
        are reported too, then everything rolls back when there is any error."""
        self.db.close()
        return self._commit(self.path, list(self.errors), self.rows)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
