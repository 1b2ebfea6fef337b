"""The access component: the shell of the access policy, and the entry-list commands.

Readers hand what their pipeline produced (:mod:`accessd.protocols.pipeline`:
``Presented`` / ``Rejected`` / ``PinAbandoned``) to :meth:`Access.submit` in the loop
thread.  The pure :class:`~accessd.access.policy.AccessPolicy` decides and returns
actions; this shell carries them out in order:

* ``TakeUse`` — a holder with a use count has one use taken in a committed transaction
  (``synchronous=FULL``) **before** the door is told: a kill -9 or a power cut at any
  instant can only lose a grant, never give one more than the count; the answer goes
  back to the policy at once;
* ``Publish`` (``credential.read``, ``access.granted`` / ``access.denied``,
  ``alarm.lockout``), ``Unlock`` (the door), ``Feedback`` (the reader's LED/beeper);
* ``RecordFailure`` / ``ClearFailures`` / ``RecordLockout`` — the lockout state in
  ``access.db`` (:mod:`accessd.access.lockouts`), so a restart does not reset it; a
  record that cannot be written is logged and the lockout holds in memory all the same;
* ``AskUpstream`` — a credential not in the local list asked upstream when
  ``access.upstream`` is set; one found locally never is;
* ``Decided`` — the answer for whoever waits (``simulate``, ``check-credential``).

A decision path that raises (a damaged entry list, an I/O error) ends in
``access.denied`` with reason ``fault``: the door stays locked and says why.
The dry run of ``check-credential`` is the policy's own function on a fork of its state
(:meth:`Access.evaluate`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import sqlite3
import time
from collections import deque

from accessd.access import upstream as upstream_mod
from accessd.access.decision import Decision, Holder
from accessd.access.decision import deny as deny_decision
from accessd.access.lockouts import LockoutRecord
from accessd.access.policy import (
    AccessPolicy,
    AskUpstream,
    ClearFailures,
    Decided,
    Feedback,
    PinAbandoned,
    PolicySettings,
    Present,
    Publish,
    RecordFailure,
    RecordLockout,
    RecordPassage,
    Reject,
    TakeUse,
    Unlock,
    UpstreamAnswered,
    UseTaken,
    iso,
)
from accessd.access.policy import Tick as PolicyTick
from accessd.errors import CommandError
from accessd.protocols.credential import Credential
from accessd.protocols.pipeline import (
    CardInterpreter,
    CardSettings,
    Outcome,
    Presented,
    ReaderPipeline,
    Rejected,
)
from accessd.store.entrylist import (
    HOLDER_KEYS,
    EntryList,
    EntryListError,
    ImportFailed,
    ImportSession,
)

log = logging.getLogger(__name__)

HEAVY_READS = 1  # concurrent holders list/export reads (each in a worker thread, off the loop)
LIST_CAP = 10_000  # rows per holders.list page
EXPORT_CAP = 5_000  # rows per holders.export page (the CLI asks 5000; `more` says when to ask again)
IMPORT_IDLE = 120.0  # seconds after which an import session without chunks is abandoned


def reversed_uid(bits: str) -> str | None:
    """The card value with its bytes in the other order (MIFARE UIDs are read both ways)."""
    if len(bits) % 8:
        return None
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return raw[::-1].hex().upper()


class EntryListLookup:
    """The policy's view of the entry list (:class:`~accessd.access.policy.Lookup`)."""

    def __init__(self, store: EntryList) -> None:
        self.store = store

    def find(self, credential: Credential) -> Holder | None:
        holder = self.store.find(credential)
        if holder is not None or credential.kind != "card":
            return holder
        chosen = (credential.format, credential.facility_code, credential.card_number)
        for fmt, fc, cn in credential.candidates:  # the other formats that read these bits
            if (fmt, fc, cn) != chosen:
                holder = self.store.find_card(None, fmt, fc, cn)
                if holder is not None:
                    return holder
        return None

    def get(self, holder_id: int) -> Holder | None:
        try:
            return self.store.get(holder_id)
        except EntryListError:
            return None

    def pin_matches(self, holder_id: int, pin: str) -> bool:
        return self.store.pin_matches(holder_id, pin)


FAULT = Decision(granted=False, reason="fault")


class Access:
    """The shell around :class:`~accessd.access.policy.AccessPolicy`: it feeds the policy
    what the readers' pipelines produce and carries out the actions (uses, log, relay,
    feedback, lockout records); and it serves the entry-list commands."""

    def __init__(self, daemon, *, door, readers: dict) -> None:
        self.daemon = daemon
        self.door = door
        self.readers = readers  # reader id → reader (filled by the daemon's wiring)
        self.cfg = cfg = daemon.config.access
        self.tz = daemon.tz
        self.store = EntryList(daemon.state_dir, formats=daemon.formats)
        self.upstream = upstream_mod.build(cfg.upstream, cfg.upstream_fake_grants)
        self.latest: deque[tuple[float, str, Credential]] = deque(maxlen=cfg.latest_size)
        self.imports: dict[str, ImportSession] = {}
        self.counts = {"granted": 0, "denied": 0, "faults": 0}
        self.closed = False
        self.formats = daemon.formats
        self.lockouts = LockoutRecord(self.store.state, window=cfg.lockout_window, duration=cfg.lockout_duration)
        failures, lockouts = self.lockouts.load(now=daemon.clock(), wall=daemon.wall())
        settings = PolicySettings(card_and_pin=cfg.card_and_pin, pin_timeout=cfg.pin_timeout,
                                  lockout_attempts=cfg.lockout_attempts, lockout_window=cfg.lockout_window,
                                  lockout_duration=cfg.lockout_duration, duress=cfg.duress,
                                  passback=cfg.passback, passback_reset=cfg.passback_reset,
                                  passback_daily=None if cfg.passback_daily is None else
                                  int(cfg.passback_daily[:2]) * 3600 + int(cfg.passback_daily[3:]) * 60,
                                  directions=tuple(cfg.directions.items()), unsynced=cfg.unsynced,
                                  upstream=self.upstream.name if self.upstream else None)
        self.book = daemon.config.schedule_book(self.tz)
        self.policy = AccessPolicy(settings, EntryListLookup(self.store), self.tz, failures=failures,
                                   lockouts=lockouts, book=self.book, passages=self.store.passages())
        listeners = getattr(door, "mode_listeners", None)
        if listeners is not None:  # the door mode decides which credentials are taken
            self.policy.mode = door.modes.mode
            listeners.append(self._mode_changed)
        # the pipeline of check-credential when no reader is configured
        self.default_pipeline = ReaderPipeline(cards=CardInterpreter(self.formats, CardSettings()))
        self._refs = itertools.count(1)
        self._futures: dict[int, tuple[asyncio.Future, bool]] = {}  # ref → (waiter, wants the Decided)
        self._decided: dict[int, Decided] = {}
        self._tasks: set[asyncio.Task] = set()
        self._heavy_reads = asyncio.Semaphore(HEAVY_READS)  # holders list/export, off the loop
        daemon.scheduler.add("access policy", self.policy.next_deadline, self._tick)
        # Every command here is privileged: check-credential is a PIN and card oracle even
        # as a dry run, and the list and the latest reads hold the card numbers a cloner
        # needs.  Reads are not audited; a chunked import is audited once, at its end.
        never = lambda params: False  # noqa: E731
        for name, handler, audited in (
            ("check-credential", self.cmd_check, None),
            ("latest", self.cmd_latest, never),
            ("holders.add", self.cmd_add, None),
            ("holders.list", self.cmd_list, never),
            ("holders.show", self.cmd_show, never),
            ("holders.update", self.cmd_update, None),
            ("holders.remove", self.cmd_remove, None),
            ("holders.import", self.cmd_import, lambda params: bool(params.get("commit") or params.get("abort"))),
            ("holders.export", self.cmd_export, never),
        ):
            daemon.register_command(name, handler, privileged=True, audited=audited)
        self.holder_count = self.store.count()  # kept up to date by the commands (no count(*) per status)
        daemon.register_status("counts.holders", lambda: self.holder_count)
        daemon.register_status("access", self.status)
        daemon.register_command("schedules.list", self.cmd_schedules)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        for fut, _ in self._futures.values():
            if not fut.done():
                fut.cancel()
        for imp in list(self.imports.values()):
            imp.discard()
        self.imports.clear()
        self.store.close()

    def status(self) -> dict:
        now, wall = self.daemon.clock(), self.daemon.wall()
        locked = {r: iso(wall + until - now) for r, until in self.policy.lockouts.items() if until > now}
        return {
            "granted": self.counts["granted"],
            "denied": self.counts["denied"],
            "faults": self.counts["faults"],
            "locked_out": locked,
            "waiting_for_pin": sorted(self.policy.waiting),
            "upstream": self.upstream.name if self.upstream else None,
        }

    # ------------------------------------------------------------------ the reader path

    def submit(self, outcome: Outcome, reader: str):
        """What a reader's pipeline produced at ``reader`` (loop thread).

        Returns the :class:`Decision`, or a future of it when the decision waits (for
        the PIN after a card, or for the upstream controller), or None for an abandoned
        PIN.  Subscribers get the events only after the relay has moved.
        """
        if isinstance(outcome, Presented):
            return self.present(outcome.credential, reader)
        if isinstance(outcome, Rejected):
            self._decide(Reject(reader=reader, fields=outcome.fields()), reader, ref=None)
            return deny_decision("invalid_format")
        self._decide(PinAbandoned(reader=reader, digits=outcome.digits), reader, ref=None)
        return None

    def present(self, credential: Credential, reader: str, *, pin: str | None = None):
        """A credential read at ``reader`` (see :meth:`submit`)."""
        if self.closed:  # a read that arrives while the daemon stops: the door stays locked
            cred_json = credential.to_json()
            with self.daemon.relay_first():
                self.daemon.publish("credential.read", credential=cred_json, reader=reader)
                self.daemon.publish("access.denied", reason="unknown_credential", credential=cred_json,
                                    holder=None, reader=reader, detail="stopping")
            return Decision(granted=False, reason="unknown_credential")
        return self._present(credential, reader, pin, whole=False)

    def _present(self, credential: Credential, reader: str, pin: str | None, *, whole: bool = True):
        """The answer of a presentation — its :class:`Decided` (``whole``) or only the
        :class:`Decision` — or a future of it."""
        if credential.kind != "pin":
            self.latest.appendleft((self.daemon.wall(), reader, credential))
        ref = next(self._refs)
        return self._decide(Present(credential=credential, reader=reader, pin=pin, ref=ref), reader, ref=ref,
                            whole=whole)

    def _decide(self, event, reader: str, *, ref: int | None, whole: bool = False):
        with self.daemon.relay_first():
            try:
                actions = self.policy.handle(event, now=self.daemon.clock(), wall=self.daemon.wall())
            except Exception as exc:  # a broken lookup (a damaged list, an I/O error): deny, say so
                self._fault(event, reader, ref, exc)
            else:
                self._apply(actions)
        self.daemon.scheduler.poke()
        if ref is None:
            return None
        done = self._decided.pop(ref, None)
        if done is not None:
            return done if whole else done.decision
        fut = self.daemon.loop.create_future()
        self._futures[ref] = (fut, whole)
        return fut

    def _fault(self, event, reader: str, ref: int | None, exc: Exception) -> None:
        log.exception("the decision at %s failed", reader)
        self.counts["faults"] += 1
        self.counts["denied"] += 1
        cred = getattr(event, "credential", None)
        self.daemon.publish("access.denied", reason="fault", reader=reader, holder=None,
                            credential=cred.to_json() if cred is not None else None,
                            error=f"{type(exc).__name__}: {exc}")
        self._feedback(reader, False)
        if ref is not None:
            self._resolve(Decided(refs=(ref,), decision=FAULT, reader=reader))

    def _tick(self, now: float) -> None:
        with self.daemon.relay_first():
            self._apply(self.policy.handle(PolicyTick(), now=now, wall=self.daemon.wall()))

    def _apply(self, actions: list) -> None:
        """Carry out the policy's actions in order (TakeUse answers at once, in place)."""
        work = deque(actions)
        while work:
            a = work.popleft()
            if isinstance(a, Publish):
                self.daemon.publish(a.type, **a.fields)
            elif isinstance(a, TakeUse):
                try:
                    ok, remaining = self.store.consume_use(a.holder_id)  # committed before the relay acts
                    error = None
                except sqlite3.Error as exc:  # disk full, I/O error: no use taken, so no grant
                    log.error("cannot take a use of holder %s: %s", a.holder_id, exc)
                    holder = self.policy.lookup.get(a.holder_id)
                    ok, remaining, error = False, holder.uses if holder else None, str(exc)
                answer = UseTaken(token=a.token, ok=ok, remaining=remaining, error=error)
                work.extendleft(reversed(self.policy.handle(answer, now=self.daemon.clock(), wall=self.daemon.wall())))
            elif isinstance(a, Unlock):
                if self.door is None:
                    log.warning("access granted at %s but no door is configured", a.reader)
                else:
                    self.door.grant(seconds=a.seconds, holder=a.holder, reader=a.reader)
            elif isinstance(a, Feedback):
                self._feedback(a.reader, a.granted)
            elif isinstance(a, AskUpstream):
                task = asyncio.ensure_future(self._ask_upstream(a))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(a, RecordFailure | ClearFailures | RecordLockout):
                self.lockouts.apply(a, wall=self.daemon.wall())
            elif isinstance(a, RecordPassage):
                self.store.record_passage(a.holder_id, a.direction, a.at)
            elif isinstance(a, Decided):
                self._resolve(a)

    def _resolve(self, decided: Decided) -> None:
        self.counts["granted" if decided.decision.granted else "denied"] += 1
        for ref in decided.refs:
            waiter = self._futures.pop(ref, None)
            if waiter is None:
                self._decided[ref] = decided
            elif not waiter[0].done():
                waiter[0].set_result(decided if waiter[1] else decided.decision)
        while len(self._decided) > 64:  # answers nobody asked for (a reader does not wait)
            self._decided.pop(next(iter(self._decided)))

    async def _ask_upstream(self, ask: AskUpstream) -> None:
        try:
            answer = await asyncio.wait_for(self.upstream.decide(ask.credential, ask.reader), self.cfg.upstream_timeout)
        except Exception as exc:  # unreachable, timed out, broken: the credential stays unknown
            log.warning("upstream %s did not answer for %s: %s", self.upstream.name, ask.reader, exc)
            answer = None
        if self.closed:
            return
        event = UpstreamAnswered(token=ask.token, granted=bool(answer is not None and answer.granted),
                                 holder=answer.holder if answer is not None else None)
        with self.daemon.relay_first():
            self._apply(self.policy.handle(event, now=self.daemon.clock(), wall=self.daemon.wall()))

    def _feedback(self, reader: str, granted: bool) -> None:
        r = self.readers.get(reader)
        feedback = getattr(r, "feedback", None)
        if feedback is not None:
            try:
                feedback(granted)
            except Exception:  # feedback is a courtesy: it must not undo the decision
                log.exception("reader %s feedback failed", reader)

    def _latest_entry(self, ts: float, reader: str, credential: Credential) -> dict:
        entry: dict = {"time": iso(ts), "reader": reader, **credential.to_json()}
        if credential.kind == "card":
            entry.update(bits=credential.bits, reversed_uid=reversed_uid(credential.bits))
            if credential.format is None and credential.candidates:  # a raw read: how it decodes
                entry.update(zip(("format", "facility_code", "card_number"), credential.candidates[0], strict=True))
        return entry

    # ------------------------------------------------------------------ commands

    def known_readers(self) -> set[str]:
        """The reader ids a credential may be presented at: the configured readers (or,
        with none, the door's own ``reader.id``)."""
        return set(self.readers) or {self.daemon.config.reader.id}

    def _default_reader(self) -> str:
        known = self.known_readers()
        if len(known) == 1:
            return next(iter(known))
        if self.daemon.config.reader.id in known:
            return self.daemon.config.reader.id
        raise CommandError("invalid", f"check-credential: reader: several readers, give one of {', '.join(sorted(known))}")

    def _pipeline(self, reader: str) -> ReaderPipeline:
        return getattr(self.readers.get(reader), "pipeline", None) or self.default_pipeline

    def _outcome_from(self, params: dict, reader: str) -> tuple[Outcome, str | None]:
        """What the reader's pipeline makes of the credential given, and an extra PIN."""
        card, bits, pin, qr = (params.get(k) for k in ("card", "bit_length", "pin", "qr"))
        given = [k for k, v in (("card", card), ("qr", qr)) if v is not None]
        if len(given) > 1:
            raise CommandError("invalid", "check-credential: give one of card, pin or qr (a PIN may follow a card)")
        pipeline = self._pipeline(reader)
        try:
            if card is not None:
                if bits is None:
                    raise CommandError("invalid", "check-credential: bit_length: required with card")
                if not isinstance(bits, int) or isinstance(bits, bool):
                    raise CommandError("invalid", f"check-credential: bit_length: expected a number of bits, got {bits!r}")
                try:
                    raw = Credential.card(str(card).removeprefix("0x"), bits)
                except ValueError as exc:
                    raise CommandError("invalid", f"check-credential: card: {exc}") from None
                return pipeline.cards.interpret(raw.bits), _pin_param(pin)
            if qr is not None:
                return Presented(credential=Credential(kind="qr", qr=str(qr))), None
            if pin is not None:
                return Presented(credential=Credential(kind="pin", pin=_pin_param(pin))), None
        except ValueError as exc:
            raise CommandError("invalid", f"check-credential: {exc}") from None
        raise CommandError("invalid", "check-credential: give card (with bit_length), pin or qr")

    def evaluate(self, outcome: Outcome, reader: str, pin: str | None = None) -> tuple[Decision, dict]:
        """The decision without acting on it (check-credential's dry run): the policy's own
        function on a copy of its state, the actions not applied."""
        if isinstance(outcome, Rejected):
            return deny_decision("invalid_format"), outcome.fields()
        policy = self.policy.fork()
        now, wall = self.daemon.clock(), self.daemon.wall()
        ref = -1
        work = deque(policy.handle(Present(credential=outcome.credential, reader=reader, pin=pin, ref=ref),
                                   now=now, wall=wall))
        if reader in policy.waiting:  # the door would wait for the PIN: without one, that wait ends so
            work.extend(policy.handle(PolicyTick(), now=now + policy.settings.pin_timeout, wall=wall))
        extra: dict = {}
        while work:
            a = work.popleft()
            if isinstance(a, TakeUse):  # as if the use were taken
                holder = policy.lookup.get(a.holder_id)
                remaining = holder.uses - 1 if holder and holder.uses else 0
                work.extend(policy.handle(UseTaken(token=a.token, ok=bool(holder and holder.uses), remaining=remaining),
                                          now=now, wall=wall))
            elif isinstance(a, AskUpstream):
                extra["upstream"] = f"would ask {self.upstream.name}"
                return deny_decision("unknown_credential"), extra
            elif isinstance(a, Decided) and ref in a.refs:
                return a.decision, {**extra, **{k: v for k, v in a.extra.items() if k != "use_taken"}}
        raise RuntimeError("the policy gave no decision")  # pragma: no cover - a policy bug

    async def cmd_check(self, params: dict) -> dict:
        reader = params.get("reader") or self._default_reader()
        known = self.known_readers()
        if not isinstance(reader, str) or reader not in known:
            # an invented reader id would dodge the per-reader lockout and grant "at" no door
            raise CommandError("invalid", f"check-credential: reader: expected one of {', '.join(sorted(known))}, got {reader!r}")
        outcome, pin = self._outcome_from(params, reader)
        extra: dict = {}
        credential = outcome.credential if isinstance(outcome, Presented) else Credential(kind="card", bits=outcome.bits)
        if not params.get("present"):
            decision, extra = self.evaluate(outcome, reader, pin)
        elif isinstance(outcome, Rejected):
            self.submit(outcome, reader)
            decision, extra = deny_decision("invalid_format"), outcome.fields()
        elif self.closed:
            decision = self.present(credential, reader, pin=pin)
        else:
            result = self._present(credential, reader, pin)
            decided = await result if isinstance(result, asyncio.Future) else result
            decision, extra = decided.decision, {k: v for k, v in decided.extra.items() if k != "pin_required"}
        out = decision.to_json()
        out.update(reader=reader, credential=credential.to_json(), present=bool(params.get("present")), **extra)
        return out

    def cmd_latest(self, params: dict) -> dict:
        return {"latest": [self._latest_entry(*e) for e in self.latest]}

    def cmd_schedules(self, params: dict) -> dict:
        """``schedules.list``: every schedule, whether it is active now and when it next changes; the groups."""
        wall = self.daemon.wall()
        name = params.get("name")
        if name is not None and name not in self.book.schedules:
            raise CommandError("not_found", f"schedules.list: no schedule {name!r}")
        out = {}
        for sname, s in self.book.schedules.items():
            if name is not None and sname != name:
                continue
            nxt = s.next_change(wall)
            out[sname] = {"active": s.active(wall), "next_change": iso(nxt) if nxt is not None else None}
        groups = {g.name: {"schedules": list(g.schedules), "responder": g.responder} for g in self.book.groups.values()}
        return {"schedules": out, "groups": groups}

    def _mode_changed(self, mode: str) -> None:
        self.policy.mode = mode

    def clock_changed(self, synchronized, step) -> None:
        self.policy.clock_synced = synchronized is not False

    def _holder_fields(self, params: dict, command: str) -> dict:
        raw = {}
        for key, value in params.items():
            key = {"fc": "facility_code", "cn": "card_number"}.get(key, key)
            if key in HOLDER_KEYS:
                raw[key] = value
            elif key not in ("holder", "generate_pin", "from_latest", "json"):
                raise CommandError("invalid", f"{command}: unknown parameter {key!r}")
        if raw.get("format"):
            try:
                raw["format"] = self.formats.canonical(str(raw["format"]))
            except Exception:
                names = ", ".join(self.formats.names)
                raise CommandError("invalid", f"{command}: format: expected one of {names}, got {raw['format']!r}") from None
        if params.get("from_latest"):
            if any(raw.get(k) is not None for k in ("card", "bit_length", "format", "facility_code", "card_number")):
                raise CommandError("invalid", f"{command}: from_latest: give either a card or from_latest")
            card = next((self._latest_entry(*e) for e in self.latest if e[2].kind == "card"), None)
            if card is None:
                raise CommandError("not_found", f"{command}: from_latest: no card has been read since the daemon started")
            raw.update(card=card["hex"], bit_length=card["bit_length"])
            if card.get("card_number") is not None and card.get("format"):
                raw.update(format=card["format"], facility_code=card["facility_code"], card_number=card["card_number"])
        if params.get("generate_pin"):
            if raw.get("pin") is not None:
                raise CommandError("invalid", f"{command}: give either pin or generate_pin")
            raw["pin"] = self.store.generate_pin(self.cfg.pin_length)
        for key, known in (("schedule", self.book.schedules), ("group", self.book.groups)):
            name = raw.get(key)
            if name and str(name).strip() not in known:
                names = ", ".join(sorted(known)) or f"none: add a [{key}s.NAME] table to the config"
                raise CommandError("invalid", f"{command}: {key}: expected one of {names}, got {name!r}")
        return raw

    def _run(self, command: str, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except EntryListError as exc:
            raise CommandError(exc.kind, f"{command}: {exc}") from None
        except sqlite3.OperationalError as exc:
            raise CommandError("unavailable", f"{command}: the entry list is busy ({exc})") from None

    def cmd_add(self, params: dict) -> dict:
        raw = self._run("holders add", self._holder_fields, params, "holders add")
        holder = self._run("holders add", self.store.add, **raw)
        self.holder_count += 1
        out = self.store.describe(holder)
        if params.get("generate_pin"):
            out["generated_pin"] = raw["pin"]  # shown once; stored only as its keyed hash
        return out

    def _ident(self, params: dict, command: str):
        ident = params.get("holder")
        if ident is None or (isinstance(ident, str) and not ident.strip()):
            raise CommandError("invalid", f"{command}: holder: give a holder id or first name")
        return ident

    def cmd_show(self, params: dict) -> dict:
        holder = self._run("holders show", self.store.get, self._ident(params, "holders show"))
        return self.store.describe(holder)

    def cmd_update(self, params: dict) -> dict:
        ident = self._ident(params, "holders update")
        raw = self._run("holders update", self._holder_fields, params, "holders update")
        if not raw:
            raise CommandError("invalid", "holders update: nothing to change")
        holder = self._run("holders update", self.store.update, ident, **raw)
        out = self.store.describe(holder)
        if params.get("generate_pin"):
            out["generated_pin"] = raw["pin"]
        return out

    def cmd_remove(self, params: dict) -> dict:
        holder = self._run("holders remove", self.store.remove, self._ident(params, "holders remove"))
        self.holder_count -= 1
        return {"removed": holder.brief()}

    async def _heavy_read(self, fn, /, *args, **kwargs):
        """Run a heavy entry-list read off the loop on the read-only view, one at a time."""
        async with self._heavy_reads:
            reader = self.store.reader()
            return await self.daemon.loop.run_in_executor(None, lambda: fn(reader, *args, **kwargs))

    async def cmd_list(self, params: dict) -> dict:
        after = _nonneg(params.get("after_id", 0), "holders list: after_id")
        limit = min(_nonneg(params.get("limit", 1000), "holders list: limit") or 1, LIST_CAP)
        search = params.get("search")

        def read(store):
            return [store.describe(h) for h in store.list(after_id=after, limit=limit, search=search)]

        holders = await self._heavy_read(read)
        return {"holders": holders, "more": len(holders) == limit}

    async def cmd_export(self, params: dict) -> dict:
        after = _nonneg(params.get("after_id", 0), "holders export: after_id")
        limit = min(_nonneg(params.get("limit", 5000), "holders export: limit") or 1, EXPORT_CAP)
        rows = await self._heavy_read(lambda store: store.export_rows(after_id=after, limit=limit))
        return {"rows": rows, "more": len(rows) == limit}

    async def cmd_import(self, params: dict) -> dict:
        """Chunked, all-or-nothing CSV import.

        ``{"text": …, "first_line": 1}`` opens a session (the text starts with the
        header) and returns ``session``; more ``{"session", "text", "first_line"}``
        chunks follow; ``{"session", "commit": true}`` inserts everything in one
        transaction, or ``ImportFailed`` lists every error by line and field;
        ``{"session", "abort": true}`` drops it.  Each chunk is validated (and its
        PINs hashed) as it arrives and kept in a staging file, so memory stays flat.
        """
        loop = self.daemon.loop
        session = params.get("session")
        if session is None:
            for other, imp in list(self.imports.items()):
                if time.monotonic() - imp.used < IMPORT_IDLE:
                    raise CommandError("unavailable", "holders import: another import is running")
                imp.discard()  # abandoned (its client went away)
                del self.imports[other]
            session = secrets.token_hex(8)
            self.imports[session] = self.store.open_import(session)
        imp = self.imports.get(session)
        if imp is None:
            raise CommandError("not_found", f"holders import: no import session {session!r}")
        imp.used = time.monotonic()
        if params.get("abort"):
            imp.discard()
            del self.imports[session]
            return {"session": session, "aborted": True}
        try:
            text = params.get("text")
            if text is not None:
                if not isinstance(text, str):
                    raise CommandError("invalid", "holders import: text: expected CSV text")
                first = _nonneg(params.get("first_line", 1), "holders import: first_line") or 1
                await loop.run_in_executor(None, imp.stage, text, first)
            if not params.get("commit"):
                return {"session": session, "rows": imp.rows, "errors": len(imp.errors)}
            del self.imports[session]
            try:
                report = await loop.run_in_executor(None, imp.commit)
            finally:
                imp.discard()
            self.holder_count += report.added
            return {"added": report.added, "rows": report.rows}
        except ImportFailed as exc:
            self.imports.pop(session, None)
            imp.discard()
            raise CommandError("invalid", f"holders import: {exc}") from None
        except BaseException:  # any other failure ends the session too: it must not block the next import
            self.imports.pop(session, None)
            imp.discard()
            raise


def _pin_param(pin) -> str | None:
    if pin is None:
        return None
    text = str(pin)
    if not (text.isascii() and text.isdigit()) or not 1 <= len(text) <= 32:
        raise CommandError("invalid", "check-credential: pin: expected 1 to 32 decimal digits")
    return text


def _nonneg(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CommandError("invalid", f"{what}: expected a non-negative integer, got {value!r}")
    return value


def create(daemon, *, door, readers: dict) -> Access:
    return Access(daemon, door=door, readers=readers)
