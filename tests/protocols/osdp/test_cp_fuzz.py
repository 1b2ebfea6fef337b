"""Fuzz: random and mutated frames fed to the CP and its decoder (``make fuzz``: 10**6).

A plain loop with a seeded random (cheap enough for 10**6 examples in minutes).  Each
example is random bytes or a mutated reply (bit flips, byte changes, cuts, insertions,
duplicated or spliced frames; plaintext and secure, with the SQN the CP expects half of
the time so that the deep paths run), delivered in random chunks while the CP polls a
secure PD.  Invariants:

* nothing raises (0 crashes);
* the decoder always resyncs: after one gap of silence nothing is pending, and a good
  frame after the example is decoded (also by a fresh decoder fed the same bytes);
* the CP recovers: every ``CHECK_EVERY`` examples the real (fake) PD is let back on the
  wire and the CP must be online and secure again and deliver a card.
"""

from __future__ import annotations

import os
import random

import pytest
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp import payloads as p
from accessd.protocols.osdp import phy
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from osdp_fakepd import KEY, Bus, Counter, FakePd


def _fuzz_examples() -> int:
    """``FUZZ_EXAMPLES`` of tests/conftest.py (loaded by path: the OSDP tests have their own conftest)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_root_conftest", Path(__file__).parents[2] / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FUZZ_EXAMPLES


FUZZ_EXAMPLES = _fuzz_examples()
SEED = int(os.environ.get("ACCESSD_FUZZ_SEED", "20261202"))
CHECK_EVERY = 2000
REPLY_CODES = [0x40, 0x41, 0x45, 0x46, 0x48, 0x49, 0x50, 0x53, 0x76, 0x78, 0x79, 0x90, 0x54, 0x4A, 0x51]
GOOD = phy.build(5, 0x40, b"", sqn=1, reply=True)


def _frames(rng: random.Random, pd: FakePd, sqn: int) -> bytes:
    code = rng.choice(REPLY_CODES)
    data = rng.randbytes(rng.choice((0, 1, 2, 3, 8, 12, 16, 32)))
    if code == 0x50 and rng.random() < 0.5:
        data = p.RawCard.from_bits("1" * rng.randint(1, 40)).build()
    s = sqn if rng.random() < 0.5 else rng.randint(0, 3)
    r = rng.random()
    if r < 0.3 and pd.session and pd.session.get("up"):
        return pd._wrap(code, data, s)  # a secure reply (the MAC chain may or may not fit)
    scb = b""
    if r < 0.45:
        scb = bytes((rng.choice((2, 3)), rng.choice((0x12, 0x14, 0x16, 0x18)), 1))[: rng.choice((2, 3))]
    try:
        return phy.build(1, code, data, sqn=s, reply=True, use_crc=rng.random() < 0.85, scb=scb)
    except ValueError:
        return rng.randbytes(8)


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if op < 0.3 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op < 0.5 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.65:
            del b[rng.randrange(len(b) + 1):]
        elif op < 0.8:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.choice((b"\x53", b"\xff", rng.randbytes(rng.randint(1, 4))))
        elif op < 0.9:
            b += raw
        else:
            b = b[: rng.randrange(len(b) + 1)] + bytearray(GOOD)
    return bytes(b)


def _recovers(bus: Bus, pd: FakePd, t: float) -> float:
    """Let the PD answer again; the CP must be online and secure and deliver a card."""
    pd.restart()
    bus.arrival = None
    bus.now = t
    end = t + 30.0
    while not (bus.cp.is_online(1) and bus.cp.is_secure(1)) and bus.now < end:
        bus.run(bus.now + 0.5)
    assert bus.cp.is_online(1) and bus.cp.is_secure(1), bus.cp.info(1)
    pd.events.append(p.RawCard.from_bits("10" * 13))
    seen = bus.run(bus.now + 0.5)
    assert [e.bits for _, e in seen if isinstance(e, ev.CardRead)] == ["10" * 13]
    bus.cp.events()
    return bus.now


@pytest.mark.fuzz
def test_fuzz_random_and_mutated_frames_never_crash_and_always_resync():
    rng = random.Random(SEED)
    pd = FakePd(1, scbk=KEY)
    cp = ControlPanel([PdConfig(address=1, scbk=KEY)], random=Counter(), now=0.0)
    bus = Bus(cp=cp, pds={1: pd})
    bus.run(1.0)
    assert cp.is_online(1) and cp.is_secure(1)
    t = bus.now
    gap = phy.Decoder().gap
    checks = 0
    for i in range(FUZZ_EXAMPLES):
        if rng.random() < 0.25:
            data = rng.randbytes(rng.randint(1, 48))
        else:
            data = _mutate(rng, _frames(rng, pd, cp._pd(1).sqn))
        # the CP: bytes in random chunks while it polls (its own commands go nowhere)
        cut = rng.randrange(len(data) + 1)
        for chunk in (data[:cut], data[cut:]):
            cp.receive(chunk, t)
            t += rng.random() * 0.002
        t += rng.random() * 0.03
        cp.tick(t)
        if rng.random() < 0.1:  # a quiet line: every partial frame is given up, nothing pends
            t += gap
            cp.tick(t)
            assert cp._decoder.pending == 0
        cp.data_to_send()
        cp.events()
        # the decoder resyncs: a good frame after the example, after one gap, is decoded
        dec = phy.Decoder(accept="reply")
        dec.feed(data, 0.0)
        dec.tick(gap)
        assert dec.pending == 0
        out = dec.feed(GOOD, gap)
        assert [f.raw for f in out if isinstance(f, phy.Frame)] == [GOOD]
        if i % CHECK_EVERY == CHECK_EVERY - 1:
            t = _recovers(bus, pd, t)
            checks += 1
    t = _recovers(bus, pd, t)
    assert checks == FUZZ_EXAMPLES // CHECK_EVERY
