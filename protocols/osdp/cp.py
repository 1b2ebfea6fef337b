"""The OSDP control panel (CP) as a sans-IO, table-driven state machine.

Feed it what the bus delivered (``receive(data, now)``), call ``tick(now)`` at
``next_deadline()``, write out ``data_to_send()`` and drain ``events()``.  Time
and randomness are injected; nothing here does I/O.

The machine has libosdp's shape:

* :class:`State` — one enum value per PD state;
* :data:`STEPS` — for each state the command it sends and the replies it expects;
* :func:`next_on_reply` / :func:`next_on_fault` — pure next-state functions for a
  good reply and for an error, both read from :data:`ON_REPLY` / :data:`ON_FAULT`;
  a pair missing from those tables raises :class:`IllegalTransition` naming the
  state and the event;
* ``ControlPanel._enter`` — the one place where a PD changes state and the entry
  actions run (SQN/session reset, timers, events), like libosdp's ``cp_state_change``.

Per PD the handshake is ID → CAP → [CHLNG → SCRYPT → [KEYSET → ID …]] → ONLINE.

The bus is half duplex and shared (multi-drop, 1–8 PDs and more):

* one command is outstanding at a time; the next command is sent only when its
  reply has been received whole, or its timeout expired with the line quiet (a
  reply that started in time is waited for until it completes);
* a command to a different PD than the previous one waits until the line has been
  quiet for ``switch_gap`` seconds (after the end of our last command and the last
  byte received): a PD that reads the line in bursts (libosdp's Python PD services
  its port every 20 ms) otherwise finds another PD's packet and its own command in
  one read, and libosdp drops the rest of a read when it skips a packet for another
  address — that was the multi-PD lost-reply fault;
* replies are matched to the PD addressed (address, then SQN); anything else is a
  :class:`~.events.BusError` and does not end the wait;
* a PD that misses a reply is retried once at once, then at most every
  ``probe_interval`` seconds (a silent PD costs the others at most one reply
  timeout per probe); OFFLINE after ``offline_after`` seconds without a valid
  reply, and an offline PD is probed (osdp_ID) every ``probe_interval`` seconds.

Policy (see README, OSDP):

* With an SCBK configured the CP never goes online in plaintext: a PD whose
  capabilities claim no secure channel is a downgrade (``SecurityAlert``), a
  plaintext reply inside a session drops the session.
* SCBK-D is used only in install mode and only until the PD is provisioned:
  handshake on SCBK-D, KEYSET the configured key, restart on it, ``Provisioned``.
* A cryptogram or MAC failure drops the session (``SecurityAlert``) and the CP
  re-handshakes after ``retry_after`` seconds.
* SQN is 0 on (re)start and repeats on a retransmit; it advances (1, 2, 3, 1, …)
  only on a valid reply.  NAK 4/6, or a reply with SQN 0 to a command with
  another SQN, means the PD restarted: re-handshake.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import events as ev
from . import payloads as p
from . import phy
from .errors import CryptogramMismatch, IllegalTransition, OsdpError, PayloadError, SecureChannelError
from .sc import SCBK_D, SCS_11, SCS_12, SCS_13, SCS_14, Session, handshake_scb


class State(enum.StrEnum):
    OFFLINE = "offline"
    ID = "id"
    CAP = "cap"
    CHLNG = "chlng"
    SCRYPT = "scrypt"
    KEYSET = "keyset"
    ONLINE = "online"
    REFUSED = "refused"


# Kept for callers that name states as module constants.
OFFLINE, ID, CAP, CHLNG, SCRYPT, KEYSET, ONLINE, REFUSED = (State.OFFLINE, State.ID, State.CAP, State.CHLNG,
                                                           State.SCRYPT, State.KEYSET, State.ONLINE, State.REFUSED)


class Fault(enum.StrEnum):
    """Why a reply was not the good one (the error events of the machine)."""

    NO_REPLY = "no_reply"  # offline_after seconds without a valid reply
    RESTARTED = "restarted"  # NAK 4/6, an SQN-0 reply, a plaintext NAK in a session
    NAK = "nak"  # any other NAK
    UNEXPECTED = "unexpected"  # a reply the state does not expect
    DOWNGRADE = "downgrade"  # no secure channel although an SCBK is configured
    SC_REQUIRED = "secure_channel_required"  # the PD wants a secure channel, no SCBK configured
    WRONG_KEY = "wrong_key"  # CCRYPT mismatch, or the PD refused CHLNG/SCRYPT with NAK 5/6
    RMAC_REJECTED = "rmac_rejected"  # the PD rejected our server cryptogram
    MAC_MISMATCH = "mac_mismatch"  # a bad RMAC-I or reply MAC
    PLAINTEXT = "plaintext_reply"  # a plaintext reply inside a session
    REKEYED = "rekeyed"  # KEYSET acknowledged while online: handshake on the new key
    RETRY = "retry"  # REFUSED's wait is over


@dataclass(frozen=True, slots=True)
class Step:
    """What a state sends and which replies count as its good reply."""

    command: type[p.Payload]
    expects: tuple[type[p.Payload], ...]


_ONLINE_REPLIES = (p.Ack, p.RawCard, p.Keypad, p.FormattedCard, p.LocalStatus, p.InputStatus, p.OutputStatus,
                   p.ReaderStatus, p.ManufacturerReply, p.Com, p.PdId, p.PdCap)

#: The table: every state's command and expected replies (ONLINE sends a POLL unless a
#: queued command or a status request is due; any of its replies is good).  REFUSED
#: sends nothing: when its wait is over it moves to ID (``Fault.RETRY``).
STEPS: dict[State, Step] = {
    State.OFFLINE: Step(p.IdRequest, (p.PdId,)),  # a probe
    State.ID: Step(p.IdRequest, (p.PdId,)),
    State.CAP: Step(p.CapRequest, (p.PdCap,)),
    State.CHLNG: Step(p.Challenge, (p.ClientCryptogram,)),
    State.SCRYPT: Step(p.ServerCryptogram, (p.InitialRMac,)),
    State.KEYSET: Step(p.KeySet, (p.Ack,)),
    State.ONLINE: Step(p.Poll, _ONLINE_REPLIES),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the pure next-state functions may know about a PD."""

    has_scbk: bool = False
    default_key: bool = False  # this handshake runs on SCBK-D (install mode, not yet provisioned)


def _after_cap(f: Facts) -> State:
    return State.CHLNG if f.has_scbk else State.ONLINE


#: Good reply → next state (a state, or a pure function of the PD's facts).
ON_REPLY: dict[State, State | Callable[[Facts], State]] = {
    State.OFFLINE: State.CAP,
    State.ID: State.CAP,
    State.CAP: _after_cap,
    State.CHLNG: State.SCRYPT,
    State.SCRYPT: lambda f: State.KEYSET if f.default_key else State.ONLINE,
    State.KEYSET: State.ID,  # provisioned: handshake again on the new key
    State.ONLINE: State.ONLINE,
}

_HANDSHAKE = (State.ID, State.CAP, State.CHLNG, State.SCRYPT, State.KEYSET)

#: Error → next state.  A (state, fault) pair that is not here is an illegal transition.
ON_FAULT: dict[tuple[State, Fault], State] = {
    **{(s, Fault.NO_REPLY): State.OFFLINE for s in (*_HANDSHAKE, State.ONLINE, State.REFUSED)},
    **{(s, Fault.RESTARTED): State.ID for s in (*_HANDSHAKE, State.ONLINE, State.OFFLINE)},
    **{(s, Fault.NAK): State.ID for s in _HANDSHAKE},
    (State.ONLINE, Fault.NAK): State.ONLINE,  # the command failed; the PD is fine
    (State.OFFLINE, Fault.NAK): State.OFFLINE,  # a probe NAKed: keep probing
    **{(s, Fault.UNEXPECTED): s for s in (State.OFFLINE, State.ID, State.CAP, State.ONLINE)},
    (State.KEYSET, Fault.UNEXPECTED): State.ID,
    (State.CAP, Fault.DOWNGRADE): State.REFUSED,
    (State.CHLNG, Fault.DOWNGRADE): State.REFUSED,
    **{(s, Fault.SC_REQUIRED): State.REFUSED for s in (*_HANDSHAKE, State.ONLINE, State.OFFLINE)},
    (State.CHLNG, Fault.WRONG_KEY): State.ID,
    (State.SCRYPT, Fault.WRONG_KEY): State.ID,
    (State.SCRYPT, Fault.RMAC_REJECTED): State.ID,
    (State.SCRYPT, Fault.MAC_MISMATCH): State.ID,
    **{(s, Fault.MAC_MISMATCH): State.ID for s in (State.KEYSET, State.ONLINE)},
    **{(s, Fault.PLAINTEXT): State.ID for s in (State.KEYSET, State.ONLINE)},
    (State.ONLINE, Fault.REKEYED): State.ID,
    (State.REFUSED, Fault.RETRY): State.ID,
}

#: Faults that are security alerts (kind = the fault's value).
ALERTS = frozenset({Fault.DOWNGRADE, Fault.SC_REQUIRED, Fault.WRONG_KEY, Fault.RMAC_REJECTED,
                    Fault.MAC_MISMATCH, Fault.PLAINTEXT})
#: Faults after which the PD is left alone for ``retry_after`` seconds.
_SLOW = frozenset({Fault.NAK, Fault.WRONG_KEY, Fault.RMAC_REJECTED, Fault.MAC_MISMATCH, Fault.PLAINTEXT})
#: Alerts reported once until the PD is online again (the others every time).
_ONCE = frozenset({Fault.WRONG_KEY, Fault.DOWNGRADE, Fault.SC_REQUIRED})


def next_on_reply(state: State, facts: Facts) -> State:
    """The state after the good reply to ``state``'s command (pure)."""
    rule = ON_REPLY.get(state)
    if rule is None:
        raise IllegalTransition(str(state), "reply")
    return rule if isinstance(rule, State) else rule(facts)


def next_on_fault(state: State, fault: Fault) -> State:
    """The state after ``fault`` in ``state`` (pure)."""
    try:
        return ON_FAULT[(state, fault)]
    except KeyError:
        raise IllegalTransition(str(state), str(fault)) from None


QUEUEABLE = (p.Led, p.Buzzer, p.Output, p.Text, p.ComSet, p.KeySet, p.Manufacturer, p.LocalStatusRequest,
             p.InputStatusRequest, p.OutputStatusRequest, p.ReaderStatusRequest, p.KeepActive, p.Abort,
             p.AcuRxSize)

_NAK_SEQUENCE, _NAK_UNSUPPORTED_SC, _NAK_SC_CONDITIONS = 4, 5, 6
_STATUS_KIND = {p.InputStatus.CODE: "input", p.OutputStatus.CODE: "output", p.ReaderStatus.CODE: "reader"}


@dataclass(frozen=True, slots=True, kw_only=True)
class PdConfig:
    address: int
    scbk: bytes | None = None
    install_mode: bool = False
    provisioned: bool = False
    use_crc: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0x7E:
            raise ValueError(f"PD address must be 0-126, got {self.address}")
        if self.scbk is not None and len(self.scbk) != 16:
            raise ValueError("scbk must be 16 bytes")
        if self.install_mode and self.scbk is None:
            raise ValueError("install_mode needs an scbk to provision")

    def __repr__(self) -> str:
        return (f"PdConfig(address={self.address}, scbk={'<set>' if self.scbk else None}, "
                f"install_mode={self.install_mode}, provisioned={self.provisioned})")


class _Pd:
    def __init__(self, cfg: PdConfig, now: float) -> None:
        self.cfg = cfg
        self.address = cfg.address
        self.state = State.ID
        self.provisioned = cfg.provisioned
        self.sqn = 0
        self.inflight: bytes | None = None
        self.inflight_cmd: tuple[p.Payload, int | None] | None = None
        self.rebuild = False  # BUSY: build the same command again (the MAC chain moved on)
        self.last_reply = now
        self.next_at = now
        self.misses = 0  # consecutive commands without a reply
        self.session: Session | None = None
        self.key = cfg.scbk
        self.use_default_key = cfg.install_mode and not cfg.provisioned
        self.queue: deque[tuple[int, p.Payload]] = deque()
        self.pdid: p.PdId | None = None
        self.caps: p.PdCap | None = None
        self.lstat: tuple[bool, bool] | None = None
        self.want_lstat = False
        self.reported: set[str] = set()
        self.announced = False  # Connecting emitted since the last Offline
        self.stats = {"sent": 0, "replies": 0, "timeouts": 0}

    @property
    def secure(self) -> bool:
        return self.session is not None and self.session.established

    def facts(self) -> Facts:
        return Facts(has_scbk=self.cfg.scbk is not None, default_key=self.use_default_key)


class ControlPanel:
    """A CP serving one or more PDs on one half-duplex bus."""

    def __init__(
        self,
        pds: list[PdConfig],
        *,
        random: Callable[[int], bytes],
        now: float,
        poll_interval: float = 0.0,
        reply_timeout: float = 0.2,
        offline_after: float = 8.0,
        probe_interval: float = 1.0,
        retry_after: float = 1.0,
        busy_delay: float = 0.05,
        switch_gap: float = 0.0,
        baud: int | None = None,
        trace: bool = False,
    ) -> None:
        if not pds:
            raise ValueError("a control panel needs at least one PD")
        addrs = [c.address for c in pds]
        if len(set(addrs)) != len(addrs):
            raise ValueError(f"PD addresses must be distinct, got {addrs}")
        for name, value in (("poll_interval", poll_interval), ("switch_gap", switch_gap),
                            ("reply_timeout", reply_timeout), ("offline_after", offline_after),
                            ("probe_interval", probe_interval)):
            if value < 0 or (name not in ("poll_interval", "switch_gap") and value == 0):
                raise ValueError(f"{name} must be positive, got {value}")
        self._random = random
        self.poll_interval = poll_interval
        self.reply_timeout = reply_timeout
        self.offline_after = offline_after
        self.probe_interval = probe_interval
        self.retry_after = retry_after
        self.busy_delay = busy_delay
        self.switch_gap = switch_gap
        self.baud = baud
        self.trace = trace
        self._pds = [_Pd(c, now) for c in pds]
        self._by_addr = {pd.address: pd for pd in self._pds}
        self._decoder = phy.Decoder(accept="reply", addresses=set(addrs))
        self._tx = bytearray()
        self._events: list[ev.Event] = []
        self._current: _Pd | None = None
        self._deadline = 0.0
        self._last_pd: _Pd | None = None  # the PD addressed last
        self._quiet = -1e18  # when the line last fell quiet (end of our command, last byte received)
        self._rr = 0
        self._next_send = now
        self._handles = 0
        for pd in self._pds:
            pd.announced = True
            self._emit(ev.Connecting(address=pd.address))

    # ------------------------------------------------------------------ public API
    def receive(self, data: bytes, now: float) -> None:
        if data:
            self._quiet = max(self._quiet, now)
        for item in self._decoder.feed(data, now):
            if isinstance(item, phy.Frame):
                self._on_frame(item, now)
            else:
                self._bus_error(item)
        self._service(now)

    def tick(self, now: float) -> None:
        for item in self._decoder.tick(now):
            if isinstance(item, phy.Frame):
                self._on_frame(item, now)
            else:
                self._bus_error(item)
        pd = self._current
        if pd is not None and now >= self._deadline:
            if self._decoder.pending:  # a reply is still on the wire: wait until it completes or stalls
                self._deadline = max(self._decoder.next_deadline(), now)
            else:
                self._timed_out(pd, now)
        for pd in self._pds:
            if pd.state is not State.OFFLINE and now >= pd.last_reply + self.offline_after:
                self._fault(pd, Fault.NO_REPLY, f"no valid reply for {self.offline_after:g} s", now)
        self._service(now)

    def next_deadline(self) -> float | None:
        times = []
        if self._current is not None:
            times.append(self._deadline)
        elif not self._decoder.pending:  # while bytes are arriving the decoder's gap decides
            times.append(self._next_send)
        d = self._decoder.next_deadline()
        if d is not None:
            times.append(d)
        times.extend(pd.last_reply + self.offline_after for pd in self._pds if pd.state is not State.OFFLINE)
        return min(times) if times else None

    def data_to_send(self) -> bytes:
        out = bytes(self._tx)
        self._tx.clear()
        return out

    def events(self) -> list[ev.Event]:
        out, self._events = self._events, []
        return out

    def state(self, address: int) -> str:
        return self._pd(address).state.value

    def is_online(self, address: int) -> bool:
        return self._pd(address).state is State.ONLINE

    def is_secure(self, address: int) -> bool:
        return self._pd(address).secure

    def info(self, address: int) -> dict:
        pd = self._pd(address)
        return {
            "address": pd.address,
            "state": pd.state.value,
            "secure": pd.secure,
            "provisioned": pd.provisioned,
            "pdid": pd.pdid.to_json() if pd.pdid else None,
            "tamper": pd.lstat[0] if pd.lstat else None,
            "power_failure": pd.lstat[1] if pd.lstat else None,
            "queued": len(pd.queue),
            **pd.stats,
        }

    @property
    def addresses(self) -> list[int]:
        return [pd.address for pd in self._pds]

    def submit(self, address: int, command: p.Payload) -> int:
        """Queue a command for an online PD; its result comes as ``CommandDone``."""
        pd = self._pd(address)
        if not isinstance(command, QUEUEABLE):
            raise ValueError(f"osdp_{command.NAME} cannot be queued (handshake/poll commands are the CP's own)")
        self._handles += 1
        handle = self._handles
        if pd.state is not State.ONLINE:
            self._emit(ev.CommandDone(address=address, handle=handle, command=command.NAME, ok=False,
                                      detail=f"PD {address} is {pd.state.value}"))
        elif isinstance(command, p.KeySet) and not pd.secure:
            self._emit(ev.CommandDone(address=address, handle=handle, command=command.NAME, ok=False,
                                      detail="KEYSET needs a secure channel"))
        else:
            pd.queue.append((handle, command))
        return handle

    # ------------------------------------------------------------------ transitions
    def _pd(self, address: int) -> _Pd:
        try:
            return self._by_addr[address]
        except KeyError:
            raise ValueError(f"no PD with address {address} on this bus") from None

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def _bus_error(self, err: OsdpError) -> None:
        addr = self._current.address if self._current else 0x7F
        self._emit(ev.BusError(address=addr, error=str(err), data=getattr(err, "data", b"")))

    def _good(self, pd: _Pd, now: float) -> None:
        self._enter(pd, next_on_reply(pd.state, pd.facts()), now)

    def _fault(self, pd: _Pd, fault: Fault, detail: str, now: float) -> None:
        self._enter(pd, next_on_fault(pd.state, fault), now, fault=fault, detail=detail)

    def _enter(self, pd: _Pd, new: State, now: float, *, fault: Fault | None = None, detail: str = "") -> None:
        """The one place a PD changes state: the entry actions and the events that follow."""
        old = pd.state
        pd.state = new
        if self._current is pd:
            self._current = None
        if fault in ALERTS and not (fault in _ONCE and fault.value in pd.reported):
            pd.reported.add(fault.value)
            self._emit(ev.SecurityAlert(address=pd.address, kind=fault.value, detail=detail))
        if fault is Fault.WRONG_KEY and pd.cfg.install_mode and not pd.provisioned:
            pd.use_default_key = not pd.use_default_key  # try the other key next time
        if old is State.ONLINE and new is not State.ONLINE:
            self._fail_queue(pd, f"PD {pd.address} left online state")
        if new is State.OFFLINE:
            self._drop_inflight(pd, f"PD {pd.address} went offline")
            pd.sqn, pd.session = 0, None
            pd.next_at = now + self.probe_interval
            if old is not State.OFFLINE:
                pd.announced = False
                self._emit(ev.Offline(address=pd.address, reason=detail or "offline"))
            return
        if old is State.OFFLINE and not pd.announced:
            pd.announced = True
            self._emit(ev.Connecting(address=pd.address))
        if new is State.ID or new is State.REFUSED:
            if old is State.ONLINE:
                self._emit(ev.Offline(address=pd.address, reason="re-handshake"))
            self._drop_inflight(pd, f"PD {pd.address} re-handshakes")
            pd.sqn, pd.session = 0, None
            if new is State.REFUSED:
                pd.next_at = now + self.retry_after * 5
            else:
                pd.next_at = now + (self.retry_after if fault in _SLOW else 0.0)
            return
        if new is old:
            return
        if new is State.ONLINE:
            if not pd.use_default_key and pd.cfg.install_mode and not pd.provisioned:
                # install mode, but the PD already holds the configured key: it is provisioned
                pd.provisioned = True
                self._emit(ev.Provisioned(address=pd.address))
            pd.reported.discard(Fault.WRONG_KEY.value)
            pd.want_lstat = True
            self._emit(ev.Online(
                address=pd.address, secure=pd.secure,
                pdid=pd.pdid.to_json() if pd.pdid else {},
                capabilities={p.CAP_NAMES.get(c.function, str(c.function)): c.compliance
                              for c in (pd.caps.capabilities if pd.caps else ())},
            ))

    def _fail_queue(self, pd: _Pd, why: str) -> None:
        while pd.queue:
            handle, cmd = pd.queue.popleft()
            self._emit(ev.CommandDone(address=pd.address, handle=handle, command=cmd.NAME, ok=False, detail=why))

    def _drop_inflight(self, pd: _Pd, why: str) -> None:
        """Forget the command on the wire; a queued one completes as failed."""
        cmd = pd.inflight_cmd
        pd.inflight = pd.inflight_cmd = None
        pd.rebuild = False
        if cmd is not None and cmd[1] is not None:
            self._emit(ev.CommandDone(address=pd.address, handle=cmd[1], command=cmd[0].NAME, ok=False, detail=why))

    # ------------------------------------------------------------------ scheduling
    def _send_time(self, pd: _Pd) -> float:
        """The earliest time ``pd`` may be addressed: its own timer and, when the previous
        command went to another PD, ``switch_gap`` after the line fell quiet."""
        if pd is self._last_pd or self._last_pd is None:
            return pd.next_at
        return max(pd.next_at, self._quiet + self.switch_gap)

    def _service(self, now: float) -> None:
        """Send the next command if the line is free.  Round robin among the PDs that are
        due; the first one in turn is waited for (switch gap) rather than passed over, so
        the PD addressed last cannot keep the bus."""
        if self._current is not None or self._decoder.pending:
            return  # the line is busy: a reply is awaited or bytes are arriving
        n = len(self._pds)
        for i in range(n):
            pd = self._pds[(self._rr + i) % n]
            if pd.next_at <= now:
                at = self._send_time(pd)
                if at <= now:
                    self._rr = (self._rr + i + 1) % n
                    self._send(pd, now)
                else:
                    self._next_send = at
                return
        self._next_send = min(self._send_time(pd) for pd in self._pds)

    def _timed_out(self, pd: _Pd, now: float) -> None:
        self._current = None
        pd.stats["timeouts"] += 1
        pd.misses += 1
        if pd.state is State.OFFLINE or pd.misses > 1:
            pd.next_at = now + self.probe_interval  # a silent PD: probe at a bounded rate
        else:
            pd.next_at = now  # one lost reply: retransmit at once

    def _send(self, pd: _Pd, now: float) -> None:
        if pd.state is State.REFUSED:
            self._fault(pd, Fault.RETRY, "", now)
        if pd.inflight is not None and not pd.rebuild:
            raw = pd.inflight  # retransmit: same bytes, same SQN
        else:
            if pd.inflight_cmd is not None:  # BUSY: rebuild the same command
                payload, handle = pd.inflight_cmd
            else:
                payload, handle = self._next_command(pd)
            raw = self._encode(pd, payload)
            pd.inflight = raw
            pd.inflight_cmd = (payload, handle)
        pd.rebuild = False
        self._tx += raw
        pd.stats["sent"] += 1
        if self.trace:
            self._emit(ev.Packet(address=pd.address, direction="tx", time=now, raw=raw))
        self._current = self._last_pd = pd
        wire = len(raw) * 10 / self.baud if self.baud else 0.0
        self._quiet = now + wire
        self._deadline = now + wire + self.reply_timeout

    def _next_command(self, pd: _Pd) -> tuple[p.Payload, int | None]:
        command = STEPS[pd.state].command
        if command is p.Challenge:
            rnd_a = self._random(8)
            if len(rnd_a) != 8:
                raise ValueError("the random source must return 8 bytes")
            key = SCBK_D if pd.use_default_key else pd.key
            pd.session = Session(key, rnd_a, key_select=0 if pd.use_default_key else 1)
            return p.Challenge(rnd_a=rnd_a), None
        if command is p.ServerCryptogram:
            return p.ServerCryptogram(cryptogram=pd.session.scrypt()), None
        if command is p.KeySet:
            return p.KeySet(key=pd.cfg.scbk), None
        if command is p.Poll:
            if pd.queue:
                handle, cmd = pd.queue.popleft()
                return cmd, handle
            if pd.want_lstat:
                pd.want_lstat = False
                return p.LocalStatusRequest(), None
        return command(), None

    def _encode(self, pd: _Pd, payload: p.Payload) -> bytes:
        data = payload.build()
        code = payload.CODE
        use_crc = pd.cfg.use_crc
        if code == p.Challenge.CODE:
            return phy.build(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc,
                             scb=handshake_scb(SCS_11, pd.session.key_select))
        if code == p.ServerCryptogram.CODE:
            return phy.build(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc,
                             scb=handshake_scb(SCS_13, pd.session.key_select))
        if pd.secure:
            return pd.session.wrap(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc)
        return phy.build(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc)

    # ------------------------------------------------------------------ replies
    def _on_frame(self, frame: phy.Frame, now: float) -> None:
        pd = self._current
        if self.trace:
            self._emit(ev.Packet(address=frame.address, direction="rx", time=now, raw=frame.raw))
        if pd is None or frame.address != pd.address:
            self._emit(ev.BusError(address=frame.address, error="reply nobody waited for", data=frame.raw))
            return
        if frame.sqn != pd.sqn:
            if frame.sqn == 0:  # the PD restarted (its SQN is 0 again)
                self._answered(pd, now)
                self._fault(pd, Fault.RESTARTED, f"PD {pd.address} answered with SQN 0", now)
                return
            self._emit(ev.BusError(address=pd.address, error=f"reply SQN {frame.sqn}, sent {pd.sqn}",
                                   data=frame.raw))
            return
        # a reply to what we sent: from here on it counts as an answer
        self._answered(pd, now)
        data = frame.data
        if pd.secure:
            if frame.scb_type is None:
                if frame.code == p.NakReply.CODE:  # plaintext NAK: the PD dropped the session (it restarted)
                    pd.reported.add("secure_channel_lost")
                    self._emit(ev.SecurityAlert(address=pd.address, kind="secure_channel_lost",
                                                detail=f"PD {pd.address} answered with a plaintext NAK"))
                    self._fault(pd, Fault.RESTARTED, "plaintext NAK", now)
                    return
                self._fault(pd, Fault.PLAINTEXT, f"PD {pd.address} sent osdp 0x{frame.code:02X} in plaintext "
                                                 "inside a secure session", now)
                return
            try:
                data = pd.session.unwrap(frame)
            except SecureChannelError as exc:
                self._fault(pd, Fault.MAC_MISMATCH, str(exc), now)
                return
        try:
            reply = p.parse_reply(frame.code, data)
        except PayloadError as exc:
            # a well-formed, authentic frame with a bad payload: a PD bug, not a lost reply
            self._advance(pd)
            self._emit(ev.BusError(address=pd.address, error=str(exc), data=frame.raw))
            return
        self._on_reply(pd, frame, reply, now)

    def _answered(self, pd: _Pd, now: float) -> None:
        self._current = None
        pd.last_reply = now
        pd.misses = 0
        pd.stats["replies"] += 1
        pd.next_at = now + self.poll_interval

    def _advance(self, pd: _Pd) -> tuple[p.Payload, int | None] | None:
        cmd = pd.inflight_cmd
        pd.sqn = 1 if pd.sqn == 3 else pd.sqn + 1
        pd.inflight = pd.inflight_cmd = None
        pd.rebuild = False
        return cmd

    def _on_reply(self, pd: _Pd, frame: phy.Frame, reply: p.Payload, now: float) -> None:
        """Classify a parsed reply as the good one or a fault, then let the tables decide."""
        if isinstance(reply, p.Busy):
            pd.rebuild = True  # same SQN, same command, a little later
            pd.next_at = now + self.busy_delay
            return
        state = pd.state
        if isinstance(reply, p.NakReply):
            self._on_nak(pd, reply, now)
            return
        sent, handle = self._advance(pd) or (None, None)
        if not isinstance(reply, STEPS[state].expects):
            if state is State.CHLNG:
                self._fault(pd, Fault.DOWNGRADE, f"PD {pd.address} answered CHLNG with osdp_{reply.NAME}", now)
            elif state is State.SCRYPT:
                self._fault(pd, Fault.RMAC_REJECTED, f"PD {pd.address} answered SCRYPT with osdp_{reply.NAME}",
                            now)
            else:
                self._fault(pd, Fault.UNEXPECTED, f"PD {pd.address} answered with osdp_{reply.NAME}", now)
            return
        if state in (State.OFFLINE, State.ID):
            pd.pdid = reply
        elif state is State.CAP:
            pd.caps = reply
            if pd.cfg.scbk is not None and not reply.secure_channel:
                self._fault(pd, Fault.DOWNGRADE, f"PD {pd.address} claims no secure channel but an SCBK is "
                                                 "configured; refusing plaintext", now)
                return
            if not (pd.cfg.install_mode and not pd.provisioned):
                pd.use_default_key = False  # SCBK-D only while provisioning in install mode
        elif state is State.CHLNG:
            if frame.scb_type != SCS_12:
                self._fault(pd, Fault.DOWNGRADE, f"PD {pd.address} answered CHLNG without SCS_12", now)
                return
            try:
                pd.session.check_ccrypt(reply.cuid, reply.rnd_b, reply.cryptogram)
            except CryptogramMismatch as exc:
                which = "SCBK-D" if pd.use_default_key else "the configured SCBK"
                self._fault(pd, Fault.WRONG_KEY, f"PD {pd.address}: {exc} using {which}", now)
                return
        elif state is State.SCRYPT:
            if frame.scb_type != SCS_14:
                self._fault(pd, Fault.RMAC_REJECTED, f"PD {pd.address} answered SCRYPT without SCS_14", now)
                return
            if len(frame.scb) >= 3 and frame.scb[2] != 0x01:
                self._fault(pd, Fault.RMAC_REJECTED, f"PD {pd.address} rejected the server cryptogram", now)
                return
            try:
                pd.session.check_rmac_i(reply.rmac)
            except SecureChannelError as exc:
                self._fault(pd, Fault.MAC_MISMATCH, str(exc), now)
                return
        elif state is State.KEYSET:
            pd.provisioned = True
            pd.use_default_key = False
            self._emit(ev.Provisioned(address=pd.address))
        else:
            self._on_online_reply(pd, reply, sent, handle, now)
            if isinstance(sent, p.KeySet) and isinstance(reply, p.Ack):
                pd.key = sent.key
                self._fault(pd, Fault.REKEYED, "", now)  # the PD switched keys: handshake on the new one
            return
        self._good(pd, now)

    def _on_nak(self, pd: _Pd, nak: p.NakReply, now: float) -> None:
        state = pd.state
        why = f"NAK {nak.code}: {nak.reason}"
        if nak.code == _NAK_SC_CONDITIONS and pd.cfg.scbk is None:
            self._advance(pd)
            self._fault(pd, Fault.SC_REQUIRED, f"PD {pd.address} requires a secure channel; configure "
                                               "reader.osdp.scbk", now)
            return
        if state in (State.CHLNG, State.SCRYPT) and nak.code in (_NAK_UNSUPPORTED_SC, _NAK_SC_CONDITIONS):
            self._fault(pd, Fault.WRONG_KEY, f"PD {pd.address} refused the secure channel handshake ({why})", now)
            return
        if nak.code in (_NAK_SEQUENCE, _NAK_SC_CONDITIONS) or (nak.code == _NAK_UNSUPPORTED_SC and pd.secure):
            self._fault(pd, Fault.RESTARTED, why, now)
            return
        cmd = self._advance(pd)
        if state is State.CHLNG:
            self._fault(pd, Fault.DOWNGRADE, f"PD {pd.address} refused CHLNG ({why})", now)
            return
        if state is State.ONLINE and cmd is not None and cmd[1] is not None:
            self._emit(ev.CommandDone(address=pd.address, handle=cmd[1], command=cmd[0].NAME, ok=False,
                                      detail=why))
        self._fault(pd, Fault.NAK, why, now)

    def _on_online_reply(self, pd: _Pd, reply: p.Payload, sent: p.Payload | None, handle: int | None,
                         now: float) -> None:
        a = pd.address
        if isinstance(reply, p.RawCard):
            self._emit(ev.CardRead(address=a, reader=reply.reader, format=reply.format, bits=reply.bits))
        elif isinstance(reply, p.Keypad):
            if reply.data:
                self._emit(ev.KeypadKeys(address=a, reader=reply.reader, keys=reply.keys))
        elif isinstance(reply, p.FormattedCard):
            self._emit(ev.FormattedCardRead(address=a, reader=reply.reader, direction=reply.direction,
                                            text=reply.data.decode("latin-1")))
        elif isinstance(reply, p.LocalStatus):
            status = (bool(reply.tamper), bool(reply.power))
            if status != pd.lstat:
                pd.lstat = status
                self._emit(ev.LocalStatus(address=a, tamper=status[0], power_failure=status[1]))
        elif isinstance(reply, (p.InputStatus, p.OutputStatus, p.ReaderStatus)):
            self._emit(ev.IoStatus(address=a, kind=_STATUS_KIND[reply.CODE], status=tuple(reply.status)))
        elif isinstance(reply, p.ManufacturerReply):
            self._emit(ev.ManufacturerData(address=a, vendor=reply.vendor, data=reply.data))
        elif isinstance(reply, p.Com) and isinstance(sent, p.ComSet):
            if reply.address != a and reply.address not in self._by_addr:
                self._by_addr.pop(a)
                pd.address = reply.address
                self._by_addr[pd.address] = pd
                self._decoder.addresses = frozenset(self._by_addr)
            if self.baud is not None:
                self.baud = reply.baud
            self._emit(ev.ComChanged(address=pd.address, old_address=a, baud=reply.baud))
        if handle is not None:
            self._emit(ev.CommandDone(address=a, handle=handle, command=sent.NAME, ok=True))
