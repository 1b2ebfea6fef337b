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
