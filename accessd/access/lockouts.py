"""The lockout state on disk, so that a restart does not reset a brute-force lockout.

The policy counts failures and lockouts on the monotonic clock (a wall-clock step never
lengthens them while the daemon runs).  On disk only wall time means anything across a
reboot, so failures and lockout ends are stored as Unix times in ``access.db``
(``reader_failures``, ``reader_lockouts``) and read back *clamped*: a stored deadline
never outlasts its own duration from now, whatever the clock did in between (a Pi
without an RTC boots in 1970 or in the past, then NTP steps it).  A failure "in the
future" counts as now.

A record that cannot be written (a full disk) is logged; the lockout holds in memory.
"""

from __future__ import annotations

import logging
import sqlite3

from accessd.access.policy import ClearFailures, RecordFailure, RecordLockout

log = logging.getLogger(__name__)


class LockoutRecord:
    def __init__(self, conn: sqlite3.Connection, *, window: float, duration: float) -> None:
        self.conn = conn
        self.window = window
        self.duration = duration
        self.write_error: str | None = None

    def load(self, *, now: float, wall: float) -> tuple[dict[str, list[float]], dict[str, float]]:
        """(failures, lockouts) on the monotonic clock ``now`` that corresponds to ``wall``."""
        failures: dict[str, list[float]] = {}
        for reader, at in self.conn.execute("SELECT reader, at FROM reader_failures ORDER BY at"):
            age = min(max(wall - at, 0.0), self.window)  # a failure from the future happened now
            if age < self.window:
                failures.setdefault(reader, []).append(now - age)
        lockouts: dict[str, float] = {}
        for reader, until in self.conn.execute("SELECT reader, until FROM reader_lockouts"):
            left = min(until - wall, self.duration)  # never longer than a lockout lasts from now
            if left > 0:
                lockouts[reader] = now + left
        for q in failures.values():
            q.sort()
        return failures, lockouts

    def apply(self, action: RecordFailure | ClearFailures | RecordLockout, *, wall: float) -> None:
        try:
            if isinstance(action, RecordFailure):
                self.conn.execute("DELETE FROM reader_failures WHERE reader = ? AND (at <= ? OR at > ?)",
                                  (action.reader, wall - self.window, wall))
                self.conn.execute("INSERT INTO reader_failures (reader, at) VALUES (?, ?)", (action.reader, wall))
            elif isinstance(action, ClearFailures):
                self.conn.execute("DELETE FROM reader_failures WHERE reader = ?", (action.reader,))
            else:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    self.conn.execute(
                        "INSERT INTO reader_lockouts (reader, until) VALUES (?, ?)"
                        " ON CONFLICT (reader) DO UPDATE SET until = excluded.until",
                        (action.reader, wall + action.seconds))
                    self.conn.execute("DELETE FROM reader_failures WHERE reader = ?", (action.reader,))
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
            self.write_error = None
        except sqlite3.Error as exc:  # the lockout holds in memory; only the record is lost
            self.write_error = f"{type(action).__name__} at {action.reader}: {exc}"
            log.error("cannot record the lockout state (%s); it holds in memory", self.write_error)
