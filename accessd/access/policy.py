"""The access policy: pure, in the style of :class:`~accessd.door.machine.Door`.

``AccessPolicy.handle(event, now=…, wall=…) -> list[Action]`` decides what a reader's
credential means for the door and returns what to do; it never touches storage, the
relay or the clock (``now`` is monotonic seconds for timers, ``wall`` Unix time for
validity windows).  The entry list is read through a :class:`Lookup` passed in.  The
shell (:mod:`accessd.access.component`) applies the actions in order; the results of
the two that need I/O come back as events:

* :class:`TakeUse` (a holder with a use count: one committed transaction *before* the
  relay moves) → :class:`UseTaken`;
* :class:`AskUpstream` (a credential the local list does not know, when an upstream
  controller is configured) → :class:`UpstreamAnswered`.

The dry run of ``check-credential`` is this same function on a :meth:`AccessPolicy.fork`
whose actions are not applied.

Held as data: the card waiting for its holder's PIN at each reader (card + PIN), the
failures counted per reader and the reader lockouts — all on the monotonic clock, so a
wall-clock step never lengthens a lockout.  :meth:`next_deadline` / ``Tick`` end the
waits.  Persisting failures and lockouts (a restart must not reset them) is an action
like any other (:class:`RecordFailure`, :class:`ClearFailures`, :class:`RecordLockout`).

Order of the checks: the reader's lockout, then the identity (unknown credential, wrong
PIN) before anything that tells a guesser about the holder, then the holder's state
(:func:`accessd.access.decision.decide`).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Protocol

from accessd.access.decision import Decision, Holder, decide, deny
from accessd.access.schedule import ScheduleBook
from accessd.protocols.credential import Credential

COUNTED = ("unknown_credential", "pin_mismatch")  # the reasons that count towards a lockout


class Lookup(Protocol):
    """What the policy reads of the entry list."""

    def find(self, credential: Credential) -> Holder | None: ...
    def get(self, holder_id: int) -> Holder | None: ...
    def pin_matches(self, holder_id: int, pin: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySettings:
    card_and_pin: bool = True
    pin_timeout: float = 10.0
    lockout_attempts: int = 5  # 0: never lock out
    lockout_window: float = 60.0
    lockout_duration: float = 300.0
    upstream: str | None = None  # the upstream controller's name, None: none
    duress: str = "none"  # "last_digit_plus_one": that PIN grants as usual and raises alarm.duress
    passback: str = "off"  # "soft": grant and raise alarm.passback; "hard": deny passback
    passback_reset: float = 0.0  # seconds after which a passage no longer counts (0: never)
    passback_daily: int | None = None  # seconds after local midnight at which every passage is forgotten
    directions: tuple[tuple[str, str], ...] = ()  # (reader, "in" | "out")
    unsynced: str = "allow"  # "deny": holders limited by a schedule are denied while the clock is unsynchronised


# ------------------------------------------------------------------------ events (in)

@dataclass(frozen=True, slots=True, kw_only=True)
class Present:
    """A credential read at ``reader``.  ``pin``: a PIN given together with the card (the
    CLI's ``--pin``).  ``ref``: the caller's handle for the :class:`Decided` answer."""

    credential: Credential
    reader: str
    pin: str | None = None
    ref: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """Bits no format accepts (``invalid_format``); ``fields`` say which and why."""

    reader: str
    fields: dict
    ref: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PinAbandoned:
    """Digits typed at ``reader`` were never submitted."""

    reader: str
    digits: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UseTaken:
    """The answer to :class:`TakeUse`: ``ok`` when the use was recorded."""

    token: int
    ok: bool
    remaining: int | None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamAnswered:
    """The answer to :class:`AskUpstream` (``granted`` False also when it did not answer)."""

    token: int
    granted: bool
    holder: dict | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Time passed (a card's PIN wait may have ended)."""


Event = Present | Reject | PinAbandoned | UseTaken | UpstreamAnswered | Tick


# ------------------------------------------------------------------------ actions (out)

@dataclass(frozen=True, slots=True, kw_only=True)
class Publish:
    type: str
    fields: dict


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeUse:
    holder_id: int
    token: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlock:
    """Grant passage: the door unlocks for ``seconds`` (None: the door's access_time)."""

    seconds: float | None
    holder: dict | None
    reader: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    reader: str
    granted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AskUpstream:
    credential: Credential
    reader: str
    token: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFailure:
    reader: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearFailures:
    reader: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordLockout:
    reader: str
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPassage:
    """Persist a holder's passage (anti-passback): a restart keeps it."""

    holder_id: int
    direction: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """The final decision for the presentations ``refs`` (a card and the PIN that
    completed it are one decision); ``extra`` adds what the dry run reports."""

    refs: tuple[int, ...]
    decision: Decision
    reader: str
    extra: dict = field(default_factory=dict)


Action = (Publish | TakeUse | Unlock | Feedback | AskUpstream | RecordFailure | ClearFailures | RecordLockout
          | RecordPassage | Decided)


# ------------------------------------------------------------------------ state

@dataclass(slots=True)
class _Waiting:
    """A card that waits for its holder's PIN."""

    credential: Credential
    holder_id: int
    deadline: float
    refs: tuple[int, ...]


@dataclass(slots=True)
class _Pending:
    """A decision that waits for I/O (a use taken, an upstream answer)."""

    kind: str
    decision: Decision | None
    credential: Credential
    reader: str
    refs: tuple[int, ...]
    extra: dict
    wall: float


def _refs(*refs: int | None) -> tuple[int, ...]:
    return tuple(r for r in refs if r is not None)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AccessPolicy:
    """See the module docstring."""

    def __init__(self, settings: PolicySettings, lookup: Lookup, tz: tzinfo, *,
                 failures: dict[str, list[float]] | None = None,
                 lockouts: dict[str, float] | None = None, book: ScheduleBook | None = None,
                 passages: dict[int, tuple[str, float]] | None = None) -> None:
        """``failures`` (monotonic times per reader) and ``lockouts`` (monotonic end per
        reader) restore what a previous run recorded; ``book`` holds the schedules and
        groups that limit holders in time (evaluated at ``wall``)."""
        self.settings = settings
        self.lookup = lookup
        self.tz = tz
        self.book = book if book is not None else ScheduleBook()
        self.mode = "locked"  # the door mode (accessd/door/modes.py), set by the shell
        self.passages: dict[int, tuple[str, float]] = dict(passages or {})  # holder → (direction, wall)
        self.directions = dict(settings.directions)
        self.clock_synced = True  # set by the shell from the kernel's clock state
        self.waiting: dict[str, _Waiting] = {}
        self.failures: dict[str, deque[float]] = {r: deque(ts) for r, ts in (failures or {}).items() if ts}
        self.lockouts: dict[str, float] = dict(lockouts or {})
        self._pending: dict[int, _Pending] = {}
        self._tokens = itertools.count(1)

    def fork(self) -> AccessPolicy:
        """A copy of the state, for a dry run whose actions are not applied."""
        other = AccessPolicy(self.settings, self.lookup, self.tz, book=self.book)
        other.mode = self.mode
        other.passages = dict(self.passages)
        other.clock_synced = self.clock_synced
        other.waiting = dict(self.waiting)
        other.failures = {r: deque(q) for r, q in self.failures.items()}
        other.lockouts = dict(self.lockouts)
        other._tokens = itertools.count(next(self._tokens) + 1_000_000)
        return other

    # -- queries
    def locked_out(self, reader: str, now: float) -> float | None:
        """When the reader's lockout ends (monotonic), or None."""
        until = self.lockouts.get(reader)
        return until if until is not None and until > now else None

    def next_deadline(self) -> float | None:
        return min((w.deadline for w in self.waiting.values()), default=None)

    # -- the one entry point
    def handle(self, event: Event, *, now: float, wall: float) -> list[Action]:
        actions: list[Action] = []
        self._expire(now, wall, actions)
        match event:
            case Present():
                self._present(event, now, wall, actions)
            case Reject(reader=reader, fields=fields, ref=ref):
                decision = deny("invalid_format")
                actions.append(Publish(type="access.denied", fields={"reason": "invalid_format", "holder": None,
                                                                      "reader": reader, **fields}))
                actions.append(Feedback(reader=reader, granted=False))
                actions.append(Decided(refs=_refs(ref), decision=decision, reader=reader))
            case PinAbandoned(reader=reader, digits=digits):
                waiting = self.waiting.pop(reader, None)
                if waiting is not None:  # the keypad gave up: that is the waiting card's answer
                    self._timed_out(waiting, reader, now, wall, actions)
                else:
                    fields = {"reason": "pin_timeout", "holder": None, "reader": reader}
                    if digits is not None:
                        fields["digits"] = digits
                    actions.append(Publish(type="access.denied", fields=fields))
                    actions.append(Feedback(reader=reader, granted=False))
            case UseTaken(token=token, ok=ok, remaining=remaining, error=error):
                p = self._pending.pop(token)
                holder = p.decision.holder
                if ok:
                    decision = Decision(granted=True, reason=None, holder=holder, remaining_uses=remaining)
                else:
                    decision = Decision(granted=False, reason="uses_exhausted", holder=holder, remaining_uses=remaining)
                    if error:
                        p.extra["error"] = f"the use could not be recorded: {error}"
                self._finish(decision, p.credential, p.reader, p.refs, p.extra, now, p.wall, actions)
            case UpstreamAnswered(token=token, granted=granted, holder=holder):
                p = self._pending.pop(token)
                extra = {**p.extra, "upstream": self.settings.upstream}
                if granted:
                    self._granted(Decision(granted=True, reason=None), holder, None, p.credential, p.reader,
                                  p.refs, extra, actions)
                else:
                    self._finish(deny("unknown_credential"), p.credential, p.reader, p.refs, extra, now, p.wall,
                                 actions)
            case Tick():
                pass
            case _:
                raise TypeError(f"the access policy cannot take {event!r}")
        return actions

    # -- presentations
    def _present(self, e: Present, now: float, wall: float, actions: list[Action]) -> None:
        cred, reader = e.credential, e.reader
        actions.append(Publish(type="credential.read", fields={"credential": cred.to_json(), "reader": reader}))
        waiting = self.waiting.pop(reader, None)
        if waiting is not None:
            if cred.kind == "pin":  # the PIN the waiting card asked for
                holder = self.lookup.get(waiting.holder_id)
                refs = waiting.refs + _refs(e.ref)
                if self.locked_out(reader, now):
                    decision = deny("locked_out")
                else:
                    ok, duress = self._pin_check(holder, cred.pin)
                    extra = {"duress": True} if duress else {}
                    decision = decide(holder=holder, now=_utc(wall), tz=self.tz, pin_ok=ok,
                                      in_schedule=self._in_schedule(holder, wall), refusal=self._refusal(holder),
                                      passback=self._passback(holder, reader, wall, extra))
                self._finish(decision, waiting.credential, reader, refs, extra if decision.granted else {}, now,
                             wall, actions)
                return
            self._timed_out(waiting, reader, now, wall, actions)  # another card came first
        refs = _refs(e.ref)
        if self.locked_out(reader, now):
            self._finish(deny("locked_out"), cred, reader, refs, {}, now, wall, actions)
            return
        mode = self.mode
        if (mode == "card_only" and cred.kind == "pin") or (mode == "pin_only" and cred.kind != "pin"):
            # refused before the look-up: the mode never tells whether the credential is known
            self._finish(deny("credential_not_allowed"), cred, reader, refs, {"mode": mode}, now, wall, actions)
            return
        holder = self.lookup.find(cred)
        extra: dict = {}
        if holder is None and cred.kind == "pin" and (real := self._duress_real(cred.pin)) is not None:
            holder = self.lookup.find(Credential(kind="pin", pin=real))  # a real PIN always wins over a variant
            if holder is not None:
                extra["duress"] = True
        if holder is None and self.settings.upstream is not None and mode != "lockdown":
            token = next(self._tokens)
            self._pending[token] = _Pending("upstream", None, cred, reader, refs, {}, wall)
            actions.append(AskUpstream(credential=cred, reader=reader, token=token))
            return
        pin_ok = None
        card_and_pin = mode == "card_and_pin" or (self.settings.card_and_pin and mode not in ("card_only", "pin_only"))
        if holder is not None and card_and_pin and holder.has_card and holder.has_pin:
            if cred.kind == "card":
                if e.pin is None:
                    deadline = now + self.settings.pin_timeout
                    self.waiting[reader] = _Waiting(cred, holder.id, deadline, refs)
                    return
                pin_ok, duress = self._pin_check(holder, e.pin)
                if duress:
                    extra["duress"] = True
            else:
                pin_ok = False  # this holder's PIN alone: the card must come first
        elif e.pin is not None:
            extra["pin_ignored"] = True  # the card's holder needs no PIN: the door does not wait for it
        decision = decide(holder=holder, now=_utc(wall), tz=self.tz, pin_ok=pin_ok,
                          in_schedule=self._in_schedule(holder, wall), refusal=self._refusal(holder),
                          passback=self._passback(holder, reader, wall, extra))
        if not decision.granted:
            extra.pop("duress", None)
            extra.pop("passback", None)
        self._finish(decision, cred, reader, refs, extra, now, wall, actions)

    def _passback(self, holder: Holder | None, reader: str, wall: float, extra: dict) -> bool:
        """True when a hard anti-passback denies; a soft one marks ``extra`` for alarm.passback."""
        s = self.settings
        direction = self.directions.get(reader)
        if s.passback == "off" or direction is None or holder is None:
            return False
        last = self.passages.get(holder.id)
        if last is None or last[0] != direction or not self._counts(last[1], wall):
            return False
        if s.passback == "hard":
            return True
        extra["passback"] = True
        return False

    def _counts(self, at: float, wall: float) -> bool:
        """Whether a passage at ``at`` still counts at ``wall`` (the timed and the daily reset)."""
        s = self.settings
        if s.passback_reset and wall - at >= s.passback_reset:
            return False
        if s.passback_daily is not None:
            local = datetime.fromtimestamp(wall, self.tz)
            reset = datetime.combine(local.date(), time(s.passback_daily // 3600, s.passback_daily // 60 % 60),
                                     self.tz).timestamp()
            if reset > wall:
                reset = datetime.combine(local.date() - timedelta(days=1),
                                         time(s.passback_daily // 3600, s.passback_daily // 60 % 60),
                                         self.tz).timestamp()
            if at < reset:
                return False
        return True

    def _duress_real(self, pin: str) -> str | None:
        """The real PIN a duress PIN stands for (None: no duress rule)."""
        if self.settings.duress == "last_digit_plus_one" and pin:
            return pin[:-1] + str((int(pin[-1]) - 1) % 10)
        return None

    def _pin_check(self, holder: Holder | None, pin: str) -> tuple[bool, bool]:
        """(the PIN is the holder's, it is their duress PIN)."""
        if holder is None:
            return False, False
        if self.lookup.pin_matches(holder.id, pin):
            return True, False
        real = self._duress_real(pin)
        if real is not None and self.lookup.pin_matches(holder.id, real):
            return True, True
        return False, False

    def _in_schedule(self, holder: Holder | None, wall: float) -> bool:
        if holder is None:
            return True
        if not self.clock_synced and self.settings.unsynced == "deny" and self.book.limited(holder.schedule, holder.group):
            return False  # the wall clock cannot be trusted to say when the schedule holds
        return self.book.allows(holder.schedule, holder.group, wall)

    def _refusal(self, holder: Holder | None) -> str | None:
        if self.mode == "lockdown" and holder is not None and not self.book.responder(holder.group):
            return "lockdown"
        return None

    def _expire(self, now: float, wall: float, actions: list[Action]) -> None:
        for reader, waiting in list(self.waiting.items()):
            if waiting.deadline <= now:
                del self.waiting[reader]
                self._timed_out(waiting, reader, now, wall, actions)
        for reader, until in list(self.lockouts.items()):
            if until <= now:
                del self.lockouts[reader]

    def _timed_out(self, waiting: _Waiting, reader: str, now: float, wall: float, actions: list[Action]) -> None:
        holder = self.lookup.get(waiting.holder_id)
        decision = Decision(granted=False, reason="pin_timeout", holder=holder,
                            remaining_uses=holder.uses if holder else None)
        self._finish(decision, waiting.credential, reader, waiting.refs, {"pin_required": True}, now, wall, actions)

    # -- carrying a decision out
    def _finish(self, decision: Decision, cred: Credential, reader: str, refs: tuple[int, ...], extra: dict,
                now: float, wall: float, actions: list[Action]) -> None:
        holder = decision.holder
        if decision.granted and holder is not None and holder.uses is not None and "use_taken" not in extra:
            token = next(self._tokens)
            self._pending[token] = _Pending("use", decision, cred, reader, refs, {**extra, "use_taken": True}, wall)
            actions.append(TakeUse(holder_id=holder.id, token=token))  # committed before the relay acts
            return
        extra.pop("use_taken", None)
        brief = holder.brief() if holder is not None else None
        if decision.granted:
            self._granted(decision, brief, holder.access_time if holder else None, cred, reader, refs, extra, actions)
            direction = self.directions.get(reader)
            if holder is not None and direction is not None and self.settings.passback != "off":
                self.passages[holder.id] = (direction, wall)
                actions.append(RecordPassage(holder_id=holder.id, direction=direction, at=wall))
            return
        fields = {"reason": decision.reason, "remaining_uses": decision.remaining_uses,
                  "credential": cred.to_json(), "holder": brief, "reader": reader}
        actions.append(Publish(type="access.denied", fields={**fields, **_public(extra)}))
        s = self.settings
        if decision.reason in COUNTED and s.lockout_attempts:
            q = self.failures.setdefault(reader, deque())
            while q and q[0] <= now - s.lockout_window:
                q.popleft()
            q.append(now)
            actions.append(RecordFailure(reader=reader))
            if len(q) >= s.lockout_attempts:
                count = len(q)
                del self.failures[reader]
                self.lockouts[reader] = now + s.lockout_duration
                actions.append(RecordLockout(reader=reader, seconds=s.lockout_duration))
                actions.append(Publish(type="alarm.lockout", fields={
                    "reader": reader, "failures": count, "window": s.lockout_window,
                    "until": iso(wall + s.lockout_duration)}))
        actions.append(Feedback(reader=reader, granted=False))
        actions.append(Decided(refs=refs, decision=decision, reader=reader, extra=extra))

    def _granted(self, decision: Decision, brief: dict | None, seconds: float | None, cred: Credential,
                 reader: str, refs: tuple[int, ...], extra: dict, actions: list[Action]) -> None:
        fields = {"reason": None, "remaining_uses": decision.remaining_uses, "credential": cred.to_json(),
                  "holder": brief, "reader": reader}
        actions.append(Publish(type="access.granted", fields={**fields, **_public(extra)}))
        actions.append(Unlock(seconds=seconds, holder=brief, reader=reader))
        actions.append(Feedback(reader=reader, granted=True))  # a duress grant looks the same at the reader
        if extra.get("passback"):
            actions.append(Publish(type="alarm.passback", fields={"holder": brief, "reader": reader,
                                                                  "direction": self.directions.get(reader)}))
        if extra.get("duress"):
            actions.append(Publish(type="alarm.duress", fields={"holder": brief, "reader": reader,
                                                                "credential": cred.to_json()}))
        if self.failures.pop(reader, None):
            actions.append(ClearFailures(reader=reader))  # a grant resets the count
        actions.append(Decided(refs=refs, decision=decision, reader=reader, extra=extra))


def _public(extra: dict) -> dict:
    """What of a decision's extras the access event carries."""
    return {k: v for k, v in extra.items() if k in ("upstream", "error", "mode")}


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
