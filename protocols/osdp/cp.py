"""The OSDP control panel (CP) as a sans-IO state machine.

Feed it what the bus delivered (``receive(data, now)``), call ``tick(now)`` at
``next_deadline()``, write out ``data_to_send()`` and drain ``events()``.  Time
and randomness are injected; nothing here does I/O.

Per PD the handshake is ID → CAP → [CHLNG → SCRYPT → [KEYSET → restart]] →
ONLINE.  The bus is half duplex: one command is outstanding at a time and PDs are
served round robin, so an absent PD costs the others only its own reply timeout.

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
* OFFLINE after ``offline_after`` seconds without a valid reply; an offline PD is
  probed every ``probe_interval`` seconds so it is back quickly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from . import events as ev
from . import payloads as p
from . import phy
from .errors import CryptogramMismatch, IllegalTransition, OsdpError, PayloadError, SecureChannelError
from .sc import SCBK_D, SCS_11, SCS_12, SCS_13, SCS_14, Session, handshake_scb

# States
OFFLINE = "offline"
ID = "id"
CAP = "cap"
CHLNG = "chlng"
SCRYPT = "scrypt"
KEYSET = "keyset"
ONLINE = "online"
REFUSED = "refused"

#: Legal transitions: the one place that checks a state change.
TRANSITIONS = {
    OFFLINE: {ID},
    ID: {CAP, ID, OFFLINE},
    CAP: {CHLNG, ONLINE, REFUSED, ID, OFFLINE},
    CHLNG: {SCRYPT, REFUSED, ID, OFFLINE},
    SCRYPT: {KEYSET, ONLINE, REFUSED, ID, OFFLINE},
    KEYSET: {ID, REFUSED, OFFLINE},
    ONLINE: {ID, OFFLINE, REFUSED},
    REFUSED: {ID, OFFLINE},
}

QUEUEABLE = (p.Led, p.Buzzer, p.Output, p.Text, p.ComSet, p.KeySet, p.Manufacturer, p.LocalStatusRequest,
             p.InputStatusRequest, p.OutputStatusRequest, p.ReaderStatusRequest, p.KeepActive, p.Abort,
             p.AcuRxSize)


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
        self.state = OFFLINE
        self.provisioned = cfg.provisioned
        self.sqn = 0
        self.inflight: bytes | None = None
        self.inflight_cmd: tuple[int, p.Payload, int | None] | None = None
        self.resend_raw = False
        self.last_reply = now
        self.next_at = now
        self.session: Session | None = None
        self.key = cfg.scbk
        self.use_default_key = cfg.install_mode and not cfg.provisioned
        self.queue: deque[tuple[int, p.Payload]] = deque()
        self.pdid: p.PdId | None = None
        self.caps: p.PdCap | None = None
        self.lstat: tuple[bool, bool] | None = None
        self.want_lstat = False
        self.reported: set[str] = set()
        self.announced = False  # Connecting emitted for this attempt
        self.offline_reported = False  # Offline emitted; cleared by the next valid reply

    @property
    def secure(self) -> bool:
        return self.session is not None and self.session.established


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
        probe_interval: float = 0.5,
        retry_after: float = 1.0,
        busy_delay: float = 0.05,
        baud: int | None = None,
        trace: bool = False,
    ) -> None:
        if not pds:
            raise ValueError("a control panel needs at least one PD")
        addrs = [c.address for c in pds]
        if len(set(addrs)) != len(addrs):
            raise ValueError(f"PD addresses must be distinct, got {addrs}")
        for name, value in (("poll_interval", poll_interval), ("reply_timeout", reply_timeout),
                            ("offline_after", offline_after), ("probe_interval", probe_interval)):
            if value < 0 or (name != "poll_interval" and value == 0):
                raise ValueError(f"{name} must be positive, got {value}")
        self._random = random
        self.poll_interval = poll_interval
        self.reply_timeout = reply_timeout
        self.offline_after = offline_after
        self.probe_interval = probe_interval
        self.retry_after = retry_after
        self.busy_delay = busy_delay
        self.baud = baud
        self.trace = trace
        self._pds = [_Pd(c, now) for c in pds]
        self._by_addr = {pd.address: pd for pd in self._pds}
        self._decoder = phy.Decoder(accept="reply", addresses=set(addrs))
        self._tx = bytearray()
        self._events: list[ev.Event] = []
        self._current: _Pd | None = None
        self._deadline = 0.0
        self._rr = 0
        self._handles = 0
        for pd in self._pds:
            self._restart(pd, now, delay=0.0)

    # ------------------------------------------------------------------ public API
    def receive(self, data: bytes, now: float) -> None:
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
            self._current = None
            self._decoder.reset()
            if pd.offline_reported:  # an unanswered probe: wait for the next one
                self._set_state(pd, OFFLINE, now)
                pd.inflight = pd.inflight_cmd = None
                pd.next_at = now + self.probe_interval
            else:
                pd.resend_raw = True
                pd.next_at = now
        for pd in self._pds:
            if pd.state != OFFLINE and not pd.offline_reported and now >= pd.last_reply + self.offline_after:
                self._go_offline(pd, now, f"no valid reply for {self.offline_after:g} s")
        self._service(now)

    def next_deadline(self) -> float | None:
        times = []
        if self._current is not None:
            times.append(self._deadline)
        else:
            times.extend(pd.next_at for pd in self._pds)
        d = self._decoder.next_deadline()
        if d is not None:
            times.append(d)
        for pd in self._pds:
            if pd.state != OFFLINE and not pd.offline_reported:
                times.append(pd.last_reply + self.offline_after)
        return min(times) if times else None

    def data_to_send(self) -> bytes:
        out = bytes(self._tx)
        self._tx.clear()
        return out

    def events(self) -> list[ev.Event]:
        out, self._events = self._events, []
        return out

    def state(self, address: int) -> str:
        """The PD's state; ``offline`` while an unreachable PD is being probed."""
        pd = self._pd(address)
        return OFFLINE if pd.offline_reported else pd.state

    def is_online(self, address: int) -> bool:
        return self._pd(address).state == ONLINE

    def is_secure(self, address: int) -> bool:
        return self._pd(address).secure

    def info(self, address: int) -> dict:
        pd = self._pd(address)
        return {
            "address": pd.address,
            "state": OFFLINE if pd.offline_reported else pd.state,
            "secure": pd.secure,
            "provisioned": pd.provisioned,
            "pdid": pd.pdid.to_json() if pd.pdid else None,
            "tamper": pd.lstat[0] if pd.lstat else None,
            "power_failure": pd.lstat[1] if pd.lstat else None,
            "queued": len(pd.queue),
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
        if pd.state != ONLINE:
            self._emit(ev.CommandDone(address=address, handle=handle, command=command.NAME, ok=False,
                                      detail=f"PD {address} is {pd.state}"))
        elif isinstance(command, p.KeySet) and not pd.secure:
            self._emit(ev.CommandDone(address=address, handle=handle, command=command.NAME, ok=False,
                                      detail="KEYSET needs a secure channel"))
        else:
            pd.queue.append((handle, command))
        return handle

    # ------------------------------------------------------------------ internals
    def _pd(self, address: int) -> _Pd:
        try:
            return self._by_addr[address]
        except KeyError:
            raise ValueError(f"no PD with address {address} on this bus") from None

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def _alert(self, pd: _Pd, kind: str, detail: str, *, once: bool = False) -> None:
        if once and kind in pd.reported:
            return
        pd.reported.add(kind)
        self._emit(ev.SecurityAlert(address=pd.address, kind=kind, detail=detail))

    def _bus_error(self, err: OsdpError) -> None:
        addr = self._current.address if self._current else 0x7F
        self._emit(ev.BusError(address=addr, error=str(err), data=getattr(err, "data", b"")))

    def _set_state(self, pd: _Pd, new: str, now: float) -> None:
        """The one place a PD changes state and the events that follow."""
        old = pd.state
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(old, new)
        pd.state = new
        if new == ONLINE:
            pd.reported.discard("wrong_key")
            pd.want_lstat = True
            self._emit(ev.Online(
                address=pd.address, secure=pd.secure,
                pdid=pd.pdid.to_json() if pd.pdid else {},
                capabilities={p.CAP_NAMES.get(c.function, str(c.function)): c.compliance
                              for c in (pd.caps.capabilities if pd.caps else ())},
            ))
        elif old == ONLINE:
            self._fail_queue(pd, f"PD {pd.address} left online state")

    def _fail_queue(self, pd: _Pd, why: str) -> None:
        while pd.queue:
            handle, cmd = pd.queue.popleft()
            self._emit(ev.CommandDone(address=pd.address, handle=handle, command=cmd.NAME, ok=False, detail=why))

    def _drop_inflight(self, pd: _Pd, why: str) -> None:
        """Forget the command on the wire; a queued one completes as failed."""
        cmd = pd.inflight_cmd
        pd.inflight = None
        pd.inflight_cmd = None
        if cmd is not None and cmd[2] is not None:
            self._emit(ev.CommandDone(address=pd.address, handle=cmd[2], command=cmd[1].NAME, ok=False, detail=why))

    def _restart(self, pd: _Pd, now: float, *, delay: float) -> None:
        """Begin the handshake again from ID with SQN 0 (after ``delay``)."""
        if pd.state == ONLINE:
            self._emit(ev.Offline(address=pd.address, reason="re-handshake"))
        self._drop_inflight(pd, f"PD {pd.address} re-handshakes")
        if pd.state != ID:
            self._set_state(pd, ID, now)
        pd.sqn = 0
        pd.session = None
        pd.resend_raw = False
        pd.next_at = now + delay
        if not pd.announced:
            pd.announced = True
            self._emit(ev.Connecting(address=pd.address))
        if self._current is pd:
            self._current = None

    def _go_offline(self, pd: _Pd, now: float, reason: str) -> None:
        self._drop_inflight(pd, f"PD {pd.address} went offline")
        self._set_state(pd, OFFLINE, now)
        pd.session = None
        pd.resend_raw = False
        pd.sqn = 0
        pd.announced = False
        pd.next_at = now + self.probe_interval
        if self._current is pd:
            self._current = None
        if not pd.offline_reported:
            pd.offline_reported = True
            self._emit(ev.Offline(address=pd.address, reason=reason))

    def _refuse(self, pd: _Pd, now: float) -> None:
        self._set_state(pd, REFUSED, now)
        pd.session = None
        pd.next_at = now + self.retry_after * 5

    # --- scheduling
    def _service(self, now: float) -> None:
        if self._current is not None:
            return
        n = len(self._pds)
        for i in range(n):
            pd = self._pds[(self._rr + i) % n]
            if pd.next_at <= now:
                self._rr = (self._rr + i + 1) % n
                self._send(pd, now)
                return

    def _send(self, pd: _Pd, now: float) -> None:
        if pd.state == REFUSED:
            self._set_state(pd, ID, now)
            pd.sqn = 0
            pd.session = None
            pd.inflight = None
        if pd.state == OFFLINE:
            # probe: start a fresh handshake; Connecting is announced on an answer
            self._set_state(pd, ID, now)
            pd.sqn = 0
            pd.inflight = None
        if pd.inflight is not None and pd.resend_raw:
            raw = pd.inflight  # retransmit: same bytes, same SQN
        else:
            if pd.inflight_cmd is not None:  # BUSY: rebuild (MAC chain moved on)
                code, payload, handle = pd.inflight_cmd
            else:
                code, payload, handle = self._next_command(pd)
            raw = self._encode(pd, code, payload)
            pd.inflight = raw
            pd.inflight_cmd = (code, payload, handle)
        pd.resend_raw = False
        self._tx += raw
        if self.trace:
            self._emit(ev.Packet(address=pd.address, direction="tx", time=now, raw=raw))
        self._current = pd
        wire = len(raw) * 10 / self.baud if self.baud else 0.0
        self._deadline = now + wire + self.reply_timeout

    def _next_command(self, pd: _Pd) -> tuple[int, p.Payload, int | None]:
        if pd.state == ID:
            return 0x61, p.IdRequest(), None
        if pd.state == CAP:
            return 0x62, p.CapRequest(), None
        if pd.state == CHLNG:
            rnd_a = self._random(8)
            if len(rnd_a) != 8:
                raise ValueError("the random source must return 8 bytes")
            key = SCBK_D if pd.use_default_key else pd.key
            pd.session = Session(key, rnd_a, key_select=0 if pd.use_default_key else 1)
            return 0x76, p.Challenge(rnd_a=rnd_a), None
        if pd.state == SCRYPT:
            return 0x77, p.ServerCryptogram(cryptogram=pd.session.scrypt()), None
        if pd.state == KEYSET:
            return 0x75, p.KeySet(key=pd.cfg.scbk), None
        if pd.queue:
            handle, cmd = pd.queue.popleft()
            return cmd.CODE, cmd, handle
        if pd.want_lstat:
            pd.want_lstat = False
            return 0x64, p.LocalStatusRequest(), None
        return 0x60, p.Poll(), None

    def _encode(self, pd: _Pd, code: int, payload: p.Payload) -> bytes:
        data = payload.build()
        use_crc = pd.cfg.use_crc
        if code == 0x76:
            return phy.build(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc,
                             scb=handshake_scb(SCS_11, pd.session.key_select))
        if code == 0x77:
            return phy.build(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc,
                             scb=handshake_scb(SCS_13, pd.session.key_select))
        if pd.secure:
            return pd.session.wrap(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc)
        return phy.build(pd.address, code, data, sqn=pd.sqn, use_crc=use_crc)

    # --- replies
    def _on_frame(self, frame: phy.Frame, now: float) -> None:
        pd = self._current
        if self.trace:
            self._emit(ev.Packet(address=frame.address, direction="rx", time=now, raw=frame.raw))
        if pd is None or frame.address != pd.address:
            self._emit(ev.BusError(address=frame.address, error="reply nobody waited for", data=frame.raw))
            return
        sent_sqn = pd.sqn
        if frame.sqn != sent_sqn:
            if frame.sqn == 0 and sent_sqn != 0:
                self._current = None
                self._restart(pd, now, delay=0.0)
                return
            self._emit(ev.BusError(address=pd.address, error=f"reply SQN {frame.sqn}, sent {sent_sqn}",
                                   data=frame.raw))
            return
        # a reply to what we sent: from here on it counts as an answer
        data = frame.data
        if pd.secure:
            if frame.scb_type is None:
                if frame.code == 0x41:  # plaintext NAK: the PD dropped the session (e.g. it restarted)
                    self._answered(pd, now)
                    self._alert(pd, "secure_channel_lost", f"PD {pd.address} answered with a plaintext NAK")
                    self._restart(pd, now, delay=0.0)
                    return
                self._answered(pd, now)
                self._alert(pd, "plaintext_reply", f"PD {pd.address} sent osdp 0x{frame.code:02X} in plaintext "
                                                  "inside a secure session")
                self._restart(pd, now, delay=self.retry_after)
                return
            try:
                data = pd.session.unwrap(frame)
            except SecureChannelError as exc:
                self._answered(pd, now)
                self._alert(pd, "mac_mismatch", str(exc))
                self._restart(pd, now, delay=self.retry_after)
                return
        try:
            reply = p.parse_reply(frame.code, data)
        except PayloadError as exc:
            # a well-formed, authentic frame with a bad payload: a PD bug, not a lost reply
            self._answered(pd, now)
            self._advance(pd)
            self._emit(ev.BusError(address=pd.address, error=str(exc), data=frame.raw))
            return
        self._answered(pd, now)
        self._handle_reply(pd, frame, reply, now)

    def _answered(self, pd: _Pd, now: float) -> None:
        self._current = None
        pd.last_reply = now
        pd.offline_reported = False
        pd.resend_raw = False
        pd.next_at = now + self.poll_interval
        if not pd.announced:
            pd.announced = True
            self._emit(ev.Connecting(address=pd.address))

    def _advance(self, pd: _Pd) -> tuple[int, p.Payload, int | None] | None:
        cmd = pd.inflight_cmd
        pd.sqn = 1 if pd.sqn == 3 else pd.sqn + 1
        pd.inflight = None
        pd.inflight_cmd = None
        return cmd

    def _handle_reply(self, pd: _Pd, frame: phy.Frame, reply: p.Payload, now: float) -> None:
        if isinstance(reply, p.Busy):
            pd.next_at = now + self.busy_delay  # same SQN, same command
            return
        if isinstance(reply, p.NakReply):
            self._on_nak(pd, reply, now)
            return
        code, sent, handle = self._advance(pd) or (0, None, None)
        state = pd.state
        if state == ID:
            if isinstance(reply, p.PdId):
                pd.pdid = reply
                self._set_state(pd, CAP, now)
            return
        if state == CAP:
            if isinstance(reply, p.PdCap):
                pd.caps = reply
                self._after_caps(pd, now)
            return
        if state == CHLNG:
            if not isinstance(reply, p.ClientCryptogram) or frame.scb_type != SCS_12:
                self._alert(pd, "downgrade", f"PD {pd.address} answered CHLNG with osdp_{reply.NAME}", once=True)
                self._refuse(pd, now)
                return
            try:
                pd.session.check_ccrypt(reply.cuid, reply.rnd_b, reply.cryptogram)
            except CryptogramMismatch as exc:
                which = "SCBK-D" if pd.use_default_key else "the configured SCBK"
                self._alert(pd, "wrong_key", f"PD {pd.address}: {exc} using {which}", once=True)
                if pd.cfg.install_mode and not pd.provisioned:
                    pd.use_default_key = not pd.use_default_key
                self._restart(pd, now, delay=self.retry_after)
                return
            self._set_state(pd, SCRYPT, now)
            return
        if state == SCRYPT:
            if not isinstance(reply, p.InitialRMac) or frame.scb_type != SCS_14:
                self._alert(pd, "rmac_rejected", f"PD {pd.address} answered SCRYPT with osdp_{reply.NAME}")
                self._restart(pd, now, delay=self.retry_after)
                return
            if len(frame.scb) >= 3 and frame.scb[2] != 0x01:
                self._alert(pd, "rmac_rejected", f"PD {pd.address} rejected the server cryptogram")
                self._restart(pd, now, delay=self.retry_after)
                return
            try:
                pd.session.check_rmac_i(reply.rmac)
            except SecureChannelError as exc:
                self._alert(pd, "mac_mismatch", str(exc))
                self._restart(pd, now, delay=self.retry_after)
                return
            if pd.use_default_key:
                self._set_state(pd, KEYSET, now)
                return
            if pd.cfg.install_mode and not pd.provisioned:
                # install mode, but the PD already holds the configured key: it is provisioned
                pd.provisioned = True
                self._emit(ev.Provisioned(address=pd.address))
            self._set_state(pd, ONLINE, now)
            return
        if state == KEYSET:
            if isinstance(reply, p.Ack):
                pd.provisioned = True
                pd.use_default_key = False
                self._emit(ev.Provisioned(address=pd.address))
                self._restart(pd, now, delay=0.0)
            return
        if state == ONLINE:
            self._on_online_reply(pd, reply, sent, handle, now)

    def _after_caps(self, pd: _Pd, now: float) -> None:
        cfg = pd.cfg
        if cfg.scbk is None:
            self._set_state(pd, ONLINE, now)
            return
        if not pd.caps.secure_channel:
            self._alert(pd, "downgrade", f"PD {pd.address} claims no secure channel but an SCBK is configured;"
                                         " refusing plaintext", once=True)
            self._refuse(pd, now)
            return
        if not (cfg.install_mode and not pd.provisioned):
            pd.use_default_key = False  # SCBK-D only while provisioning in install mode
        self._set_state(pd, CHLNG, now)

    def _on_nak(self, pd: _Pd, nak: p.NakReply, now: float) -> None:
        cmd = pd.inflight_cmd
        if nak.code in (4, 6) or (nak.code == 5 and (pd.state in (CHLNG, SCRYPT) or pd.secure)):
            if nak.code == 6 and pd.cfg.scbk is None:
                self._alert(pd, "secure_channel_required",
                            f"PD {pd.address} requires a secure channel; configure reader.osdp.scbk", once=True)
                self._advance(pd)
                self._refuse(pd, now)
                return
            if pd.state in (CHLNG, SCRYPT) and nak.code in (5, 6):
                self._alert(pd, "wrong_key", f"PD {pd.address} refused the secure channel handshake "
                                             f"(NAK {nak.code}: {nak.reason})", once=True)
                if pd.cfg.install_mode and not pd.provisioned:
                    pd.use_default_key = not pd.use_default_key
                self._restart(pd, now, delay=self.retry_after)
                return
            self._restart(pd, now, delay=0.0)
            return
        self._advance(pd)
        if pd.state == CHLNG and pd.cfg.scbk is not None:
            self._alert(pd, "downgrade", f"PD {pd.address} refused CHLNG (NAK {nak.code}: {nak.reason})", once=True)
            self._refuse(pd, now)
            return
        if pd.state != ONLINE:
            self._restart(pd, now, delay=self.retry_after)
            return
        if cmd is not None and cmd[2] is not None:
            self._emit(ev.CommandDone(address=pd.address, handle=cmd[2], command=cmd[1].NAME, ok=False,
                                      detail=f"NAK {nak.code}: {nak.reason}"))

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
            state = (bool(reply.tamper), bool(reply.power))
            if state != pd.lstat:
                pd.lstat = state
                self._emit(ev.LocalStatus(address=a, tamper=state[0], power_failure=state[1]))
        elif isinstance(reply, (p.InputStatus, p.OutputStatus, p.ReaderStatus)):
            kind = {0x49: "input", 0x4A: "output", 0x4B: "reader"}[reply.CODE]
            self._emit(ev.IoStatus(address=a, kind=kind, status=tuple(reply.status)))
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
        if isinstance(sent, p.KeySet) and isinstance(reply, p.Ack):
            pd.key = sent.key
            self._restart(pd, now, delay=0.0)  # the PD switched keys: handshake on the new one
