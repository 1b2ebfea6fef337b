"""A sans-IO fake PD and a simulated bus with a fake clock, for CP state-machine tests.

The fake PD is written from the spec independently of the CP: it parses commands
with ``phy``/``payloads`` and answers like a PD would, including the PD side of
the secure channel (built from ``sc``'s primitives, which the Annex E vectors pin).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp import phy, sc

KEY = bytes(range(0x10, 0x20))


class FakePd:
    def __init__(self, address: int = 1, *, scbk: bytes | None = None, install: bool = False,
                 caps_sc: bool = True, require_sc: bool = False, latency: float = 0.01) -> None:
        self.address = address
        self.scbk = scbk
        self.install = install
        self.caps_sc = caps_sc
        self.require_sc = require_sc
        self.latency = latency
        self.silent = False
        self.busy = 0  # answer BUSY this many times
        self.corrupt_mac = False
        self.plaintext_in_session = False
        self.events: list[p.Payload] = []
        self.received: list[tuple[str, object]] = []
        self.expect_sqn: int | None = None
        self.last: tuple[int, bytes] | None = None
        self.session = None
        self.rnd_b = bytes(range(0xA0, 0xA8))
        self.lstat = p.LocalStatus(tamper=0, power=0)
        self.keyset: bytes | None = None

    def restart(self) -> None:
        self.session = None
        self.expect_sqn = None
        self.last = None

    # -- secure channel, PD side
    def _wrap(self, code: int, data: bytes, sqn: int) -> bytes:
        s = self.session
        keys = s["keys"]
        if data:
            payload = sc._cbc_encrypt(keys.enc, sc._invert(s["c_mac"]), sc.pad(data))
            scb = bytes((2, sc.SCS_18))
        else:
            payload, scb = b"", bytes((2, sc.SCS_16))

        def tag(body: bytes) -> bytes:
            s["r_mac"] = sc.mac(keys, s["c_mac"], body)
            out = s["r_mac"][:4]
            return bytes(4) if self.corrupt_mac else out

        return phy.build(self.address, code, payload, sqn=sqn, reply=True, scb=scb, mac=tag)

    def _reply(self, frame: phy.Frame, reply: p.Payload, *, scb: bytes = b"") -> bytes:
        if self.session and self.session.get("up") and not scb and not self.plaintext_in_session:
            return self._wrap(reply.CODE, reply.build(), frame.sqn)
        return phy.build(self.address, reply.CODE, reply.build(), sqn=frame.sqn, reply=True, scb=scb)

    def handle(self, raw: bytes) -> bytes | None:
        frame = phy.parse(raw)
        if frame.address not in (self.address, phy.BROADCAST) or frame.reply:
            return None
        if self.silent:
            return None
        if frame.sqn == 0:
            self.session = None if frame.code != 0x77 else self.session
        elif self.last is not None and frame.sqn == self.last[0] and raw == self.last[2]:
            return self.last[1]  # a retransmit: the same reply again
        elif self.expect_sqn is not None and frame.sqn != self.expect_sqn:
            return phy.build(self.address, 0x41, b"\x04", sqn=frame.sqn, reply=True)
        out = self._answer(frame)
        if out is not None and out[5] != 0x79 and not (frame.scb_type is None and out[5] == 0x41):
            self.expect_sqn = 1 if frame.sqn == 3 else frame.sqn + 1
        if out is not None:
            self.last = (frame.sqn, out, raw)
        return out

    def _answer(self, frame: phy.Frame) -> bytes | None:
        data = frame.data
        up = bool(self.session and self.session.get("up"))
        if up and frame.scb_type in (sc.SCS_15, sc.SCS_17):
            s = self.session
            expected = sc.mac(s["keys"], s["r_mac"], frame.mac_input)
            if not hmac.compare_digest(expected[:4], frame.mac):
                self.session = None
                return phy.build(self.address, 0x41, b"\x06", sqn=frame.sqn, reply=True)
            s["c_mac"] = expected
            if frame.scb_type == sc.SCS_17:
                data = sc.unpad(sc._cbc_decrypt(s["keys"].enc, sc._invert(s["r_mac"]), frame.data))
        elif not up and frame.scb_type in (sc.SCS_15, sc.SCS_17):
            return phy.build(self.address, 0x41, b"\x06", sqn=frame.sqn, reply=True)  # no session to verify it
        elif up and frame.code not in (0x76, 0x77):
            self.session = None
            return phy.build(self.address, 0x41, b"\x06", sqn=frame.sqn, reply=True)
        elif self.require_sc and frame.code not in (0x61, 0x62, 0x76, 0x77):
            return phy.build(self.address, 0x41, b"\x06", sqn=frame.sqn, reply=True)
        cmd = p.parse_command(frame.code, data)
        self.received.append((cmd.NAME, cmd))
        if self.busy:
            self.busy -= 1
            return phy.build(self.address, 0x79, b"", sqn=frame.sqn, reply=True) if not up else \
                self._wrap(0x79, b"", frame.sqn)
        if isinstance(cmd, p.IdRequest):
            return self._reply(frame, p.PdId(vendor=b"\x0a\x0b\x0c", model=1, version=2, serial=1234,
                                             fw_major=1, fw_minor=2, fw_build=3))
        if isinstance(cmd, p.CapRequest):
            caps = [p.Capability(function=4, compliance=1, count=1), p.Capability(function=5, compliance=1, count=1),
                    p.Capability(function=8, compliance=1, count=0)]
            if self.caps_sc:
                caps.append(p.Capability(function=9, compliance=1, count=1))
            return self._reply(frame, p.PdCap(capabilities=tuple(caps)))
        if isinstance(cmd, p.Challenge):
            if not self.caps_sc:
                return phy.build(self.address, 0x41, b"\x03", sqn=frame.sqn, reply=True)
            ks = frame.scb[2]
            key = sc.SCBK_D if ks == 0 and self.install else (self.scbk if ks == 1 else None)
            if key is None:
                return phy.build(self.address, 0x41, b"\x06", sqn=frame.sqn, reply=True)
            keys = sc.session_keys(key, cmd.rnd_a)
            self.session = {"keys": keys, "rnd_a": cmd.rnd_a, "up": False}
            crypt = sc.client_cryptogram(keys, cmd.rnd_a, self.rnd_b)
            return self._reply(frame, p.ClientCryptogram(cuid=b"CUID0001", rnd_b=self.rnd_b, cryptogram=crypt),
                               scb=bytes((3, sc.SCS_12, ks)))
        if isinstance(cmd, p.ServerCryptogram):
            s = self.session
            if s is None:
                return phy.build(self.address, 0x41, b"\x06", sqn=frame.sqn, reply=True)
            expected = sc.server_cryptogram(s["keys"], s["rnd_a"], self.rnd_b)
            ok = hmac.compare_digest(expected, cmd.cryptogram)
            rmac = sc.initial_rmac(s["keys"], cmd.cryptogram)
            if ok:
                s.update(up=True, r_mac=rmac, c_mac=b"")
            return self._reply(frame, p.InitialRMac(rmac=rmac), scb=bytes((3, sc.SCS_14, 1 if ok else 0xFF)))
        if isinstance(cmd, p.KeySet):
            self.keyset = cmd.key
            reply = self._reply(frame, p.Ack())
            self.scbk = cmd.key
            self.install = False
            return reply
        if isinstance(cmd, p.Poll):
            if self.events:
                return self._reply(frame, self.events.pop(0))
            return self._reply(frame, p.Ack())
        if isinstance(cmd, p.LocalStatusRequest):
            return self._reply(frame, self.lstat)
        if isinstance(cmd, p.ComSet):
            out = self._reply(frame, p.Com(address=cmd.address, baud=cmd.baud))
            self.moved_to = cmd.address
            return out
        if isinstance(cmd, p.Text):
            return phy.build(self.address, 0x41, b"\x03", sqn=frame.sqn, reply=True) if not up else \
                self._wrap(0x41, b"\x03", frame.sqn)
        return self._reply(frame, p.Ack())


@dataclass
class Bus:
    """Discrete-event simulation of one RS485 bus: the CP, fake PDs, a fake clock."""

    cp: object
    pds: dict
    now: float = 0.0
    log: list = field(default_factory=list)
    sent: list = field(default_factory=list)
    replies: list = field(default_factory=list)  # times replies reached the CP
    arrival: tuple | None = None  # a reply still on the wire

    def run(self, until: float) -> list:
        """Advance the clock to ``until``; returns the (time, event) pairs seen."""
        seen = []
        arrival = self.arrival
        while True:
            out = self.cp.data_to_send()
            # usually one command; several when forged replies hurried the CP along
            for frame in phy.Decoder(accept="command").feed(out, 0.0) if out else ():
                self.sent.append((self.now, frame))
                pd = self.pds.get(frame.address)
                reply = pd.handle(frame.raw) if pd is not None else None
                if reply is not None:
                    arrival = (self.now + pd.latency, reply)
            for e in self.cp.events():
                seen.append((round(self.now, 6), e))
            deadline = self.cp.next_deadline()
            t = min(x for x in (deadline, arrival[0] if arrival else None, until) if x is not None)
            if t >= until and (arrival is None or arrival[0] > until) and (deadline is None or deadline > until):
                self.now = until
                break
            self.now = max(self.now, t)
            if arrival is not None and arrival[0] <= self.now:
                data, arrival = arrival[1], None
                self.replies.append(self.now)
                self.cp.receive(data, self.now)
            else:
                self.cp.tick(self.now)
        self.arrival = arrival
        self.log.extend(seen)
        return seen


class Counter:
    """A deterministic 'random' source for tests."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, k: int) -> bytes:
        self.n += 1
        return bytes((self.n + i) & 0xFF for i in range(k))

