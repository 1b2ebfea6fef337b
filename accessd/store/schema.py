"""The entry list's SQLite files: DDL, versioned migrations, opening and checking.

Two files in the state directory, both WAL with ``synchronous=FULL``:

* ``entrylist.db`` — holders and credentials (``MIGRATIONS``);
* ``access.db`` — what the door writes: uses taken, failures, lockouts
  (``STATE_MIGRATIONS``).  A separate file, so that a long write to the entry list
  (a million-row import) never blocks the door.

Each migration is applied in its own transaction and counted in ``PRAGMA
user_version``.  A migration is SQL text, or a function ``step(conn, ctx)`` for the
changes that need the device key or the format library (``MigrationContext``).

A file that cannot be used (not a database, damaged, unreadable, written by a newer
accessd) raises :class:`~accessd.errors.StateFileError` naming the file and what to do.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from accessd.errors import StateFileError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MigrationContext:
    """What the migrations written in Python need: the canonical name of a card format
    (``None`` for a name the library does not know) and the device's keyed hash of a QR text."""

    canonical_format: Callable[[str], str | None]
    qr_hash: Callable[[str], bytes]


Migration = str | Callable[[sqlite3.Connection, MigrationContext], None]


def _canonical_format_names(conn: sqlite3.Connection, ctx: MigrationContext) -> None:
    """3: card formats stored by an alias or another spelling (``Kastle``, ``wiegand26``) get
    the library's name, so that decoded cards match them."""
    names = [n for (n,) in conn.execute("SELECT DISTINCT format FROM credentials WHERE format IS NOT NULL")]
    for name in names:
        canonical = ctx.canonical_format(name)
        if canonical is None:
            log.warning("entry list: card format %r is not in the format library; its cards cannot match", name)
            continue
        if canonical == name:
            continue
        for cid, holder_id in conn.execute(
            "SELECT id, holder_id FROM credentials WHERE format = ?", (name,)
        ).fetchall():
            try:
                conn.execute("UPDATE credentials SET format = ? WHERE id = ?", (canonical, cid))
            except sqlite3.IntegrityError:  # the same card is also stored under the canonical name
                log.warning("entry list: holder %d keeps card format %r: the same %s card belongs to another"
                            " holder", holder_id, name, canonical)


def _qr_texts_to_hashes(conn: sqlite3.Connection, ctx: MigrationContext) -> None:
    """4: QR texts are secrets like PINs: keep only HMAC-SHA256(device key, text).  The
    column is dropped (its rows rewritten) with ``secure_delete`` on, so no text is left in
    the file's free space."""
    conn.execute("ALTER TABLE credentials ADD COLUMN qr_hash BLOB")
    rows = conn.execute("SELECT id, qr FROM credentials WHERE qr IS NOT NULL").fetchall()
    conn.executemany("UPDATE credentials SET qr_hash = ?, qr = NULL WHERE id = ?",
                     [(ctx.qr_hash(text), cid) for cid, text in rows])
    conn.execute("DROP INDEX credentials_qr")
    conn.execute("ALTER TABLE credentials DROP COLUMN qr")
    conn.execute("CREATE UNIQUE INDEX credentials_qr ON credentials (qr_hash) WHERE qr_hash IS NOT NULL")


MIGRATIONS: tuple[Migration, ...] = (
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
    _canonical_format_names,
    _qr_texts_to_hashes,
    # 5: a holder's schedule and access group (names of the config's [schedules.*] / [groups.*])
    """
    ALTER TABLE holders ADD COLUMN schedule TEXT;
    ALTER TABLE holders ADD COLUMN "group" TEXT;
    """,
)

# The indexes of the credentials table (a bulk import may drop and rebuild them).
CREDENTIAL_INDEXES: dict[str, str] = {
    "credentials_card_raw":
        "CREATE UNIQUE INDEX credentials_card_raw ON credentials (bit_length, card_hex) WHERE card_hex IS NOT NULL",
    "credentials_card_decoded":
        "CREATE UNIQUE INDEX credentials_card_decoded ON credentials (format, ifnull(facility_code, -1), card_number)"
        " WHERE card_number IS NOT NULL",
    "credentials_pin": "CREATE UNIQUE INDEX credentials_pin ON credentials (pin_hash) WHERE pin_hash IS NOT NULL",
    "credentials_qr": "CREATE UNIQUE INDEX credentials_qr ON credentials (qr_hash) WHERE qr_hash IS NOT NULL",
    "credentials_holder": "CREATE INDEX credentials_holder ON credentials (holder_id)",
}

STATE_MIGRATIONS: tuple[Migration, ...] = (
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


def connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA secure_delete=ON")  # a removed credential leaves no bytes behind
    return conn


def migrate(
    conn: sqlite3.Connection,
    target: int | None = None,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    ctx: MigrationContext | None = None,
) -> int:
    """Apply the migrations the database lacks; return the resulting version."""
    target = len(migrations) if target is None else target
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise StateFileError(
            _filename(conn),
            f"schema version {version} is newer than this accessd knows ({len(migrations)})",
            "upgrade accessd, or restore a backup made by this version",
        )
    while version < target:
        step = migrations[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if callable(step):
                if ctx is None:
                    raise ValueError(f"migration {version + 1} needs a MigrationContext")
                step(conn, ctx)
            else:
                for statement in step.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def _filename(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return row[2] if row else "?"


REMEDY_DAMAGED = ("restore it from a backup (accessd-cli restore FILE), or move it aside to start with an"
                  " empty one")


def remedy_for(exc: BaseException, path: Path) -> str:
    """What to do about a state file that failed with ``exc``."""
    text = str(exc).lower()
    if isinstance(exc, PermissionError) or "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"make {path.parent} and its files writable by the daemon's user (systemd-tmpfiles --create)"
    if "locked" in text:
        return "another process holds it: stop it and start accessd again"
    return REMEDY_DAMAGED


def open_checked(
    path: Path,
    migrations: tuple[Migration, ...],
    ctx: MigrationContext | None = None,
    *,
    check: bool = True,
) -> tuple[sqlite3.Connection, int]:
    """Open ``path``, check it (``PRAGMA quick_check``) and migrate it: (connection, version).

    After a migration the WAL is checkpointed and truncated, so what a migration replaced
    (QR texts) is in neither file.  Any failure is a ``StateFileError`` naming the file and
    what to do.
    """
    conn = None
    try:
        conn = connect(path)
        if check:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                detail = " ".join("; ".join(problems).split())[:300]  # one line
                raise StateFileError(str(path), f"damaged (quick_check: {detail})", REMEDY_DAMAGED)
        before = conn.execute("PRAGMA user_version").fetchone()[0]
        version = migrate(conn, migrations=migrations, ctx=ctx)
        if version != before:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except StateFileError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.DatabaseError, OSError) as exc:
        if conn is not None:
            conn.close()
        raise StateFileError(str(path), f"cannot be used ({' '.join(str(exc).split())})",
                             remedy_for(exc, path)) from None
    return conn, version
