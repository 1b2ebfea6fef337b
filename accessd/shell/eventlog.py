"""The event log: a ring of events in SQLite (WAL), written in batches by one thread.

``append`` is cheap and never blocks on the disk: it encodes the event's row (JSON) in
the caller's thread, and the writer thread commits whatever is pending every
``flush_interval`` seconds (at most 1 s), in one transaction with ``synchronous=FULL``, so an accepted event is on disk within that interval and a kill -9
or a power cut loses at most the events of the last interval.  The file is checked with
``PRAGMA quick_check`` when opened; a corrupt file is moved aside (kept for
inspection) and a fresh log is started.

A batch that cannot be written (a full SD card, an I/O error) is kept in memory and
retried with the next one, up to ``backlog`` events; past that the oldest are dropped
and counted.  Once a write succeeds again, ``on_lost(first, last, count)`` is called
(writer thread) with the seq range that never reached the disk, so the daemon can
record the gap as ``system.events_lost``.

The writer runs almost no Python: it takes the ready rows and hands them to SQLite,
which releases the GIL while it steps and syncs.  Encoding a batch in the writer held
the GIL for ~1 ms per 170 events (5 ms at worst, one switch interval), and the loop
waited for it when a card came in meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from accessd.errors import LogCorrupt
from accessd.events import Event

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq  INTEGER PRIMARY KEY,
    ts   REAL NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""
PAGE_MAX = 10_000


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


class EventLog:
    def __init__(self, path: str | Path, *, capacity: int = 50_000, flush_interval: float = 0.5,
                 backlog: int = 10_000) -> None:
        self.path = Path(path)
        self.capacity = capacity
        self.flush_interval = flush_interval
        self.backlog = backlog  # events kept in memory while writes fail
        self._pending: list[tuple] = []  # rows (seq, ts, type, data) ready to insert
        self._unwritten: list[tuple] = []  # rows of failed writes, retried first (writer thread only)
        self._lost: tuple[int, int, int] | None = None  # (first seq, last seq, count) dropped past the backlog
        self.on_lost = None  # callable(first, last, count), writer thread, after a write succeeds again
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flushed = threading.Condition(self._lock)
        self._appended = 0  # events appended, ever (guarded by _lock)
        self._written = 0  # of those, committed
        self._stop = False
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self.last_seq = 0
        self.write_error: str | None = None
        self.on_commit: list = []  # callables run by the writer thread after each committed batch

    # -- opening -----------------------------------------------------------------
    def open(self) -> LogCorrupt | None:
        """Open (creating) the log and start the writer; report a corrupt file found."""
        corrupt = None
        try:
            self._db = self._open_checked()
        except sqlite3.DatabaseError as exc:
            kept = self._move_aside()
            corrupt = LogCorrupt(str(self.path), str(exc), kept)
            log.error("%s", corrupt)
            self._db = self._open_checked()
        self.last_seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        self._thread = threading.Thread(target=self._run, name="eventlog", daemon=True)
        self._thread.start()
        return corrupt

    def _open_checked(self) -> sqlite3.Connection:
        db = _connect(self.path)
        try:
            (result,) = db.execute("PRAGMA quick_check").fetchone()
            if result != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result}")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _move_aside(self) -> str:
        kept = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, f"{kept}{suffix}")
        return kept

    # -- writing -----------------------------------------------------------------
    def append(self, event: Event, data: dict | None = None) -> None:
        """Queue an event for the next batch (any thread; never touches the disk).

        ``data`` is ``event.to_json()`` when the caller has it already.  The row is
        encoded here, so the writer thread holds the GIL only for moments."""
        row = (event.seq, event.ts, event.type,
               json.dumps(event.to_json() if data is None else data, separators=(",", ":")))
        with self._lock:
            self._pending.append(row)
            self._appended += 1

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything appended so far is committed."""
        with self._lock:
            target = self._appended
            if self._written >= target:
                return True
            self._wake.set()
            return self._flushed.wait_for(lambda: self._written >= target or self._stop, timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending, []
                stop = self._stop
            rows = self._unwritten + batch if self._unwritten else batch
            ok = self._write(rows) if rows else True
            if ok:
                self._unwritten = []
                lost, self._lost = self._lost, None
                if lost is not None and self.on_lost is not None:
                    try:
                        self.on_lost(*lost)
                    except Exception:  # the writer must outlive a failing reporter (a closed loop)
                        log.exception("reporting lost events %s failed", lost)
            else:
                self._keep(rows)
            with self._lock:
                self._written += len(batch)  # written or kept for a retry: flush() does not wait on a full disk
                self._flushed.notify_all()
            if batch and ok:
                for fn in self.on_commit:
                    fn()
            if stop and not self._pending:
                return

    def _keep(self, rows: list[tuple]) -> None:
        """Rows whose write failed: kept for the next attempt, the oldest dropped past the backlog."""
        drop = len(rows) - self.backlog
        if drop > 0:
            first, last = rows[0][0], rows[drop - 1][0]
            if self._lost is not None:
                first, count = self._lost[0], self._lost[2] + drop
            else:
                count = drop
            self._lost = (first, last, count)
            log.error("event log: %d events dropped while the disk refuses writes (seq %d–%d)", count, first, last)
            rows = rows[drop:]
        self._unwritten = rows

    @property
    def unwritten(self) -> int:
        """Events held in memory because the disk refused them."""
        return len(self._unwritten)

    def _write(self, rows: list[tuple]) -> bool:
        try:
            db = self._db
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO events (seq, ts, type, data) VALUES (?, ?, ?, ?)", rows)
            db.execute("DELETE FROM events WHERE seq <= ?", (rows[-1][0] - self.capacity,))
            db.execute("COMMIT")
            self.write_error = None
            return True
        except sqlite3.Error as exc:  # disk full, I/O error: keep running, say so, retry
            if self.write_error is None:
                log.error("event log write failed, %d events kept in memory to retry: %s", len(rows), exc)
            self.write_error = str(exc)
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            return False

    def close(self) -> None:
        """Write what is pending, stop the writer and close the file."""
        if self._thread is None:
            return
        with self._lock:
            self._stop = True
        self._wake.set()
        self._thread.join(10)
        self._thread = None
        self._db.close()

    # -- reading -----------------------------------------------------------------
    def query(
        self,
        *,
        after_seq: int = 0,
        max_seq: int | None = None,
        since: float | None = None,
        until: float | None = None,
        type_glob: str | None = None,
        search: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        """Events in ascending order, committed ones only (call :meth:`flush` first)."""
        sql = ["SELECT data FROM events WHERE seq > ?"]
        args: list = [after_seq]
        for clause, value in (
            ("seq <= ?", max_seq),
            ("ts >= ?", since),
            ("ts < ?", until),
            ("type GLOB ?", type_glob),
        ):
            if value is not None:
                sql.append(clause)
                args.append(value)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql.append("data LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        query = " AND ".join(sql) + " ORDER BY seq LIMIT ?"
        args.append(max(1, min(limit, PAGE_MAX)))
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            return [json.loads(row[0]) for row in db.execute(query, args)]
        finally:
            db.close()

    def count(self) -> int:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            db.close()
