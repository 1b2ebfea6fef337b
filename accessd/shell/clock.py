"""Whether the system clock is synchronised: the kernel's ``adjtimex`` (read only).

``timedatectl``'s "System clock synchronized" is systemd's ``ntp_synced()``: ``adjtimex``
with no modes set, synchronised when it does not return ``TIME_ERROR`` and the kernel's
maximum error is below 16 s (``STA_UNSYNC`` alone is not trusted: it is also set to keep
the kernel off the RTC).  Wall-clock time matters for validity windows and schedules;
timers never use it (they are monotonic), so a step never extends an unlock or a lockout.
"""

from __future__ import annotations

import ctypes
import ctypes.util

TIME_ERROR = 5
STA_UNSYNC = 0x0040
MAXERROR_SYNCED = 16_000_000  # µs, as systemd's ntp_synced()
_STATES = {0: "ok", 1: "insert_leap", 2: "delete_leap", 3: "leap_in_progress", 4: "leap_done", 5: "error"}


class Timex(ctypes.Structure):
    """``struct timex`` (linux/timex.h) on LP64 Linux."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def read_timex(adjtimex=None) -> tuple[int, Timex]:
    """(return code, struct) of ``adjtimex`` with no modes: it changes nothing."""
    if adjtimex is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        adjtimex = libc.adjtimex
    tx = Timex()
    rc = adjtimex(ctypes.byref(tx))
    if rc < 0:
        raise OSError(ctypes.get_errno(), "adjtimex failed")
    return rc, tx


def synchronized(rc: int, tx: Timex) -> bool:
    return rc != TIME_ERROR and tx.maxerror < MAXERROR_SYNCED


def clock_status(adjtimex=None) -> dict:
    """``status.clock``: ``synchronized`` (None when the kernel cannot say), the kernel's
    state, maximum and estimated error (µs) and whether it marks itself unsynchronised."""
    try:
        rc, tx = read_timex(adjtimex)
    except (OSError, AttributeError) as exc:
        return {"synchronized": None, "error": str(exc)}
    return {"synchronized": synchronized(rc, tx), "state": _STATES.get(rc, str(rc)),
            "maxerror_us": tx.maxerror, "esterror_us": tx.esterror, "sta_unsync": bool(tx.status & STA_UNSYNC),
            "source": "adjtimex"}


CLOCK_POLL = 10.0  # seconds between reads of the kernel clock state
STEP = 1.0  # a change of wall minus monotonic larger than this is a step


class ClockWatch:
    """Watches the wall clock on the shell's scheduler: ``system.clock_synced`` /
    ``system.clock_unsynced`` when the kernel's state changes after start (the state at start
    is in ``status.clock``), ``system.clock_step``
    (``seconds``) when the wall clock jumps against the monotonic one; each calls the
    ``listeners`` (the door modes re-read their schedules at once, the access policy learns
    whether the clock is synchronised)."""

    def __init__(self, daemon, *, read=clock_status) -> None:
        self.daemon = daemon
        self.read = read
        self.listeners: list = []  # called with (synchronized: bool | None, step: float | None)
        self.synchronized: bool | None = None
        self._offset = daemon.wall() - daemon.clock()
        self._next = daemon.clock()  # read at the first tick
        self._started = False
        daemon.scheduler.add("clock", lambda: self._next, self.tick)
        daemon.register_status("clock", self.status)

    def status(self) -> dict:
        return self.read()

    def tick(self, now: float) -> None:
        self._next = now + CLOCK_POLL
        synced = self.read().get("synchronized")
        offset = self.daemon.wall() - now
        step = offset - self._offset
        self._offset = offset
        changed = synced != self.synchronized and self._started  # the state at start is in status only
        first = not self._started
        self.synchronized = synced
        if changed:
            self.daemon.publish("system.clock_synced" if synced else "system.clock_unsynced", synchronized=synced)
        stepped = abs(step) > STEP and self._started
        if stepped:
            self.daemon.publish("system.clock_step", seconds=round(step, 3))
        self._started = True
        if changed or stepped or first:
            for listener in self.listeners:
                listener(synced, step if stepped else None)
