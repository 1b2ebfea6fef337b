"""The access component: credentials in, decisions out (``daemon.access``).

Every credential a reader reads comes to :meth:`Access.present` in the loop thread.
It publishes ``credential.read``, looks the holder up in the entry list, decides
(``accessd.access.decision``) and acts:

* granted — a holder with a use count has one use taken in a committed transaction
  (``synchronous=FULL``) **before** the door is told: a kill -9 or a power cut at any
  instant can only lose a grant, never give one more than the count;
  then ``access.granted``, ``daemon.door.grant(...)``, the reader's feedback;
* denied — ``access.denied`` with its reason; an unknown credential or a wrong PIN
  counts towards the reader's brute-force lockout (counters in the entry list
  database, so a restart does not reset them); reaching ``lockout_attempts`` within
  ``lockout_window`` locks the reader for ``lockout_duration`` (``alarm.lockout``),
  during which every credential at that reader is denied ``locked_out``.

Card + PIN: when ``access.card_and_pin`` is on, a card whose holder also has a PIN
waits (up to ``pin_timeout``) for a PIN at the same reader; the PIN must be that
holder's (``pin_mismatch`` otherwise) and no PIN means ``pin_timeout``.  A PIN alone
that belongs to a holder who has a card is ``pin_mismatch``: that holder needs both.

Upstream ("use connected door controller"): a credential not in the local list is
asked upstream when ``access.upstream`` is set; one found locally never is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time
from collections import deque
from datetime import UTC, datetime

from accessd.access import upstream as upstream_mod
from accessd.access.decision import Decision, Holder, decide
from accessd.access.decision import deny as deny_decision
from accessd.errors import CommandError
from accessd.protocols.credential import Credential
from accessd.store.entrylist import (
    HOLDER_KEYS,
    EntryList,
    EntryListError,
    ImportFailed,
    ImportSession,
)

log = logging.getLogger(__name__)

IMPORT_IDLE = 120.0  # seconds after which an import session without chunks is abandoned
COUNTED = ("unknown_credential", "pin_mismatch")  # reasons that count towards a lockout


def reversed_uid(bits: str) -> str | None:
    """The card value with its bytes in the other order (MIFARE UIDs are read both ways)."""
    if len(bits) % 8:
        return None
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return raw[::-1].hex().upper()


class _Pending:
    """A card that waits for its holder's PIN at one reader."""

    __slots__ = ("credential", "holder_id", "deadline", "handle", "future")

    def __init__(self, credential, holder_id, deadline, handle, future) -> None:
        self.credential = credential
        self.holder_id = holder_id
        self.deadline = deadline
        self.handle = handle
        self.future = future


class Access:
    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.cfg = daemon.config.access
        self.tz = daemon.tz
        self.store = EntryList(daemon.state_dir, formats=daemon.formats)
        self.upstream = upstream_mod.build(self.cfg.upstream, self.cfg.upstream_fake_grants)
        self.latest: deque[tuple[float, str, Credential]] = deque(maxlen=self.cfg.latest_size)
        self.pending: dict[str, _Pending] = {}
        self.imports: dict[str, ImportSession] = {}
        self.counts = {"granted": 0, "denied": 0}
        self.closed = False
        # lockouts in memory for the hot path; the database keeps them across restarts
        self._lockouts = dict(self.store.state.execute("SELECT reader, until FROM reader_lockouts WHERE until > ?", (time.time(),)))
        self._failing = {r for (r,) in self.store.state.execute("SELECT DISTINCT reader FROM reader_failures")}
        self.formats = daemon.formats
        daemon.access = self
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

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.closed = True
        for reader in list(self.pending):
            self._drop_pending(reader)
        for imp in list(self.imports.values()):
            imp.discard()
        self.imports.clear()
        self.store.close()

    def status(self) -> dict:
        now = time.time()
        locked = {}
        for reader, until in self.store.state.execute("SELECT reader, until FROM reader_lockouts WHERE until > ?", (now,)):
            locked[reader] = _iso(until)
        return {
            "granted": self.counts["granted"],
            "denied": self.counts["denied"],
            "locked_out": locked,
            "waiting_for_pin": sorted(self.pending),
            "upstream": self.upstream.name if self.upstream else None,
        }

    # ------------------------------------------------------------------ the reader path

    def present(self, credential: Credential, reader: str):
        """A credential read at ``reader`` (loop thread).

        Returns the :class:`Decision`, or a future of it when the decision waits
        (for a PIN after a card, or for the upstream controller).  Subscribers get the
        events after the relay has moved.
        """
        with self.daemon.relay_first():
            return self._present(credential, reader)

    def _present(self, credential: Credential, reader: str):
        self._remember(credential, reader)
        cred_json = credential.to_json()
        self.daemon.publish("credential.read", credential=cred_json, reader=reader)
        if self.closed:  # a read that arrives while the daemon stops: the door stays locked
            self.daemon.publish("access.denied", reason="unknown_credential", credential=cred_json, holder=None,
                                reader=reader, detail="stopping")
            return Decision(granted=False, reason="unknown_credential")
        now = time.time()
        pending = self.pending.get(reader)
        if credential.kind == "pin" and pending is not None:
            self._drop_pending(reader, keep_future=True)
            return self._finish_card_pin(pending, credential.pin, reader, now)
        if pending is not None:  # another card or a QR: the one waiting got no PIN
            self._pin_timed_out(reader)
        if self._locked(reader, now):
            return self._act(deny_decision("locked_out"), credential, reader, now)
        holder = self._find(credential)
        if holder is None and self.upstream is not None:
            return asyncio.ensure_future(self._ask_upstream(credential, reader))
        pin_ok = None
        if holder is not None and self.cfg.card_and_pin and holder.has_card and holder.has_pin:
            if credential.kind == "card":
                return self._wait_for_pin(credential, holder, reader)
            if credential.kind == "pin":
                pin_ok = False  # this holder needs the card first
        decision = decide(holder=holder, now=_utc(now), tz=self.tz, pin_ok=pin_ok)
        return self._act(decision, credential, reader, now)

    def deny(self, reason: str, reader: str, **fields) -> None:
        """A denial decided by a reader (``invalid_format``, ``pin_timeout`` …)."""
        if reason == "pin_timeout" and reader in self.pending:
            self._pin_timed_out(reader)  # the keypad gave up: that is the waiting card's answer
            return
        fields.setdefault("holder", None)
        self.counts["denied"] += 1
        self.daemon.publish("access.denied", reason=reason, reader=reader, **fields)
        self._feedback(reader, False)

    def _find(self, credential: Credential) -> Holder | None:
        holder = self.store.find(credential)
        if holder is not None or credential.kind != "card" or credential.format is not None:
            return holder
        # Not decoded by the reader: try each format that reads these bits with good parity.
        for match in self.formats.matches(credential.bits):
            if match.parity_ok is not False and match.card_number is not None:
                holder = self.store.find_card(None, match.format, match.facility_code, match.card_number)
                if holder is not None:
                    return holder
        return None

    def _wait_for_pin(self, credential: Credential, holder: Holder, reader: str):
        loop = self.daemon.loop
        future = loop.create_future()
        deadline = self.daemon.clock() + self.cfg.pin_timeout
        pending = _Pending(credential, holder.id, deadline, None, future)
        pending.handle = loop.call_later(self.cfg.pin_timeout, self._pin_timed_out, reader, pending)
        self.pending[reader] = pending
        return future

    def _pin_timed_out(self, reader: str, which: _Pending | None = None) -> None:
        """The card waiting at ``reader`` (``which``, when its own timer fires) got no PIN."""
        pending = self.pending.get(reader)
        if pending is None or (which is not None and pending is not which):
            return  # answered already, or another card waits there now
        del self.pending[reader]
        pending.handle.cancel()
        holder = self._get(pending.holder_id)
        decision = Decision(granted=False, reason="pin_timeout", holder=holder, remaining_uses=holder.uses if holder else None)
        self._act(decision, pending.credential, reader, time.time())
        if not pending.future.done():
            pending.future.set_result(decision)

    def _drop_pending(self, reader: str, *, keep_future: bool = False) -> None:
        pending = self.pending.pop(reader, None)
        if pending is None:
            return
        pending.handle.cancel()
        if not keep_future and not pending.future.done():
            pending.future.cancel()

    def _finish_card_pin(self, pending: _Pending, pin: str, reader: str, now: float) -> Decision:
        holder = self._get(pending.holder_id)
        if self._locked(reader, now):
            decision = deny_decision("locked_out")
        else:
            pin_ok = holder is not None and self.store.pin_matches(holder.id, pin)
            decision = decide(holder=holder, now=_utc(now), tz=self.tz, pin_ok=pin_ok)
        decision = self._act(decision, pending.credential, reader, now)
        if not pending.future.done():
            pending.future.set_result(decision)
        return decision

    def _get(self, holder_id: int) -> Holder | None:
        try:
            return self.store.get(holder_id)
        except EntryListError:
            return None

    async def _ask_upstream(self, credential: Credential, reader: str) -> Decision:
        try:
            answer = await asyncio.wait_for(self.upstream.decide(credential, reader), self.cfg.upstream_timeout)
        except Exception as exc:  # unreachable, timed out, broken: the credential stays unknown
            log.warning("upstream %s did not answer for %s: %s", self.upstream.name, reader, exc)
            answer = None
        now = time.time()
        if self.closed:
            return Decision(granted=False, reason="unknown_credential")
        if answer is not None and answer.granted:
            self.counts["granted"] += 1
            holder = answer.holder
            self.daemon.publish(
                "access.granted", credential=credential.to_json(), holder=holder, reader=reader, reason=None,
                remaining_uses=None, upstream=self.upstream.name,
            )
            self._door_grant(None, holder, reader)
            self._feedback(reader, True)
            self._clear_failures(reader)
            return Decision(granted=True, reason=None)
        return self._act(deny_decision("unknown_credential"), credential, reader, now, upstream=self.upstream.name)

    def _act(self, decision: Decision, credential: Credential, reader: str, now: float, **extra) -> Decision:
        """Carry out a decision: take the use, log, unlock, give feedback."""
        holder = decision.holder
        if decision.granted and holder is not None and holder.uses is not None:
            try:
                ok, remaining = self.store.consume_use(holder.id)  # committed before the relay acts
            except sqlite3.Error as exc:  # disk full, I/O error: no use taken, so no grant
                log.error("cannot take a use of holder %s: %s", holder.id, exc)
                ok, remaining = False, holder.uses
                extra["error"] = f"the use could not be recorded: {exc}"
            decision = (
                Decision(granted=True, reason=None, holder=holder, remaining_uses=remaining)
                if ok
                else Decision(granted=False, reason="uses_exhausted", holder=holder, remaining_uses=remaining)
            )
        brief = holder.brief() if holder is not None else None
        fields = dict(credential=credential.to_json(), holder=brief, reader=reader)
        if decision.granted:
            self.counts["granted"] += 1
            self.daemon.publish(
                "access.granted", reason=None, remaining_uses=decision.remaining_uses, **fields, **extra
            )
            self._door_grant(holder.access_time, brief, reader)
            self._feedback(reader, True)
            self._clear_failures(reader)
            return decision
        self.counts["denied"] += 1
        self.daemon.publish(
            "access.denied", reason=decision.reason, remaining_uses=decision.remaining_uses, **fields, **extra
        )
        if decision.reason in COUNTED and self.cfg.lockout_attempts:
            self._failing.add(reader)
            try:
                count, until = self.store.record_failure(
                    reader,
                    now,
                    attempts=self.cfg.lockout_attempts,
                    window=self.cfg.lockout_window,
                    duration=self.cfg.lockout_duration,
                )
            except sqlite3.Error as exc:  # the denial stands; only the count is lost
                log.error("cannot count a failure at %s: %s", reader, exc)
                count, until = 0, None
            if until is not None:
                self._lockouts[reader] = until
                self.daemon.publish(
                    "alarm.lockout", reader=reader, failures=count, window=self.cfg.lockout_window, until=_iso(until)
                )
        self._feedback(reader, False)
        return decision

    def _clear_failures(self, reader: str) -> None:
        """A grant resets the reader's failure count (a write only when there is one)."""
        if reader in self._failing:
            self._failing.discard(reader)
            self.store.clear_failures(reader)

    def _door_grant(self, seconds: float | None, holder: dict | None, reader: str) -> None:
        door = self.daemon.door
        if door is None:
            log.warning("access granted at %s but no door is configured", reader)
            return
        door.grant(seconds=seconds, holder=holder, reader=reader)

    def _feedback(self, reader: str, granted: bool) -> None:
        r = self.daemon.readers.get(reader)
        feedback = getattr(r, "feedback", None)
        if feedback is not None:
            try:
                feedback(granted)
            except Exception:  # feedback is a courtesy: it must not undo the decision
                log.exception("reader %s feedback failed", reader)

    def _remember(self, credential: Credential, reader: str) -> None:
        """Keep the read for ``latest`` (decoded only when asked: not on the way to the relay)."""
        if credential.kind != "pin":
            self.latest.appendleft((time.time(), reader, credential))

    def _latest_entry(self, ts: float, reader: str, credential: Credential) -> dict:
        entry: dict = {"time": _iso(ts), "reader": reader, **credential.to_json()}
        if credential.kind == "card":
            entry.update(bits=credential.bits, reversed_uid=reversed_uid(credential.bits))
            if credential.format is None:
                with contextlib.suppress(Exception):
                    chosen = self.formats.decode(credential.bits).chosen
                    if chosen is not None and chosen.parity_ok is not False:
                        entry.update(format=chosen.format, facility_code=chosen.facility_code,
                                     card_number=chosen.card_number)
        return entry

    def _locked(self, reader: str, now: float) -> bool:
        until = self._lockouts.get(reader)
        if until is None:
            return False
        if until <= now:
            del self._lockouts[reader]
            return False
        return True

    # ------------------------------------------------------------------ commands

    def known_readers(self) -> set[str]:
        """The reader ids a credential may be presented at: the configured readers (or,
        with none, the door's own ``reader.id``)."""
        return set(self.daemon.readers) or {self.daemon.config.reader.id}

    def _default_reader(self) -> str:
        known = self.known_readers()
        if len(known) == 1:
            return next(iter(known))
        if self.daemon.config.reader.id in known:
            return self.daemon.config.reader.id
        raise CommandError("invalid", f"check-credential: reader: several readers, give one of {', '.join(sorted(known))}")

    def _credentials_from(self, params: dict) -> tuple[Credential, str | None]:
        """The credential to check and an extra PIN (card + PIN)."""
        card, bits, pin, qr = (params.get(k) for k in ("card", "bit_length", "pin", "qr"))
        given = [k for k, v in (("card", card), ("qr", qr)) if v is not None]
        if len(given) > 1:
            raise CommandError("invalid", "check-credential: give one of card, pin or qr (a PIN may follow a card)")
        try:
            if card is not None:
                if bits is None:
                    raise CommandError("invalid", "check-credential: bit_length: required with card")
                if not isinstance(bits, int) or isinstance(bits, bool):
                    raise CommandError("invalid", f"check-credential: bit_length: expected a number of bits, got {bits!r}")
                try:
                    cred = Credential.card(str(card).removeprefix("0x"), bits)
                except ValueError as exc:
                    raise CommandError("invalid", f"check-credential: card: {exc}") from None
                return cred, _pin_param(pin)
            if qr is not None:
                return Credential(kind="qr", qr=str(qr)), None
            if pin is not None:
                return Credential(kind="pin", pin=_pin_param(pin)), None
        except ValueError as exc:
            raise CommandError("invalid", f"check-credential: {exc}") from None
        raise CommandError("invalid", "check-credential: give card (with bit_length), pin or qr")

    def evaluate(self, credential: Credential, reader: str, pin: str | None = None) -> tuple[Decision, dict]:
        """The decision without acting on it (check-credential's dry run)."""
        now = time.time()
        extra: dict = {}
        if self._locked(reader, now):
            return deny_decision("locked_out"), extra
        holder = self._find(credential)
        if holder is None and self.upstream is not None:
            extra["upstream"] = f"would ask {self.upstream.name}"
        pin_ok = None
        if holder is not None and self.cfg.card_and_pin and holder.has_card and holder.has_pin:
            if credential.kind == "card":
                if pin is None:
                    extra["pin_required"] = True
                    return Decision(granted=False, reason="pin_timeout", holder=holder, remaining_uses=holder.uses), extra
                pin_ok = self.store.pin_matches(holder.id, pin)
                pin = None
            else:
                pin_ok = False  # this holder's PIN alone: the card must come first
        if pin is not None:
            extra["pin_ignored"] = True  # the card's holder needs no PIN: the door would not wait for it
        return decide(holder=holder, now=_utc(now), tz=self.tz, pin_ok=pin_ok), extra

    async def cmd_check(self, params: dict) -> dict:
        credential, pin = self._credentials_from(params)
        reader = params.get("reader") or self._default_reader()
        known = self.known_readers()
        if not isinstance(reader, str) or reader not in known:
            # an invented reader id would dodge the per-reader lockout and grant "at" no door
            raise CommandError("invalid", f"check-credential: reader: expected one of {', '.join(sorted(known))}, got {reader!r}")
        extra: dict = {}
        if params.get("present"):
            outcome = self.present(credential, reader)
            if pin is not None:
                if isinstance(outcome, asyncio.Future) and reader in self.pending:
                    self.present(Credential(kind="pin", pin=pin), reader)
                else:
                    extra["pin_ignored"] = True  # the door did not wait for a PIN
            decision = await outcome if isinstance(outcome, asyncio.Future) else outcome
        else:
            decision, extra = self.evaluate(credential, reader, pin)
        out = decision.to_json()
        out.update(reader=reader, credential=credential.to_json(), present=bool(params.get("present")), **extra)
        return out

    def cmd_latest(self, params: dict) -> dict:
        return {"latest": [self._latest_entry(*e) for e in self.latest]}

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

    def cmd_list(self, params: dict) -> dict:
        after = _nonneg(params.get("after_id", 0), "holders list: after_id")
        limit = min(_nonneg(params.get("limit", 1000), "holders list: limit") or 1, 10_000)
        search = params.get("search")
        holders = self.store.list(after_id=after, limit=limit, search=search)
        return {"holders": [self.store.describe(h) for h in holders], "more": len(holders) == limit}

    def cmd_export(self, params: dict) -> dict:
        after = _nonneg(params.get("after_id", 0), "holders export: after_id")
        limit = min(_nonneg(params.get("limit", 5000), "holders export: limit") or 1, 50_000)
        rows = self.store.export_rows(after_id=after, limit=limit)
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


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def create(daemon) -> Access:
    return Access(daemon)
