"""The entry list: holders and their credentials in SQLite.

One file, ``entrylist.db`` in the state directory, written by the daemon only.
WAL journal with ``synchronous=FULL``: a committed transaction (for example the
one that consumes a use before the relay acts) survives a power cut.

Schema changes are versioned migrations (``MIGRATIONS``, tracked in
``PRAGMA user_version``), each applied in its own transaction.

Lookups go through unique indexes:

* card by (bit_length, hex) — the raw value as read;
* card by (format, facility code, card number) — holders enrolled from a badge;
* PIN by HMAC-SHA256(device secret, PIN) — the PIN itself is never stored; the
  secret is 32 random bytes in ``pin.key`` (mode 0600) next to the database;
* QR by its text.

A card, PIN or QR code belongs to at most one holder; a second use is a
``DuplicateCredential`` naming the field and the holder that has it.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
import os
import re
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from accessd.access.decision import Holder, window_end, window_start
from accessd.errors import (
    DuplicateCredential,
    EntryListError,
    HolderNotFound,
    ImportFailed,
    InvalidField,
    PinSpaceExhausted,
)
from accessd.protocols.credential import Credential

CSV_COLUMNS = (
    "first_name",
    "last_name",
    "card",
    "bit_length",
    "format",
    "facility_code",
    "card_number",
    "pin",
    "qr",
    "valid_from",
    "valid_to",
    "uses",
    "suspended",
    "notes",
)
# Accepted on import in addition to CSV_COLUMNS (not exported: the export keeps DESIGN's columns).
CSV_EXTRA_COLUMNS = ("access_time", "schedule", "group")

# The intercom's names for HID formats; stored and matched by the HID designator.
FORMAT_ALIASES = {
    "wiegand26": "H10301",
    "wiegand34": "H10306",
    "wiegand37": "H10302",
    "wiegand37facilitycode": "H10304",
    "h10301": "H10301",
    "h10306": "H10306",
    "h10302": "H10302",
    "h10304": "H10304",
    "c1k35s": "C1k35s",
    "c1k48s": "C1k48s",
}

PIN_MIN, PIN_MAX = 4, 16
MAX_ERRORS = 1000  # an import stops listing errors here
IMPORT_BATCH = 1000  # rows per executemany in an import
SECRET_FILE = "pin.key"
DB_FILE = "entrylist.db"
STATE_FILE = "access.db"


# (defined in accessd/errors.py, the package's one errors module; re-exported here)


# ---------------------------------------------------------------- schema

MIGRATIONS: tuple[str, ...] = (
    # 1: holders and credentials
    """
    CREATE TABLE holders (
        id INTEGER PRIMARY KEY,
        first_name TEXT NOT NULL UNIQUE,
        last_name TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        suspended INTEGER NOT NULL DEFAULT 0,
        valid_from TEXT,
        valid_to TEXT,
        uses INTEGER CHECK (uses IS NULL OR uses >= 0),
        access_time REAL,
        conditions TEXT
    );
    CREATE TABLE credentials (
        id INTEGER PRIMARY KEY,
        holder_id INTEGER NOT NULL REFERENCES holders(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('card', 'pin', 'qr')),
        card_hex TEXT,
        bit_length INTEGER,
        format TEXT,
        facility_code INTEGER,
        card_number INTEGER,
        pin_hash BLOB,
        qr TEXT
    );
    CREATE UNIQUE INDEX credentials_card_raw ON credentials (bit_length, card_hex)
        WHERE card_hex IS NOT NULL;
    CREATE UNIQUE INDEX credentials_card_decoded
        ON credentials (format, ifnull(facility_code, -1), card_number)
        WHERE card_number IS NOT NULL;
    CREATE UNIQUE INDEX credentials_pin ON credentials (pin_hash) WHERE pin_hash IS NOT NULL;
    CREATE UNIQUE INDEX credentials_qr ON credentials (qr) WHERE qr IS NOT NULL;
    CREATE INDEX credentials_holder ON credentials (holder_id);
    """,
    # 2: uses are counted in access.db against an epoch that changes whenever uses is set
    """
    ALTER TABLE holders ADD COLUMN uses_epoch INTEGER;
    UPDATE holders SET uses_epoch = random();
    """,
    # 3: a holder's schedule and access group (names of the config's [schedules.*] / [groups.*])
    """
    ALTER TABLE holders ADD COLUMN schedule TEXT;
    ALTER TABLE holders ADD COLUMN access_group TEXT;
    """,
)

# access.db: what the door writes (uses taken, failures, lockouts).  A separate file, so
# that a long write to the entry list (a million-row import) never blocks the door.
STATE_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE uses_taken (
        holder_id INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        taken INTEGER NOT NULL,
        PRIMARY KEY (holder_id, epoch)
    ) WITHOUT ROWID;
    CREATE TABLE reader_failures (
        id INTEGER PRIMARY KEY,
        reader TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX reader_failures_reader ON reader_failures (reader, at);
    CREATE TABLE reader_lockouts (
        reader TEXT PRIMARY KEY,
        until REAL NOT NULL
    );
    """,
    # 2: anti-passback: each holder's last passage (direction, Unix time)
    """
    CREATE TABLE passages (
        holder_id INTEGER PRIMARY KEY,
        direction TEXT NOT NULL,
        at REAL NOT NULL
    );
    """,
)


# ---------------------------------------------------------------- field validation


def canonical_format(name: str) -> str:
    """The stored name of a card format (HID designator for the intercom's aliases)."""
    return FORMAT_ALIASES.get(name.strip().lower(), name.strip())


def parse_time(text: object, field: str) -> str:
    """Validate an ISO 8601 date or date-time; return it normalised (seconds resolution)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidField(field, text, "an ISO 8601 date or date-time (2026-03-01, 2026-03-01T18:00+01:00)")
    value = text.strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField(
            field, text, "an ISO 8601 date or date-time (2026-03-01, 2026-03-01T18:00+01:00)"
        ) from None
    return parsed.replace(microsecond=0).isoformat()


def _int(value: object, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise InvalidField(field, value, f"a whole number {lo}–{hi}")
    if isinstance(value, int):
        n = value
    else:
        try:
            n = int(str(value).strip(), 10)
        except ValueError:
            raise InvalidField(field, value, f"a whole number {lo}–{hi}") from None
    if not lo <= n <= hi:
        raise InvalidField(field, value, f"a whole number {lo}–{hi}")
    return n


def _bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n", ""):
        return False
    raise InvalidField(field, value, "true/false (or 1/0, yes/no)")


_CONTROL = {
    "\t": re.compile("[\x00-\x08\x0a-\x1f\x7f]"),
    "\t\r\n": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"),
}


def _text(value: object, field: str, limit: int = 200, allowed: str = "\t") -> str:
    if not isinstance(value, str):
        raise InvalidField(field, value, "text")
    if len(value) > limit or _CONTROL[allowed].search(value):
        raise InvalidField(field, value, f"text of at most {limit} printable characters")
    return value


def normalize_holder(raw: dict, *, partial: bool = False) -> dict:
    """Validate holder fields (from the CLI, the socket or a CSV row).

    Returns a dict with only the keys given.  Empty strings and None mean "not set"
    (for ``update``: cleared).  Credential fields come back as ``card`` (a tuple
    (hex, bit_length, format, fc, cn) or None), ``pin`` (digits or None), ``qr``.
    """
    out: dict = {}
    given = raw
    if not raw.keys() <= HOLDER_KEYS:
        name = sorted(set(raw) - HOLDER_KEYS)[0]
        raise InvalidField(name, raw[name], f"one of the holder fields {sorted(HOLDER_KEYS)}")

    filled = {k for k, v in given.items() if v is not None and (v.__class__ is not str or v.strip())}

    def blank(key: str) -> bool:
        return key not in filled

    if "first_name" in given or not partial:
        if blank("first_name"):
            raise InvalidField("first_name", given.get("first_name"), "a non-empty name")
        out["first_name"] = _text(given["first_name"], "first_name").strip()
    if "last_name" in given:
        out["last_name"] = "" if blank("last_name") else _text(given["last_name"], "last_name").strip()
    if "notes" in given:
        out["notes"] = "" if blank("notes") else _text(given["notes"], "notes", 2000, "\t\r\n")
    if "suspended" in given:
        out["suspended"] = _bool(given["suspended"], "suspended") if not blank("suspended") else False
    for key in ("valid_from", "valid_to"):
        if key in given:
            out[key] = None if blank(key) else parse_time(given[key], key)
    if "uses" in given:
        out["uses"] = None if blank("uses") else _int(given["uses"], "uses", 0, 2**31 - 1)
    if "access_time" in given:
        if blank("access_time"):
            out["access_time"] = None
        else:
            try:
                t = float(given["access_time"])
            except (TypeError, ValueError):
                t = math.nan
            if not 1 <= t <= 3600:
                raise InvalidField("access_time", given["access_time"], "a number of seconds 1–3600")
            out["access_time"] = t
    if "conditions" in given:
        if blank("conditions"):
            out["conditions"] = None
        else:
            value = given["conditions"]
            try:
                value = json.loads(value) if isinstance(value, str) else value
            except ValueError:
                raise InvalidField("conditions", given["conditions"], "a JSON object") from None
            if not isinstance(value, dict):
                raise InvalidField("conditions", given["conditions"], "a JSON object")
            out["conditions"] = json.dumps(value, sort_keys=True)
    for key in ("schedule", "group"):
        if key in given:
            if blank(key):
                out[key] = None
            elif not _NAME.fullmatch(str(given[key]).strip()):
                raise InvalidField(key, given[key], f"the name of a configured {key} (letters, digits, '.', '-', '_')")
            else:
                out[key] = str(given[key]).strip()
    if out.get("valid_from") and out.get("valid_to"):
        # compare both in one zone: the order does not depend on which zone the device has
        zone = UTC
        if window_end(out["valid_to"], zone) <= window_start(out["valid_from"], zone):
            raise InvalidField("valid_to", given["valid_to"], f"a time after valid_from {out['valid_from']}")

    card_keys = ("card", "bit_length", "format", "facility_code", "card_number")
    if any(k in given for k in card_keys):
        out["card"] = _normalize_card(given)
    if "pin" in given:
        if blank("pin"):
            out["pin"] = None
        else:
            pin = str(given["pin"]).strip()
            if not pin.isdigit() or not PIN_MIN <= len(pin) <= PIN_MAX:
                raise InvalidField("pin", "(hidden)", f"{PIN_MIN} to {PIN_MAX} decimal digits")
            out["pin"] = pin
    if "qr" in given:
        out["qr"] = None if blank("qr") else _text(given["qr"], "qr", 1000)
    return out


HOLDER_COLUMNS = (
    "first_name", "last_name", "notes", "suspended", "valid_from", "valid_to", "uses", "access_time", "conditions",
    "schedule", "group",
)
_NAME = re.compile(r"[\w.-]{1,64}", re.ASCII)
_SQL_NAMES = {"group": "access_group"}  # GROUP is an SQL keyword
HOLDER_KEYS = frozenset((*HOLDER_COLUMNS, "card", "bit_length", "format", "facility_code", "card_number", "pin", "qr"))


def _normalize_card(given: dict) -> tuple | None:
    def val(k: str):
        v = given.get(k)
        return None if v is None or (v.__class__ is str and not v.strip()) else v

    hex_value, bits, fmt, fc, cn = val("card"), val("bit_length"), val("format"), val("facility_code"), val("card_number")
    if hex_value is None and bits is None and fmt is None and fc is None and cn is None:
        return None
    card_hex = None
    bit_length = None
    if hex_value is not None or bits is not None:
        if hex_value is None:
            raise InvalidField("card", None, "the card's hex value with bit_length")
        if bits is None:
            raise InvalidField("bit_length", None, "the card's bit length with card")
        bit_length = _int(bits, "bit_length", 1, 1024)
        text = str(hex_value).strip()
        if text[:2].lower() == "0x":
            text = text[2:]
        try:
            number = int(text, 16)
        except ValueError:
            raise InvalidField("card", hex_value, "hexadecimal digits") from None
        if number >> bit_length:
            raise InvalidField("card", hex_value, f"a value that fits in {bit_length} bits")
        card_hex = format(number, "X").rjust((bit_length + 3) // 4, "0")  # as Credential.hex
    fmt_name = None
    fcn = cnn = None
    if fmt is not None or fc is not None or cn is not None:
        if fmt is None:
            raise InvalidField("format", None, "a card format name with facility_code/card_number")
        fmt_name = canonical_format(_text(fmt, "format", 40))
        if cn is None:
            raise InvalidField("card_number", None, f"the card number of a {fmt_name} card")
        cnn = _int(cn, "card_number", 0, 2**63 - 1)
        fcn = None if fc is None else _int(fc, "facility_code", 0, 2**31 - 1)
    return (card_hex, bit_length, fmt_name, fcn, cnn)


# ---------------------------------------------------------------- the store


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    added: int = 0
    errors: list = field(default_factory=list)


def load_secret(path: Path) -> bytes:
    """The per-device PIN key: created once (32 random bytes, mode 0600), then reused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
        data = path.read_bytes()
        if len(data) != 32:
            raise EntryListError(f"{path}: expected a 32-byte PIN key, found {len(data)} bytes") from None
        return data
    try:
        key = secrets.token_bytes(32)
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def migrate(
    conn: sqlite3.Connection, target: int | None = None, migrations: tuple[str, ...] = MIGRATIONS
) -> int:
    """Apply the migrations the database lacks; return the resulting version."""
    target = len(migrations) if target is None else target
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise EntryListError(
            f"entry list schema version {version} is newer than this accessd knows ({len(migrations)})"
        )
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


_HOLDER_COLUMNS = (
    "h.id, h.first_name, h.last_name, h.notes, h.suspended, h.valid_from, h.valid_to, h.uses, h.access_time,"
    " h.conditions, h.uses_epoch, h.schedule, h.access_group"
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
    "INSERT INTO holders (id, first_name, last_name, notes, suspended, valid_from, valid_to, uses,"
    " access_time, conditions, schedule, access_group, uses_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _holder_columns(f: dict) -> tuple:
    """A holder's own columns, in INSERT_HOLDER's and the staging table's order."""
    return (
        f["first_name"], f.get("last_name", ""), f.get("notes", ""), int(f.get("suspended", False)),
        f.get("valid_from"), f.get("valid_to"), f.get("uses"), f.get("access_time"), f.get("conditions"),
        f.get("schedule"), f.get("group"),
    )


class EntryList:
    """The entry list of one door.  Use from one thread (the daemon's loop)."""

    def __init__(self, state_dir: Path | str, *, db_name: str = DB_FILE) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.path = self.state_dir / db_name
        self.secret = load_secret(self.state_dir / SECRET_FILE)
        self.conn = connect(self.path)
        self.version = migrate(self.conn)
        self.state = connect(self.state_dir / STATE_FILE)
        migrate(self.state, migrations=STATE_MIGRATIONS)
        q = "SELECT " + _HOLDER_COLUMNS + _HAS + " FROM holders h WHERE h.id = "
        self._sql_raw = q + "(SELECT holder_id FROM credentials WHERE bit_length = ? AND card_hex = ?)"
        self._sql_decoded = (
            q + "(SELECT holder_id FROM credentials WHERE format = ? AND ifnull(facility_code, -1) = ?"
            " AND card_number = ? AND card_number IS NOT NULL)"
        )
        self._sql_pin = q + "(SELECT holder_id FROM credentials WHERE pin_hash = ? AND pin_hash IS NOT NULL)"
        self._sql_qr = q + "(SELECT holder_id FROM credentials WHERE qr = ? AND qr IS NOT NULL)"
        self._sql_id = q + "?"

    def close(self) -> None:
        self.conn.close()
        self.state.close()

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
        return hmac.new(self.secret, pin.encode("ascii"), hashlib.sha256).digest()

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
            row = execute(self._sql_decoded, (canonical_format(format), fc, card_number)).fetchone()
            if row:
                return self._holder(row)
        return None

    def find_pin(self, pin: str) -> Holder | None:
        row = self.conn.execute(self._sql_pin, (self.pin_hash(pin),)).fetchone()
        return self._holder(row) if row else None

    def find_qr(self, qr: str) -> Holder | None:
        row = self.conn.execute(self._sql_qr, (qr,)).fetchone()
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
        """The holder's credentials for display (a PIN shows only as set)."""
        out: dict = {"card": None, "pin": False, "qr": None}
        for kind, card_hex, bits, fmt, fc, cn, qr in self.conn.execute(
            "SELECT kind, card_hex, bit_length, format, facility_code, card_number, qr"
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
            elif kind == "pin":
                out["pin"] = True
            else:
                out["qr"] = qr
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
            try:
                execute("INSERT INTO credentials (holder_id, kind, qr) VALUES (?, 'qr', ?)", (holder_id, qr))
            except sqlite3.IntegrityError:
                raise DuplicateCredential("qr", qr, self._owner_name("c.qr = ?", (qr,)), line) from None

    def _insert_holder(self, fields: dict, line: int | None = None, holder_id: int | None = None) -> int:
        try:
            cur = self.conn.execute(INSERT_HOLDER, (holder_id, *_holder_columns(fields), _epoch()))
        except sqlite3.IntegrityError:
            raise DuplicateCredential("first_name", fields["first_name"], fields["first_name"], line) from None
        return cur.lastrowid

    def add(self, **raw) -> Holder:
        """Add one holder with its credentials (one transaction)."""
        fields = normalize_holder(raw)
        with self._transaction():
            holder_id = self._insert_holder(fields)
            self._insert_credentials(holder_id, fields)
        return self.get(holder_id)

    def update(self, ident: int | str, **raw) -> Holder:
        """Change the given fields; a credential given replaces the holder's one of that kind
        (None clears it)."""
        fields = normalize_holder(raw, partial=True)
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
                        "UPDATE holders SET " + ", ".join(f"{_SQL_NAMES.get(c, c)} = ?" for c in columns) + " WHERE id = ?",
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
        return self.import_rows(parse_csv(lines, errors, hash_pin=self.pin_hash), errors, progress=progress)

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
                    _staged_fields(r)
                    for r in conn.execute("SELECT " + ", ".join(STAGING_COLUMNS) + " FROM staging.staged ORDER BY rowid")
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
            "INSERT INTO holders (id, first_name, last_name, notes, suspended, valid_from, valid_to, uses,"
            " access_time, conditions, schedule, access_group, uses_epoch) SELECT ? + rowid, first_name, last_name,"
            " notes, suspended, valid_from, valid_to, uses, access_time, conditions, schedule, access_group, random()"
            " FROM staging.staged ORDER BY rowid",
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
            "INSERT INTO credentials (holder_id, kind, qr) SELECT ? + rowid, 'qr', qr FROM staging.staged"
            " WHERE qr IS NOT NULL ORDER BY qr",
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
                qrs.append((hid, qr))
        conn.execute("SAVEPOINT batch")
        try:
            conn.executemany(INSERT_HOLDER, holders)
            conn.executemany(
                "INSERT INTO credentials (holder_id, kind, card_hex, bit_length, format, facility_code, card_number)"
                " VALUES (?, 'card', ?, ?, ?, ?, ?)",
                cards,
            )
            conn.executemany("INSERT INTO credentials (holder_id, kind, pin_hash) VALUES (?, 'pin', ?)", pins)
            conn.executemany("INSERT INTO credentials (holder_id, kind, qr) VALUES (?, 'qr', ?)", qrs)
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
        """Holders as CSV rows (DESIGN's columns; ``pin`` empty since PINs are stored hashed)."""
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
        qrs: dict[int, str] = {}
        for holder_id, kind, card_hex, bits, fmt, fc, cn, qr in self.conn.execute(
            "SELECT holder_id, kind, card_hex, bit_length, format, facility_code, card_number, qr FROM credentials"
            " WHERE holder_id BETWEEN ? AND ? AND kind != 'pin'",
            (holders[0][0], holders[-1][0]),
        ):
            if kind == "card":
                cards[holder_id] = (card_hex, bits, fmt, fc, cn)
            else:
                qrs[holder_id] = qr
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
                    "qr": qrs.get(holder_id, ""),
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


def _note(errors: list, exc: EntryListError) -> None:
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
            _note(errors, InvalidField("row", ",".join(row)[:80], f"{width} columns as in the header", line))
            yield line, None
            continue
        raw = {k: v for k, v in zip(header, row, strict=True) if v or k == "first_name"}
        try:
            fields = normalize_holder(raw)
        except InvalidField as exc:
            _note(errors, InvalidField(exc.field, exc.value, exc.expected, line))
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
    "first_name",
    "last_name",
    "notes",
    "suspended",
    "valid_from",
    "valid_to",
    "uses",
    "access_time",
    "conditions",
    "schedule",
    "access_group",
    "card_hex",
    "bit_length",
    "format",
    "facility_code",
    "card_number",
    "pin_hash",
    "qr",
)
STAGING_SCHEMA = "CREATE TABLE IF NOT EXISTS staged (" + ", ".join(STAGING_COLUMNS) + ")"


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
        out.append((line, *_holder_columns(f), *card, pin, f.get("qr")))
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO staged VALUES ({', '.join('?' * len(STAGING_COLUMNS))})", out)
    conn.execute("COMMIT")


def _staged_fields(row: tuple) -> tuple[int, dict]:
    (line, first, last, notes, suspended, vf, vt, uses, at, cond, sched, group, card_hex, bits, fmt, fc, cn, pin,
     qr) = row
    fields = {
        "first_name": first,
        "last_name": last,
        "notes": notes,
        "suspended": bool(suspended),
        "valid_from": vf,
        "valid_to": vt,
        "uses": uses,
        "access_time": at,
        "conditions": cond,
        "schedule": sched,
        "group": group,
    }
    if card_hex is not None or cn is not None:
        fields["card"] = (card_hex, bits, fmt, fc, cn)
    if pin is not None:
        fields["pin"] = pin
    if qr is not None:
        fields["qr"] = qr
    return line, fields
