"""The entry list: holders and their credentials in SQLite (the store).

One file, ``entrylist.db`` in the state directory, written by the daemon only; what the
door writes (uses taken, failures, lockouts) goes to ``access.db`` beside it.  The
schema and its migrations are in ``accessd.store.schema``, the holder fields and their
validation in ``accessd.store.fields``, CSV and import staging in ``accessd.store.csvio``;
their public names are re-exported here.

Lookups go through unique indexes:

* card by (bit_length, hex) — the raw value as read;
* card by (format, facility code, card number) — holders enrolled from a badge;
* PIN by HMAC-SHA256(device secret, PIN) — the PIN itself is never stored; the
  secret is 32 random bytes in ``pin.key`` (mode 0600) next to the database;
* QR by HMAC-SHA256(device secret, "qr" NUL text) — QR texts are secrets like PINs:
  neither is stored, shown by ``describe`` or exported.

A card, PIN or QR code belongs to at most one holder; a second use is a
``DuplicateCredential`` naming the field and the holder that has it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from accessd.access.decision import Holder
from accessd.errors import (
    DuplicateCredential,
    EntryListError,
    HolderNotFound,
    ImportFailed,
    InvalidField,
    PinSpaceExhausted,
    StateFileError,
)
from accessd.protocols.credential import Credential
from accessd.protocols.wiegand.errors import UnknownFormat
from accessd.protocols.wiegand.formats import LIBRARY, FormatLibrary

from .csvio import (
    MAX_ERRORS,
    STAGING_COLUMNS,
    ImportSession,
    open_staging,
    parse_csv,
    parse_header,
    rows_to_csv,
    stage_rows,
    staged_fields,
)
from .csvio import holder_values as _holder_columns
from .csvio import note as _note
from .fields import (
    CSV_COLUMNS,
    CSV_EXTRA_COLUMNS,
    HOLDER_COLUMNS,
    HOLDER_FIELDS,
    HOLDER_KEYS,
    PIN_MAX,
    PIN_MIN,
    SQL_HOLDER_COLUMNS,
    normalize_holder,
    parse_time,
)
from .schema import MIGRATIONS, STATE_MIGRATIONS, MigrationContext, connect, migrate, open_checked, remedy_for

__all__ = [
    "CSV_COLUMNS", "CSV_EXTRA_COLUMNS", "HOLDER_COLUMNS", "HOLDER_FIELDS", "HOLDER_KEYS", "MAX_ERRORS", "MIGRATIONS",
    "PIN_MAX", "PIN_MIN", "STAGING_COLUMNS", "STATE_MIGRATIONS", "DuplicateCredential", "EntryList", "EntryListError",
    "HolderNotFound", "ImportFailed", "ImportReport", "ImportSession", "InvalidField", "PinSpaceExhausted", "connect", "format_hex",
    "load_secret", "migrate", "normalize_holder", "open_staging", "parse_csv", "parse_header", "parse_time",
    "rows_to_csv", "stage_rows", "StateFileError",
]

IMPORT_BATCH = 1000  # rows per executemany in an import
SECRET_FILE = "pin.key"
DB_FILE = "entrylist.db"
STATE_FILE = "access.db"


# ---------------------------------------------------------------- the store


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    added: int = 0
    errors: list = field(default_factory=list)


KEY_REMEDY = ("restore it from a backup: stored PINs and QR codes match only under the key they were stored"
              " with (removing it makes a new key, and every stored PIN and QR code must then be set again)")


def load_secret(path: Path) -> bytes:
    """The per-device PIN and QR key: created once (32 random bytes, mode 0600), then reused.
    A key that cannot be read or is not 32 bytes is a ``StateFileError``."""
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                os.chmod(path, 0o600)
            data = path.read_bytes()
            if len(data) != 32:
                raise StateFileError(str(path), f"expected a 32-byte PIN key, found {len(data)} bytes",
                                     KEY_REMEDY) from None
            return data
        try:
            key = secrets.token_bytes(32)
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateFileError(str(path), f"cannot be used ({exc.strerror or exc})", remedy_for(exc, path)) from None
    return key


def remove_stale_staging(state_dir: Path) -> list[Path]:
    """Remove the ``import-*.tmp`` staging files an import killed before its end left behind
    (called when the daemon opens the list: no import session survives a restart)."""
    removed = []
    for p in state_dir.glob("import-*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed



_HOLDER_COLUMNS = (
    "h.id, h.first_name, h.last_name, h.notes, h.suspended, h.valid_from, h.valid_to, h.uses, h.access_time,"
    " h.conditions, h.uses_epoch, h.schedule, h.\"group\""
)
_HAS = (
    ", EXISTS(SELECT 1 FROM credentials c WHERE c.holder_id = h.id AND c.kind = 'card')"
    ", EXISTS(SELECT 1 FROM credentials c WHERE c.holder_id = h.id AND c.kind = 'pin')"
    ", EXISTS(SELECT 1 FROM credentials c WHERE c.holder_id = h.id AND c.kind = 'qr')"
)


def _holder(row, uses: int | None) -> Holder:
    return Holder(
        id=row[0],
        first_name=row[1],
        last_name=row[2],
        notes=row[3],
        suspended=bool(row[4]),
        valid_from=row[5],
        valid_to=row[6],
        uses=uses,
        access_time=row[8],
        conditions=row[9],
        schedule=row[11],
        group=row[12],
        has_card=bool(row[13]),
        has_pin=bool(row[14]),
        has_qr=bool(row[15]),
    )


def _epoch() -> int:
    return secrets.randbits(62)


INSERT_HOLDER = (
    f"INSERT INTO holders (id, {SQL_HOLDER_COLUMNS}, uses_epoch)"
    f" VALUES ({', '.join('?' * (len(HOLDER_COLUMNS) + 2))})"
)


class EntryList:
    """The entry list of one door.  Use from one thread (the daemon's loop)."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        formats: FormatLibrary | None = None,
        db_name: str = DB_FILE,
        check: bool = True,
    ) -> None:
        """Open (create, migrate) the list in ``state_dir``.

        ``formats``: the library card format names are checked against and stored by
        (the daemon's ``daemon.formats``, with the custom ``[[formats]]``); default: the
        built-in formats.  ``check``: run ``PRAGMA quick_check`` on entrylist.db and
        access.db and remove stale ``import-*.tmp`` files (the daemon's opening; a second
        connection for an import's commit passes False).  A state file that cannot be
        used raises ``StateFileError`` naming it and what to do.
        """
        self.state_dir = Path(state_dir)
        self.formats = LIBRARY if formats is None else formats
        self._reader: EntryList | None = None  # the read-only view (reader()), made on first use
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise StateFileError(str(self.state_dir), f"cannot be created ({exc.strerror or exc})",
                                 remedy_for(exc, self.state_dir / "x")) from None
        self.path = self.state_dir / db_name
        self.secret = load_secret(self.state_dir / SECRET_FILE)
        if check:
            remove_stale_staging(self.state_dir)
        ctx = MigrationContext(canonical_format=self._known_format, qr_hash=self.qr_hash)
        self.conn, self.version = open_checked(self.path, MIGRATIONS, ctx, check=check)
        try:
            self.state, _ = open_checked(self.state_dir / STATE_FILE, STATE_MIGRATIONS, check=check)
        except BaseException:
            self.conn.close()
            raise
        q = "SELECT " + _HOLDER_COLUMNS + _HAS + " FROM holders h WHERE h.id = "
        self._sql_raw = q + "(SELECT holder_id FROM credentials WHERE bit_length = ? AND card_hex = ?)"
        self._sql_decoded = (
            q + "(SELECT holder_id FROM credentials WHERE format = ? AND ifnull(facility_code, -1) = ?"
            " AND card_number = ? AND card_number IS NOT NULL)"
        )
        self._sql_pin = q + "(SELECT holder_id FROM credentials WHERE pin_hash = ? AND pin_hash IS NOT NULL)"
        self._sql_qr = q + "(SELECT holder_id FROM credentials WHERE qr_hash = ? AND qr_hash IS NOT NULL)"
        self._sql_id = q + "?"

    def close(self) -> None:
        self.conn.close()
        self.state.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.conn.close()
            reader.state.close()

    def reader(self) -> EntryList:
        """A read-only view on its own connections, for heavy reads in a worker thread.

        WAL lets it read while the loop thread's connection writes; it is made once and
        must be used by one thread at a time (the caller serialises its use).
        """
        reader = self._reader
        if reader is None:
            reader = copy.copy(self)
            reader.conn = _read_only(self.path)
            reader.state = _read_only(self.state_dir / STATE_FILE)
            self._reader = reader
        return reader

    def _known_format(self, name: str) -> str | None:
        """The library's name of a card format (an alias or another spelling), None if unknown."""
        try:
            return self.formats.canonical(name.strip())
        except UnknownFormat:
            return None

    def _holder(self, row) -> Holder:
        """A holder from a row of ``_HOLDER_COLUMNS``: its uses are what is left of them."""
        uses = row[7]
        if uses is not None:
            taken = self.state.execute(
                "SELECT taken FROM uses_taken WHERE holder_id = ? AND epoch = ?", (row[0], row[10])
            ).fetchone()
            if taken is not None:
                uses = max(0, uses - taken[0])
        return _holder(row, uses)

    # ------------------------------------------------------------ lookups (hot path)

    def pin_hash(self, pin: str) -> bytes:
        """HMAC-SHA256 of a PIN under the device key (what is stored and searched)."""
        return hmac.new(self.secret, pin.encode(), hashlib.sha256).digest()

    def qr_hash(self, qr: str) -> bytes:
        """HMAC-SHA256 of a QR text under the device key (apart from PINs by a prefix)."""
        return hmac.new(self.secret, b"qr\0" + qr.encode(), hashlib.sha256).digest()

    def find_card(
        self,
        bits: str | None,
        format: str | None = None,
        facility_code: int | None = None,
        card_number: int | None = None,
    ) -> Holder | None:
        """The holder of a card: by raw value and bit length, else by decoded format/FC/CN."""
        execute = self.conn.execute
        if bits:
            hex_value = format_hex(bits)
            row = execute(self._sql_raw, (len(bits), hex_value)).fetchone()
            if row:
                return self._holder(row)
        if format is not None and card_number is not None:
            fc = -1 if facility_code is None else facility_code
            row = execute(self._sql_decoded, (self._known_format(format) or format, fc, card_number)).fetchone()
            if row:
                return self._holder(row)
        return None

    def find_pin(self, pin: str) -> Holder | None:
        row = self.conn.execute(self._sql_pin, (self.pin_hash(pin),)).fetchone()
        return self._holder(row) if row else None

    def find_qr(self, qr: str) -> Holder | None:
        row = self.conn.execute(self._sql_qr, (self.qr_hash(qr),)).fetchone()
        return self._holder(row) if row else None

    def find(self, credential: Credential) -> Holder | None:
        if credential.kind == "card":
            return self.find_card(
                credential.bits, credential.format, credential.facility_code, credential.card_number
            )
        if credential.kind == "pin":
            return self.find_pin(credential.pin)
        return self.find_qr(credential.qr)

    def pin_matches(self, holder_id: int, pin: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM credentials WHERE holder_id = ? AND pin_hash = ?", (holder_id, self.pin_hash(pin))
        ).fetchone()
        return row is not None

    def get(self, ident: int | str) -> Holder:
        """A holder by id (a number) or by first name."""
        row = None
        if isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit()):
            row = self.conn.execute(self._sql_id, (int(ident),)).fetchone()
        if row is None and isinstance(ident, str):
            row = self.conn.execute(
                "SELECT " + _HOLDER_COLUMNS + _HAS + " FROM holders h WHERE h.first_name = ?", (ident,)
            ).fetchone()
        if row is None:
            raise HolderNotFound(ident)
        return self._holder(row)

    def credentials(self, holder_id: int) -> dict:
        """The holder's credentials for display (a PIN and a QR code show only as set)."""
        out: dict = {"card": None, "pin": False, "qr": False}
        for kind, card_hex, bits, fmt, fc, cn in self.conn.execute(
            "SELECT kind, card_hex, bit_length, format, facility_code, card_number"
            " FROM credentials WHERE holder_id = ?",
            (holder_id,),
        ):
            if kind == "card":
                out["card"] = {
                    "hex": card_hex,
                    "bit_length": bits,
                    "format": fmt,
                    "facility_code": fc,
                    "card_number": cn,
                }
            else:
                out[kind] = True
        return out

    def describe(self, holder: Holder) -> dict:
        """Everything about one holder, for ``holders show``."""
        return {
            "id": holder.id,
            "first_name": holder.first_name,
            "last_name": holder.last_name,
            "notes": holder.notes,
            "suspended": holder.suspended,
            "valid_from": holder.valid_from,
            "valid_to": holder.valid_to,
            "uses": holder.uses,
            "access_time": holder.access_time,
            "conditions": json.loads(holder.conditions) if holder.conditions else None,
            "schedule": holder.schedule,
            "group": holder.group,
            **self.credentials(holder.id),
        }

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM holders").fetchone()[0]

    def list(self, *, after_id: int = 0, limit: int = 100, search: str | None = None) -> list[Holder]:
        sql = "SELECT " + _HOLDER_COLUMNS + _HAS + " FROM holders h WHERE h.id > ?"
        args: list = [after_id]
        if search:
            sql += " AND (h.first_name LIKE ? OR h.last_name LIKE ? OR h.notes LIKE ?)"
            args += [f"%{search}%"] * 3
        sql += " ORDER BY h.id LIMIT ?"
        args.append(limit)
        return [self._holder(r) for r in self.conn.execute(sql, args)]

    # ------------------------------------------------------------ changes

    def _owner_name(self, sql: str, args: tuple) -> str | None:
        row = self.conn.execute(
            "SELECT h.first_name FROM holders h JOIN credentials c ON c.holder_id = h.id WHERE " + sql, args
        ).fetchone()
        return row[0] if row else None

    def _insert_credentials(self, holder_id: int, fields: dict, line: int | None = None) -> None:
        execute = self.conn.execute
        card = fields.get("card")
        if card is not None:
            card_hex, bits, fmt, fc, cn = card
            try:
                execute(
                    "INSERT INTO credentials (holder_id, kind, card_hex, bit_length, format, facility_code,"
                    " card_number) VALUES (?, 'card', ?, ?, ?, ?, ?)",
                    (holder_id, card_hex, bits, fmt, fc, cn),
                )
            except sqlite3.IntegrityError:
                other = None
                if card_hex is not None:
                    other = self._owner_name("c.bit_length = ? AND c.card_hex = ?", (bits, card_hex))
                if other is None and cn is not None:
                    other = self._owner_name(
                        "c.format = ? AND ifnull(c.facility_code, -1) = ? AND c.card_number = ?",
                        (fmt, -1 if fc is None else fc, cn),
                    )
                shown = f"{card_hex}/{bits} bits" if card_hex else f"{fmt} FC {fc} CN {cn}"
                raise DuplicateCredential("card", shown, other, line) from None
        pin = fields.get("pin")
        if pin is not None:
            digest = self.pin_hash(pin) if isinstance(pin, str) else pin
            try:
                execute(
                    "INSERT INTO credentials (holder_id, kind, pin_hash) VALUES (?, 'pin', ?)", (holder_id, digest)
                )
            except sqlite3.IntegrityError:
                raise DuplicateCredential(
                    "pin", None, self._owner_name("c.pin_hash = ?", (digest,)), line
                ) from None
        qr = fields.get("qr")
        if qr is not None:
            digest = self.qr_hash(qr) if isinstance(qr, str) else qr
            try:
                execute("INSERT INTO credentials (holder_id, kind, qr_hash) VALUES (?, 'qr', ?)", (holder_id, digest))
            except sqlite3.IntegrityError:
                raise DuplicateCredential(
                    "qr", None, self._owner_name("c.qr_hash = ?", (digest,)), line
                ) from None

    def _insert_holder(self, fields: dict, line: int | None = None, holder_id: int | None = None) -> int:
        try:
            cur = self.conn.execute(INSERT_HOLDER, (holder_id, *_holder_columns(fields), _epoch()))
        except sqlite3.IntegrityError:
            raise DuplicateCredential("first_name", fields["first_name"], fields["first_name"], line) from None
        return cur.lastrowid

    def add(self, **raw) -> Holder:
        """Add one holder with its credentials (one transaction)."""
        fields = normalize_holder(raw, formats=self.formats)
        with self._transaction():
            holder_id = self._insert_holder(fields)
            self._insert_credentials(holder_id, fields)
        return self.get(holder_id)

    def update(self, ident: int | str, **raw) -> Holder:
        """Change the given fields; a credential given replaces the holder's one of that kind
        (None clears it)."""
        fields = normalize_holder(raw, partial=True, formats=self.formats)
        with self._transaction():
            holder = self.get(ident)
            columns = [k for k in HOLDER_COLUMNS if k in fields]
            merged_from = fields.get("valid_from", holder.valid_from)
            merged_to = fields.get("valid_to", holder.valid_to)
            if merged_from and merged_to:
                normalize_holder({"first_name": "x", "valid_from": merged_from, "valid_to": merged_to})
            if columns:
                values = [int(fields[c]) if c == "suspended" else fields[c] for c in columns]
                if "uses" in fields:  # a new count: the uses taken so far no longer apply
                    columns.append("uses_epoch")
                    values.append(_epoch())
                try:
                    self.conn.execute(
                        "UPDATE holders SET " + ", ".join(f'"{c}" = ?' for c in columns) + " WHERE id = ?",
                        values + [holder.id],
                    )
                except sqlite3.IntegrityError:
                    raise DuplicateCredential("first_name", fields["first_name"], fields["first_name"]) from None
            for kind in ("card", "pin", "qr"):
                if kind in fields:
                    self.conn.execute("DELETE FROM credentials WHERE holder_id = ? AND kind = ?", (holder.id, kind))
            self._insert_credentials(holder.id, {k: fields[k] for k in ("card", "pin", "qr") if k in fields})
        return self.get(holder.id)

    def remove(self, ident: int | str) -> Holder:
        with self._transaction():
            holder = self.get(ident)
            self.conn.execute("DELETE FROM holders WHERE id = ?", (holder.id,))
        return holder

    def consume_use(self, holder_id: int) -> tuple[bool, int | None]:
        """Take one use: (granted, remaining); unlimited holders are (True, None).

        One statement in access.db, committed (synchronous=FULL) when this returns, so
        the relay may act: a crash afterwards cannot give the use back.  The count is
        checked in the same statement that takes the use (``taken < uses``).
        """
        row = self.conn.execute("SELECT uses, uses_epoch FROM holders WHERE id = ?", (holder_id,)).fetchone()
        if row is None:
            return False, None
        uses, epoch = row
        if uses is None:
            return True, None
        if uses <= 0:
            return False, 0
        taken = self.state.execute(
            "INSERT INTO uses_taken (holder_id, epoch, taken) VALUES (?, ?, 1)"
            " ON CONFLICT (holder_id, epoch) DO UPDATE SET taken = taken + 1 WHERE taken < ? RETURNING taken",
            (holder_id, epoch, uses),
        ).fetchall()  # fetched to the end: the statement (and its autocommit) completes here
        if not taken:
            return False, 0
        return True, uses - taken[0][0]

    def generate_pin(self, length: int, *, randbelow: Callable[[int], int] = secrets.randbelow) -> str:
        """A random PIN of ``length`` digits that no holder has yet."""
        if not PIN_MIN <= length <= PIN_MAX:
            raise InvalidField("pin_length", length, f"{PIN_MIN} to {PIN_MAX} digits")
        for _ in range(200):
            pin = "".join(str(randbelow(10)) for _ in range(length))
            if self.find_pin(pin) is None:
                return pin
        raise PinSpaceExhausted(f"no unused {length}-digit PIN found in 200 tries; use longer PINs")

    # ------------------------------------------------------------ brute-force counters

    def locked_until(self, reader: str, now: float) -> float | None:
        row = self.state.execute("SELECT until FROM reader_lockouts WHERE reader = ?", (reader,)).fetchone()
        if row is None or row[0] <= now:
            return None
        return row[0]

    def record_failure(
        self, reader: str, now: float, *, attempts: int, window: float, duration: float
    ) -> tuple[int, float | None]:
        """Count one failure at a reader; returns (failures in the window, lockout end or None).

        A lockout starts when the count reaches ``attempts``; its counters then reset.
        """
        with _Transaction(self.state):
            self.state.execute("DELETE FROM reader_failures WHERE reader = ? AND at <= ?", (reader, now - window))
            self.state.execute("INSERT INTO reader_failures (reader, at) VALUES (?, ?)", (reader, now))
            count = self.state.execute(
                "SELECT count(*) FROM reader_failures WHERE reader = ?", (reader,)
            ).fetchone()[0]
            if count < attempts:
                return count, None
            until = now + duration
            self.state.execute(
                "INSERT INTO reader_lockouts (reader, until) VALUES (?, ?)"
                " ON CONFLICT (reader) DO UPDATE SET until = excluded.until",
                (reader, until),
            )
            self.state.execute("DELETE FROM reader_failures WHERE reader = ?", (reader,))
        return count, until

    def record_passage(self, holder_id: int, direction: str, at: float) -> None:
        """A holder's last passage (anti-passback); committed at once."""
        self.state.execute("INSERT OR REPLACE INTO passages (holder_id, direction, at) VALUES (?, ?, ?)",
                           (holder_id, direction, at))

    def passages(self) -> dict[int, tuple[str, float]]:
        return {h: (d, at) for h, d, at in self.state.execute("SELECT holder_id, direction, at FROM passages")}

    def clear_failures(self, reader: str) -> None:
        self.state.execute("DELETE FROM reader_failures WHERE reader = ?", (reader,))

    # ------------------------------------------------------------ CSV

    def import_csv(
        self,
        lines: Iterable[str],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Import holders from CSV text, all or nothing (see ``import_rows``)."""
        errors: list[EntryListError] = []
        rows = parse_csv(lines, errors, hash_pin=self.pin_hash, hash_qr=self.qr_hash, formats=self.formats)
        return self.import_rows(rows, errors, progress=progress)

    def import_rows(
        self,
        rows: Iterable[tuple[int, dict | None]],
        errors: list | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Insert validated rows (``parse_csv``'s output) in one transaction.

        Each row is inserted as it comes; on any error (a row that did not validate, a
        duplicate card/PIN/QR/first name, in the file or against the list) the
        transaction rolls back at the end and ``ImportFailed`` lists each error with
        its line and field (at most 1000).
        """
        report = ImportReport()
        errors = [] if errors is None else errors
        with self._transaction():
            self._import_in_transaction(rows, errors, report, progress)
        return report

    def _import_in_transaction(self, rows, errors: list, report: ImportReport, progress=None) -> None:
        next_id = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM holders").fetchone()[0]
        batch: list[tuple[int, dict, int]] = []
        for line, fields in rows:
            report.rows += 1
            if progress is not None and report.rows % 10000 == 0:
                progress(report.rows)
            if fields is None or len(errors) >= MAX_ERRORS:
                continue
            batch.append((line, fields, next_id))
            next_id += 1
            if len(batch) >= IMPORT_BATCH:
                report.added += self._insert_batch(batch, errors)
                batch = []
        report.added += self._insert_batch(batch, errors)
        if errors:
            errors.sort(key=lambda e: getattr(e, "line", None) or 0)
            raise ImportFailed(errors, report.rows)

    def open_import(self, session: str) -> ImportSession:
        """A chunked import session staged in ``import-<session>.tmp`` in the state directory."""
        return ImportSession(self.state_dir / f"import-{session}.tmp", formats=self.formats,
                             hash_pin=self.pin_hash, hash_qr=self.qr_hash, commit=self._commit_staged)

    def _commit_staged(self, path: Path, errors: list, rows: int) -> ImportReport:
        # a connection of its own: the caller's thread is not the daemon loop's
        store = EntryList(self.state_dir, formats=self.formats, db_name=self.path.name, check=False)
        try:
            return store.import_staged(path, errors, rows)
        finally:
            store.close()

    def import_staged(self, path: Path | str, errors: list, rows: int) -> ImportReport:
        """Commit rows staged by ``stage_rows`` in ``path``: one transaction, all or nothing.

        Without earlier errors it first tries set-based ``INSERT … SELECT`` (credentials
        in index order, which keeps a million-row import fast); if a constraint fails,
        that is undone and the rows go in one by one so that each error names its line
        and field.  Any error rolls everything back (``ImportFailed``).
        """
        conn = self.conn
        report = ImportReport(rows=rows)
        conn.execute("ATTACH DATABASE ? AS staging", (str(path),))
        try:
            with self._transaction():
                if not errors:
                    base = conn.execute("SELECT coalesce(max(id), 0) FROM holders").fetchone()[0]
                    conn.execute("SAVEPOINT bulk")
                    try:
                        report.added = self._bulk_insert(base)
                        conn.execute("RELEASE bulk")
                        return report
                    except sqlite3.IntegrityError:
                        conn.execute("ROLLBACK TO bulk")
                        conn.execute("RELEASE bulk")
                staged = (
                    staged_fields(r)
                    for r in conn.execute("SELECT " + ", ".join(f'"{c}"' for c in STAGING_COLUMNS) + " FROM staging.staged ORDER BY rowid")
                )
                report.rows = 0
                self._import_in_transaction(staged, errors, report)
                report.rows = rows
                return report
        finally:
            conn.execute("DETACH DATABASE staging")

    def _bulk_insert(self, base: int) -> int:
        execute = self.conn.execute
        cur = execute(
            f"INSERT INTO holders (id, {SQL_HOLDER_COLUMNS}, uses_epoch) SELECT ? + rowid, {SQL_HOLDER_COLUMNS},"
            " random() FROM staging.staged ORDER BY rowid",
            (base,),
        )
        added = cur.rowcount
        execute(
            "INSERT INTO credentials (holder_id, kind, card_hex, bit_length, format, facility_code, card_number)"
            " SELECT ? + rowid, 'card', card_hex, bit_length, format, facility_code, card_number FROM staging.staged"
            " WHERE card_hex IS NOT NULL OR card_number IS NOT NULL ORDER BY bit_length, card_hex",
            (base,),
        )
        execute(
            "INSERT INTO credentials (holder_id, kind, pin_hash) SELECT ? + rowid, 'pin', pin_hash"
            " FROM staging.staged WHERE pin_hash IS NOT NULL ORDER BY pin_hash",
            (base,),
        )
        execute(
            "INSERT INTO credentials (holder_id, kind, qr_hash) SELECT ? + rowid, 'qr', qr_hash FROM staging.staged"
            " WHERE qr_hash IS NOT NULL ORDER BY qr_hash",
            (base,),
        )
        return added

    def _insert_batch(self, batch: list[tuple[int, dict, int]], errors: list) -> int:
        """Insert rows with executemany; if a constraint fails, redo the batch row by row
        (inside a savepoint) so that each error names its line and field."""
        if not batch:
            return 0
        conn = self.conn
        holders, cards, pins, qrs = [], [], [], []
        for _, f, hid in batch:
            holders.append((hid, *_holder_columns(f), _epoch()))
            card = f.get("card")
            if card is not None:
                cards.append((hid, *card))
            pin = f.get("pin")
            if pin is not None:
                pins.append((hid, self.pin_hash(pin) if isinstance(pin, str) else pin))
            qr = f.get("qr")
            if qr is not None:
                qrs.append((hid, self.qr_hash(qr) if isinstance(qr, str) else qr))
        conn.execute("SAVEPOINT batch")
        try:
            conn.executemany(INSERT_HOLDER, holders)
            conn.executemany(
                "INSERT INTO credentials (holder_id, kind, card_hex, bit_length, format, facility_code, card_number)"
                " VALUES (?, 'card', ?, ?, ?, ?, ?)",
                cards,
            )
            conn.executemany("INSERT INTO credentials (holder_id, kind, pin_hash) VALUES (?, 'pin', ?)", pins)
            conn.executemany("INSERT INTO credentials (holder_id, kind, qr_hash) VALUES (?, 'qr', ?)", qrs)
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            added = 0
            for line, fields, hid in batch:
                if len(errors) >= MAX_ERRORS:
                    break
                try:
                    self._insert_holder(fields, line, hid)
                    self._insert_credentials(hid, fields, line)
                    added += 1
                except EntryListError as exc:
                    _note(errors, exc)
            return added
        conn.execute("RELEASE batch")
        return len(batch)

    def export_rows(self, *, after_id: int = 0, limit: int = 1000) -> list[dict]:
        """Holders as CSV rows (DESIGN's columns; ``pin`` and ``qr`` empty: they are stored hashed)."""
        holders = self.conn.execute(
            "SELECT id, first_name, last_name, valid_from, valid_to, uses, suspended, notes, uses_epoch FROM holders"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        if not holders:
            return []
        taken = {
            (hid, epoch): n
            for hid, epoch, n in self.state.execute(
                "SELECT holder_id, epoch, taken FROM uses_taken WHERE holder_id BETWEEN ? AND ?",
                (holders[0][0], holders[-1][0]),
            )
        }
        cards: dict[int, tuple] = {}
        for holder_id, card_hex, bits, fmt, fc, cn in self.conn.execute(
            "SELECT holder_id, card_hex, bit_length, format, facility_code, card_number FROM credentials"
            " WHERE holder_id BETWEEN ? AND ? AND kind = 'card'",
            (holders[0][0], holders[-1][0]),
        ):
            cards[holder_id] = (card_hex, bits, fmt, fc, cn)
        out = []
        for holder_id, first, last, vf, vt, uses, suspended, notes, epoch in holders:
            if uses is not None:
                uses = max(0, uses - taken.get((holder_id, epoch), 0))  # what is left, as `show` says
            card_hex, bits, fmt, fc, cn = cards.get(holder_id, (None,) * 5)
            out.append(
                {
                    "id": holder_id,
                    "first_name": first,
                    "last_name": last,
                    "card": card_hex or "",
                    "bit_length": "" if bits is None else bits,
                    "format": fmt or "",
                    "facility_code": "" if fc is None else fc,
                    "card_number": "" if cn is None else cn,
                    "pin": "",
                    "qr": "",
                    "valid_from": vf or "",
                    "valid_to": vt or "",
                    "uses": "" if uses is None else uses,
                    "suspended": "true" if suspended else "false",
                    "notes": notes,
                }
            )
        return out

    # ------------------------------------------------------------ plumbing

    def _transaction(self):
        return _Transaction(self.conn)


class _Transaction:
    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def format_hex(bits: str) -> str:
    return format(int(bits, 2), "X").rjust((len(bits) + 3) // 4, "0")



def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA query_only=ON")
    return conn
