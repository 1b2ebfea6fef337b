"""The door: a pure state machine from lock, contact and exit-button events to actions.

:class:`Door` owns no pins, threads or clocks.  The shell feeds it events together with
the current monotonic time and carries out the actions it returns::

    door = Door(DoorPolicy(access_time=7, open_too_long=30))
    door.handle(Grant(), now=100.0)     # [SetRelay(unlocked=True), Emit(type="door.unlocked", fields=…)]
    door.next_deadline()                # 107.0
    door.handle(Tick(), now=107.0)      # [SetRelay(unlocked=False), Emit(type="door.locked", fields=…)]

Timers are data: :meth:`Door.next_deadline` says when the shell must call again with
:class:`Tick`; every other event also settles timers that are already due, so a late
tick never changes the outcome.

Policy, as installers know it from commercial controllers:

- a grant unlocks for ``access_time`` or the holder's own (extended) time; a grant while
  unlocked extends the unlock to the later deadline;
- ``relock_on_open`` cancels the rest of the access time as soon as the door opens;
- the contact gives ``door.opened`` / ``door.closed``; opening while locked and not
  shunted is ``door.forced_open``;
- a door open longer than ``open_too_long`` gives ``door.held_open`` (``state`` =
  ``"alarm"``), preceded by a pre-alarm ``prealarm`` seconds before (``state`` =
  ``"prealarm"``); the held-open clock does not run out while the door is unlocked
  (a manual unlock for an hour keeps it quiet) and fires at relock when overdue;
- the exit button (REX) unlocks when ``rex_unlocks`` and in any case shunts the
  forced-open alarm for ``rex_shunt`` seconds (free egress with a mechanical handle);
- alarms clear with an event of the same type whose ``state`` is ``"cleared"`` when the
  door closes;
- :class:`Hold` keeps the door unlocked with no deadline (a door mode such as scheduled
  free access): grants change nothing, the held-open clock does not run, and the end of
  the hold locks (``reason: "mode"``) — a held-open door that is overdue then alarms.

Event payloads (``Emit.fields``) are plain JSON-able dicts; the shell adds ``seq`` and
``time`` when it publishes them.  A transition the machine cannot make (a contact that
"opens" while already open, time running backwards) raises :class:`IllegalTransition`
naming the state and the event: the input layer reports changes only, so such an event
is a bug upstream and must not be absorbed silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from accessd.errors import IllegalTransition

__all__ = [
    "Contact",
    "Door",
    "DoorPolicy",
    "Emit",
    "Grant",
    "Hold",
    "IllegalTransition",
    "ManualLock",
    "ManualUnlock",
    "Rex",
    "SetRelay",
    "Tick",
]


def _seconds(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a positive number of seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorPolicy:
    """The door's settings (the ``[door]`` config section, minus the pins)."""

    access_time: float = 7.0
    open_too_long: float = 30.0
    prealarm: float = 0.0  # seconds before held_open; 0 = no pre-alarm
    relock_on_open: bool = False
    rex_unlocks: bool = True
    rex_shunt: float | None = None  # None = access_time
    has_contact: bool = True
    has_rex: bool = True

    def __post_init__(self) -> None:
        _seconds("access_time", self.access_time)
        _seconds("open_too_long", self.open_too_long)
        _seconds("prealarm", self.prealarm, allow_zero=True)
        _seconds("rex_shunt", self.rex_shunt, allow_zero=True)
        if self.prealarm >= self.open_too_long:
            raise ValueError(
                f"prealarm: expected fewer seconds than open_too_long ({self.open_too_long:g}), "
                f"got {self.prealarm:g}"
            )

    @property
    def shunt_seconds(self) -> float:
        return self.access_time if self.rex_shunt is None else self.rex_shunt


# --- events in ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A granted credential: unlock for ``seconds`` (None = access_time)."""

    seconds: float | None = None
    holder: dict | None = None
    reader: str | None = None

    def __post_init__(self) -> None:
        _seconds("Grant.seconds", self.seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualUnlock:
    """An operator's unlock (``door unlock [--for S]``); None = access_time.  ``uid``:
    who asked (the socket peer), carried by ``door.unlocked``."""

    seconds: float | None = None
    uid: int | None = None

    def __post_init__(self) -> None:
        _seconds("ManualUnlock.seconds", self.seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualLock:
    """An operator's lock (``door lock``): cancels any unlock now."""

    uid: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """Keep the door unlocked with no deadline (``unlocked``) or end that; ``mode``: why."""

    unlocked: bool
    mode: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """The door contact changed: ``open`` is True when the door is open."""

    open: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Rex:
    """The request-to-exit button changed."""

    pressed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Time passed: settle every timer due at ``now``."""


Event = Grant | ManualUnlock | ManualLock | Hold | Contact | Rex | Tick


# --- actions out ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRelay:
    """Drive the relay: ``unlocked`` True = away from its normal state."""

    unlocked: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Emit:
    """Publish an event of ``type`` with ``fields``."""

    type: str
    fields: dict = field(default_factory=dict)


Action = SetRelay | Emit


# --- the machine -----------------------------------------------------------------------


class Door:
    """The door's state; :meth:`handle` is the only place it changes."""

    def __init__(self, policy: DoorPolicy | None = None, *, contact_open: bool = False,
                 rex_pressed: bool = False, now: float = 0.0) -> None:
        self.policy = policy or DoorPolicy()
        self.unlocked = False
        self.unlock_until: float | None = None
        self.unlock_reason: str | None = None
        self.hold = False  # unlocked with no deadline (a door mode)
        self.contact_open = bool(contact_open) and self.policy.has_contact
        self.rex_pressed = bool(rex_pressed) and self.policy.has_rex
        self.opened_at: float | None = now if self.contact_open else None
        self.shunt_until: float | None = None
        self.forced = False
        self.held = False
        self.prealarmed = False
        self.now = now

    # -- views -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``locked``/``unlocked`` and ``open``/``closed`` in one word pair."""
        lock = "unlocked" if self.unlocked else "locked"
        if not self.policy.has_contact:
            return lock
        return f"{lock}+{'open' if self.contact_open else 'closed'}"

    @property
    def alarms(self) -> list[str]:
        return [name for name, on in (("forced_open", self.forced), ("held_open", self.held)) if on]

    def status(self, now: float | None = None) -> dict:
        now = self.now if now is None else now
        return {
            "state": "unlocked" if self.unlocked else "locked",
            "contact": None if not self.policy.has_contact else ("open" if self.contact_open else "closed"),
            "unlocked_for": round(max(0.0, self.unlock_until - now), 3) if self.unlocked and not self.hold else None,
            "hold": self.hold,
            "open_for": round(now - self.opened_at, 3) if self.opened_at is not None else None,
            "alarms": self.alarms,
            "shunted": self._shunted(now),
        }

    def next_deadline(self) -> float | None:
        """The earliest time at which a :class:`Tick` changes something, or None."""
        candidates = [self.unlock_until if self.unlocked else None, self.shunt_until]
        if self.contact_open and not self.held and not self.hold:
            held_at, pre_at = self._held_times()
            candidates.append(held_at)
            if not self.prealarmed:
                candidates.append(pre_at)
        return min((t for t in candidates if t is not None), default=None)

    # -- the one place where state changes ----------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            raise IllegalTransition(self.state, event, f"now must be a finite number, got {now!r}")
        if now < self.now:
            raise IllegalTransition(self.state, event, f"time went backwards ({now} < {self.now})")
        actions: list[Action] = []
        self._settle(now, actions)
        self.now = now
        p = self.policy
        match event:
            case Tick():
                pass
            case Grant(seconds=seconds, holder=holder, reader=reader):
                fields = {"reason": "granted", "reader": reader, "holder": holder}
                self._unlock(now, p.access_time if seconds is None else seconds, fields, actions)
            case ManualUnlock(seconds=seconds, uid=uid):
                self._unlock(now, p.access_time if seconds is None else seconds,
                             {"reason": "manual", "uid": uid}, actions)
            case ManualLock(uid=uid):
                if self.unlocked and not self.hold:
                    self._lock(now, "manual", actions, uid=uid)
            case Hold(unlocked=on, mode=mode):
                if on and not self.hold:
                    was_unlocked = self.unlocked
                    self.hold, self.unlocked, self.unlock_until = True, True, None
                    self.unlock_reason = "mode"
                    if not was_unlocked:
                        actions.append(SetRelay(unlocked=True))
                    actions.append(Emit(type="door.unlocked", fields={"reason": "mode", "mode": mode,
                                                                      "seconds": None, "extended": was_unlocked}))
                elif not on and self.hold:
                    self.hold = False
                    self._lock(now, "mode", actions)
            case Contact(open=is_open):
                if not p.has_contact:
                    raise IllegalTransition(self.state, event, "no door contact is configured")
                if is_open == self.contact_open:
                    raise IllegalTransition(self.state, event, "the contact did not change")
                if is_open:
                    self._opened(now, actions)
                else:
                    self._closed(now, actions)
            case Rex(pressed=pressed):
                if not p.has_rex:
                    raise IllegalTransition(self.state, event, "no exit button is configured")
                if pressed == self.rex_pressed:
                    raise IllegalTransition(self.state, event, "the exit button did not change")
                self.rex_pressed = pressed
                if pressed:
                    self.shunt_until = now + p.shunt_seconds
                    if p.rex_unlocks:
                        self._unlock(now, p.access_time, {"reason": "rex"}, actions)
            case _:
                raise IllegalTransition(self.state, event, "unknown event")
        self._settle(now, actions)  # the event may have made a timer due (a relock ends a held-open wait)
        return actions

    # -- helpers (called only from handle) -----------------------------------------------

    def _held_times(self) -> tuple[float, float]:
        assert self.opened_at is not None
        held_at = self.opened_at + self.policy.open_too_long
        if self.unlocked and self.unlock_until is not None:
            held_at = max(held_at, self.unlock_until)
        pre_at = held_at - self.policy.prealarm if self.policy.prealarm else math.inf
        return held_at, pre_at

    def _shunted(self, now: float) -> bool:
        return self.shunt_until is not None and now < self.shunt_until

    def _settle(self, now: float, actions: list[Action]) -> None:
        """Fire every timer due at ``now`` in time order (each with its own due time)."""
        while (due := self.next_deadline()) is not None and due <= now:
            if self.unlocked and self.unlock_until is not None and self.unlock_until <= due:
                self._lock(due, "timeout", actions)
                continue
            if self.shunt_until is not None and self.shunt_until <= due:
                self.shunt_until = None
                continue
            held_at, pre_at = self._held_times()
            if not self.prealarmed and pre_at <= due:
                self.prealarmed = True
                actions.append(Emit(type="door.held_open", fields={
                    "state": "prealarm",
                    "open_for": round(due - self.opened_at, 3),
                    "alarm_in": round(held_at - due, 3),
                }))
                continue
            if not self.held and held_at <= due:
                self.held = True
                self.prealarmed = True
                actions.append(Emit(type="door.held_open", fields={
                    "state": "alarm", "open_for": round(due - self.opened_at, 3),
                }))
                continue
            raise AssertionError(f"deadline {due} matched no timer in state {self.state}")  # pragma: no cover

    def _unlock(self, now: float, seconds: float, fields: dict, actions: list[Action]) -> None:
        if self.hold:
            return  # held unlocked: nothing to add
        until = now + seconds
        if self.unlocked:
            if until <= self.unlock_until:
                return  # already unlocked for longer
            self.unlock_until = until
            actions.append(Emit(type="door.unlocked", fields={**fields, "seconds": seconds, "extended": True}))
            return
        self.unlocked = True
        self.unlock_until = until
        self.unlock_reason = fields["reason"]
        actions.append(SetRelay(unlocked=True))
        actions.append(Emit(type="door.unlocked", fields={**fields, "seconds": seconds, "extended": False}))

    def _lock(self, now: float, reason: str, actions: list[Action], *, uid: int | None = None) -> None:
        self.unlocked = False
        self.unlock_until = None
        self.unlock_reason = None
        actions.append(SetRelay(unlocked=False))
        fields = {"reason": reason} if uid is None else {"reason": reason, "uid": uid}
        actions.append(Emit(type="door.locked", fields=fields))

    def _opened(self, now: float, actions: list[Action]) -> None:
        self.contact_open = True
        self.opened_at = now
        self.prealarmed = False
        authorized = self.unlocked or self._shunted(now)
        how = self.unlock_reason if self.unlocked else ("rex" if authorized else None)
        actions.append(Emit(type="door.opened", fields={"authorized": authorized, "by": how}))
        if not authorized:
            self.forced = True
            actions.append(Emit(type="door.forced_open", fields={"state": "alarm"}))
        if self.unlocked and self.policy.relock_on_open:
            self._lock(now, "opened", actions)

    def _closed(self, now: float, actions: list[Action]) -> None:
        open_for = round(now - self.opened_at, 3) if self.opened_at is not None else None
        self.contact_open = False
        self.opened_at = None
        actions.append(Emit(type="door.closed", fields={"open_for": open_for}))
        if self.forced:
            self.forced = False
            actions.append(Emit(type="door.forced_open", fields={"state": "cleared", "open_for": open_for}))
        if self.held or self.prealarmed:
            was = "alarm" if self.held else "prealarm"
            self.held = False
            self.prealarmed = False
            actions.append(Emit(type="door.held_open", fields={"state": "cleared", "was": was, "open_for": open_for}))
