"""The access decision: pure code, no storage, no clock, no I/O.

``decide(holder=…, now=…, tz=…)`` answers *granted* or *denied* with one of the
reasons DESIGN.md lists.  The caller (``accessd.access.component``) looks the holder up,
passes the wall-clock instant and the device time zone, and acts on the answer.

Validity windows are in device time.  ``valid_from``/``valid_to`` are ISO 8601
texts as stored by the entry list:

* a date (``2026-03-01``) means the whole day in the device's time zone: valid
  from 00:00:00 of that day, valid through 23:59:59 of the ``valid_to`` day;
* a date-time without an offset (``2026-03-01T18:00:00``) is device time; an
  ambiguous one (the repeated hour when clocks go back) means its first
  occurrence, a non-existent one (the skipped hour) is read with the offset in
  force before the change (PEP 495 ``fold=0``);
* a date-time with an offset is that absolute instant.

``valid_from`` is inclusive from its first instant; ``valid_to`` is inclusive
through the whole second (or day) it names, so a holder valid to ``18:00:00``
is granted at 18:00:00.999 and denied ``expired`` at 18:00:01.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

REASONS = (
    "unknown_credential",
    "expired",
    "not_yet_valid",
    "suspended",
    "uses_exhausted",
    "pin_mismatch",
    "pin_timeout",
    "locked_out",
    "invalid_format",
    "outside_schedule",  # the holder's (or their group's) schedule is not active
    "lockdown",  # the door is in lockdown and the holder is no responder
    "credential_not_allowed",  # the door mode does not take this kind (a PIN in card_only, a card in pin_only)
    "passback",  # hard anti-passback: the holder's last passage was in this direction
    "fault",  # the decision could not be made (a damaged entry list, an I/O error): denied
)

_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Holder:
    """A credential holder as the entry list stores it (credentials apart)."""

    id: int
    first_name: str
    last_name: str = ""
    notes: str = ""
    suspended: bool = False
    valid_from: str | None = None
    valid_to: str | None = None
    uses: int | None = None  # None: unlimited
    access_time: float | None = None  # None: the door's configured access_time
    conditions: str | None = None  # JSON text, kept for the event conditions of the intercom
    schedule: str | None = None  # a [schedules.NAME]: granted only while it is active
    group: str | None = None  # a [groups.NAME]: its schedule applies when the holder has none
    has_card: bool = False
    has_pin: bool = False
    has_qr: bool = False

    def __post_init__(self) -> None:
        if not self.first_name:
            raise ValueError("holder first_name must not be empty")
        if self.uses is not None and self.uses < 0:
            raise ValueError(f"holder uses must be >= 0 or None, got {self.uses}")

    def brief(self) -> dict:
        """The holder as access events carry it."""
        return {"id": self.id, "first_name": self.first_name, "last_name": self.last_name}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    granted: bool
    reason: str | None
    holder: Holder | None = None
    remaining_uses: int | None = None  # left after this decision; None: unlimited or no holder

    def __post_init__(self) -> None:
        if self.granted and self.reason is not None:
            raise ValueError(f"a granted decision has no reason, got {self.reason!r}")
        if not self.granted and self.reason not in REASONS:
            raise ValueError(f"deny reason must be one of {REASONS}, got {self.reason!r}")

    @property
    def decision(self) -> str:
        return "granted" if self.granted else "denied"

    def to_json(self) -> dict:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "holder": self.holder.brief() if self.holder else None,
            "remaining_uses": self.remaining_uses,
        }


def deny(reason: str, holder: Holder | None = None) -> Decision:
    return Decision(
        granted=False, reason=reason, holder=holder, remaining_uses=holder.uses if holder else None
    )


def _parse(text: str) -> date | datetime:
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def window_start(text: str, tz: tzinfo) -> datetime:
    """The first instant (aware, UTC) at which a holder with this valid_from is valid."""
    value = _parse(text)
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tz).astimezone(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def window_end(text: str, tz: tzinfo) -> datetime:
    """The first instant (aware, UTC) at which a holder with this valid_to has expired."""
    value = _parse(text)
    if not isinstance(value, datetime):
        return datetime.combine(value + timedelta(days=1), time(0), tz).astimezone(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.replace(microsecond=0).astimezone(UTC) + _ONE_SECOND


def validity(holder: Holder, now: datetime, tz: tzinfo) -> str | None:
    """``not_yet_valid``, ``expired`` or None (inside the window)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if holder.valid_from is not None and now < window_start(holder.valid_from, tz):
        return "not_yet_valid"
    if holder.valid_to is not None and now >= window_end(holder.valid_to, tz):
        return "expired"
    return None


def decide(
    *,
    holder: Holder | None,
    now: datetime,
    tz: tzinfo,
    pin_ok: bool | None = None,
    locked_out: bool = False,
    in_schedule: bool = True,
    refusal: str | None = None,
    passback: bool = False,
) -> Decision:
    """Grant or deny one presentation.

    ``holder`` is the holder the credential(s) identified (None: not in the list).
    ``pin_ok`` is None when no PIN check applies, else whether the PIN entered after
    a card matched that card's holder.  ``locked_out`` is the reader's brute-force
    state: it denies even the right credential.  ``in_schedule`` False: the holder's (or
    their group's) schedule is not active now (``outside_schedule``, before any use is taken).
    ``refusal``: the door mode refuses this holder (``lockdown``), after the identity.
    ``passback``: a hard anti-passback violation (``passback``), after the schedule.

    The order matters: lockout first; then the identity (unknown, wrong PIN) before
    anything that would tell a guesser about the holder; then the holder's state.
    """
    if locked_out:
        return deny("locked_out", None)
    if holder is None:
        return deny("unknown_credential")
    if pin_ok is False:
        return deny("pin_mismatch", holder)
    if refusal is not None:
        return deny(refusal, holder)
    if holder.suspended:
        return deny("suspended", holder)
    window = validity(holder, now, tz)
    if window is not None:
        return deny(window, holder)
    if not in_schedule:
        return deny("outside_schedule", holder)
    if passback:
        return deny("passback", holder)
    if holder.uses is not None:
        if holder.uses <= 0:
            return deny("uses_exhausted", holder)
        return Decision(granted=True, reason=None, holder=holder, remaining_uses=holder.uses - 1)
    return Decision(granted=True, reason=None, holder=holder, remaining_uses=None)
