"""The Wiegand reader component: D0/D1 edges → frames → card and PIN credentials.

Path of a credential (loop thread unless noted)::

    GPIO callback thread: WiegandReader edge (line, level, time on the shell's clock)
      → loop.call_soon_threadsafe → EdgeDecoder.edge → Frame (at the adaptive end of frame)
      → a keypress frame (reader.wiegand.keypress_format)? → keys → pipeline.keys
      → else a card → pipeline.card (protocols/pipeline.py: format, preference,
        convert_to, accept_raw — the same interpretation as every other reader)
      → Presented / Rejected / PinAbandoned → sink.submit(outcome, reader id)

The decoder's end of frame, the PIN timeout, the stuck-line check and the LED's
return to idle are one machine on the shell's scheduler (``next_deadline()`` of each).  A data line held low for more
than half a second (an unpowered reader, a shorted or cut cable pulled low) makes
the reader ``not_connected`` with ``reader.disconnected`` (``reason`` names the
line); it is ``connected`` again, with ``reader.connected``, once both lines are
high.  ``feedback(granted)`` lights the configured LED
colour and beeps, then returns to the idle colour after ``feedback_time``.

On mock GPIO the component registers ``simulate.card``, ``simulate.wiegand`` and
``simulate.keys``: they drive the mock D0/D1 pins from a worker thread with real
timing (the same edges, decoder and timers as hardware) and answer once the
frame has been decided.  Because that thread can be paused by the OS for a few
milliseconds on a busy machine (a real reader is never paused), the end-of-frame
floor is at least 30 ms on mock GPIO; hardware uses ``frame_floor`` as set.

Cards are read with ``shell.formats``: the built-ins plus the config's ``[[formats]]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from accessd.errors import CommandError, ConfigError
from accessd.protocols.keypad import InvalidKey, PinAssembler
from accessd.protocols.pipeline import CardInterpreter, Presented, ReaderPipeline, Rejected
from accessd.protocols.wiegand.decoder import Discarded, EdgeDecoder, Frame, Glitch, Timing
from accessd.protocols.wiegand.errors import KeypressError, UnknownFormat, WiegandError
from accessd.protocols.wiegand.formats import FormatLibrary, bits_to_hex, check_bits, hex_to_bits
from accessd.protocols.wiegand.keypress import KEYS, KeypressFormat
from accessd.wiring.feedback import ReaderFeedback
from accessd.wiring.wiegand import WiegandReader

log = logging.getLogger(__name__)

SIM_INTERVAL = 0.002  # seconds between simulated bits (a typical reader)
SIM_FRAME_GAP = 0.03  # seconds between simulated keypress frames
MOCK_FLOOR = 0.03  # end-of-frame floor on mock GPIO (see WiegandComponent.__init__)
STUCK_AFTER = 0.5  # seconds a data line may stay low before the reader counts as disconnected


def create(daemon, sink):
    if daemon.config.reader.protocol != "wiegand":
        return None
    return WiegandComponent(daemon, sink, daemon.formats)


def _decision(decided) -> dict:
    """What ``access.present`` decided, for simulate's answer (nothing while it waits, e.g. for a PIN)."""
    granted = getattr(decided, "granted", None)
    if granted is None:
        return {}
    return {"decision": "granted" if granted else "denied", "reason": getattr(decided, "reason", None)}


class WiegandComponent:
    """One Wiegand reader: the component and its only reader."""

    def __init__(self, daemon, sink, library: FormatLibrary) -> None:
        self.daemon = daemon
        self.sink = sink
        self.cfg = cfg = daemon.config.reader.wiegand
        self.id = daemon.config.reader.id
        self.library = library
        path = "reader.wiegand"
        try:
            cards = CardInterpreter(library, cfg.card_settings())
        except UnknownFormat as exc:
            key = "format" if exc.name == cfg.format else "convert_to" if exc.name == cfg.convert_to else "preference"
            raise ConfigError(f"{path}.{key}", str(exc)) from None
        floor, ceiling = cfg.frame_floor, cfg.frame_ceiling
        if daemon.mock:  # simulated edges come from a Python thread the OS may pause for a few ms
            floor = max(floor, MOCK_FLOOR)
            ceiling = max(ceiling, floor)
        self.timing = Timing(k=cfg.frame_k, floor=floor, ceiling=ceiling,
                             min_pulse=cfg.glitch_pulse, coincidence=cfg.glitch_coincidence)
        self.decoder = EdgeDecoder(self.timing)
        self.keypress: KeypressFormat | None = None
        if cfg.keypress_format != "none":
            try:
                self.keypress = KeypressFormat(name=cfg.keypress_format, key_map=cfg.key_map,
                                               facility_code=cfg.keypress_facility_code, library=library)
            except (KeypressError, ValueError) as exc:
                raise ConfigError(f"{path}.keypress_format", str(exc)) from None
        self.pipeline = ReaderPipeline(cards=cards, pins=PinAssembler(length=cfg.pin_length, timeout=cfg.pin_timeout))
        self.readers = [self]
        self.device: WiegandReader | None = None
        self.lights: ReaderFeedback | None = None
        self._seen = 0  # edges taken by the loop (the device counts those it handed over)
        self._defers = 0
        self._deferring = False  # edges still queued on the loop: the tick waits for them
        self._low_since: list[float | None] = [None, None]  # per line, while it is low
        self.fault: str | None = None  # why the reader counts as disconnected
        self._idle_at: float | None = None  # when the LED returns to its idle colour
        self._waiters: list[asyncio.Future] = []
        self._send_lock = asyncio.Lock()
        self.counts = {"frames": 0, "cards": 0, "keys": 0, "invalid": 0, "glitches": 0, "noise": 0}
        self.last_frame: dict | None = None
        daemon.scheduler.add(f"reader {self.id}", self.next_deadline, self._tick)
        daemon.register_command("simulate.card", self.cmd_card, privileged=True)
        daemon.register_command("simulate.wiegand", self.cmd_wiegand, privileged=True)
        daemon.register_command("simulate.keys", self.cmd_keys, privileged=True)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = self.daemon.loop
        cfg = self.cfg
        self.device = WiegandReader(cfg.d0, cfg.d1, clock=self.daemon.clock, pin_factory=self.daemon.pin_factory,
                                    on_edge=lambda line, level, t: loop.call_soon_threadsafe(self._edge, line, level, t))
        if cfg.led_green_pin is not None or cfg.led_red_pin is not None or cfg.beeper_pin is not None:
            self.lights = ReaderFeedback(green_pin=cfg.led_green_pin, red_pin=cfg.led_red_pin,
                                         beeper_pin=cfg.beeper_pin, active_low=cfg.led_active_low,
                                         beeper_active_low=cfg.beeper_active_low, pin_factory=self.daemon.pin_factory)
            self.lights.show(cfg.led_idle)
        self.daemon.publish("reader.connected", reader=self.id, protocol="wiegand", d0=cfg.d0, d1=cfg.d1)
        now = self.daemon.clock()
        for line, level in enumerate(self.device.levels):
            if not level:  # already low at start: stuck unless a pulse ends very soon
                self._low_since[line] = now
        self.daemon.scheduler.poke()

    async def stop(self) -> None:
        self._idle_at = None
        for fut in self._waiters:
            if not fut.done():
                fut.cancel()
        if self.device is not None:
            self.device.close()
            self.device = None
        if self.lights is not None:
            self.lights.close()
            self.lights = None

    # ------------------------------------------------------------ the reader contract
    def status(self) -> dict:
        return {
            "state": "connected" if self.device is not None and not self.device.closed and self.fault is None
            else "not_connected",
            "fault": self.fault,
            "protocol": "wiegand",
            "d0": self.cfg.d0,
            "d1": self.cfg.d1,
            "keypress_format": self.cfg.keypress_format,
            "pending_pin_digits": self.pipeline.pins.pending,
            "led": self.lights.colour if self.lights is not None else None,
            "counts": dict(self.counts),
            "last_frame": self.last_frame,
        }

    def feedback(self, granted: bool) -> None:
        if self.lights is None:
            return
        cfg = self.cfg
        self.lights.show(cfg.led_granted if granted else cfg.led_denied)
        if granted:
            self.lights.beep(1, on=0.3, off=0.1)
        else:
            self.lights.beep(3, on=0.08, off=0.08)
        self._idle_at = self.daemon.clock() + cfg.feedback_time
        self.daemon.scheduler.poke()

    # ------------------------------------------------------------ edges, timers, frames
    def _edge(self, line: int, level: int, t: float) -> None:
        self._seen += 1
        self._low_since[line] = t if level == 0 else None
        if level and self.fault is not None and not any(x is not None for x in self._low_since):
            self.fault = None
            self.daemon.publish("reader.connected", reader=self.id, protocol="wiegand", d0=self.cfg.d0,
                                d1=self.cfg.d1)
        self._handle(self.decoder.edge(line, level, t))
        self.daemon.scheduler.poke()

    def _stuck_deadline(self) -> float | None:
        if self.fault is not None:
            return None
        lows = [t for t in self._low_since if t is not None]
        return min(lows) + STUCK_AFTER if lows else None

    def _check_stuck(self, now: float) -> None:
        deadline = self._stuck_deadline()
        if deadline is None or now < deadline:
            return
        lines = [f"D{i}" for i, t in enumerate(self._low_since) if t is not None and now - t >= STUCK_AFTER]
        self.fault = f"{' and '.join(lines)} held low"
        self.decoder.flush()  # whatever came before the fault is not a frame
        self.daemon.publish("reader.disconnected", reader=self.id, protocol="wiegand", reason=self.fault)

    def next_deadline(self) -> float | None:
        if self._deferring:
            return None
        return min((d for d in (self.decoder.next_deadline(), self.pipeline.next_deadline(), self._stuck_deadline(),
                                self._idle_at) if d is not None), default=None)

    def _tick(self, now: float) -> None:
        if self.device is not None and self.device.edges > self._seen and self._defers < 100:
            # Edges stamped before the deadline are still queued behind this timer: take them first.
            self._defers += 1
            self._deferring = True
            self.daemon.loop.call_soon(self._resume)
            return
        self._defers = 0
        self._check_stuck(now)
        self._handle(self.decoder.tick(now))
        self._pin_outcomes(self.pipeline.tick(now))
        if self._idle_at is not None and now >= self._idle_at:
            self._idle_at = None
            if self.lights is not None:
                self.lights.show(self.cfg.led_idle)

    def _resume(self) -> None:
        self._deferring = False
        self._tick(self.daemon.clock())
        self.daemon.scheduler.poke()

    def _handle(self, events) -> None:
        for event in events:
            if isinstance(event, Frame):
                self.counts["frames"] += 1
                outcome = self._frame(event)
                self._resolve(outcome)
            elif isinstance(event, Glitch):
                self.counts["glitches"] += 1
            elif isinstance(event, Discarded):
                self.counts["noise"] += 1
                if event.reason == "too_long":
                    self._submit(Rejected(bits=event.bits, detail=f"more than {self.timing.max_bits} bits"))
                    self._resolve({"bits": event.bits, "result": "invalid"})
                else:
                    log.debug("reader %s: %d-bit burst ignored as noise", self.id, len(event.bits))

    def _resolve(self, outcome: dict) -> None:
        while self._waiters:
            fut = self._waiters.pop(0)
            if not fut.done():
                fut.set_result(outcome)
                return

    def _frame(self, frame: Frame) -> dict:
        bits = frame.bits
        self.last_frame = {"bits": bits, "bit_length": frame.count, "hex": bits_to_hex(bits),
                           "interval_ms": round(frame.interval * 1000, 3) if frame.interval else None,
                           "glitches": frame.glitches}
        kp = self.keypress
        if kp is not None and frame.count == kp.bit_length:
            try:
                keys = kp.decode_frame(bits)
            except KeypressError as exc:
                if not kp.buffered:
                    self._submit(Rejected(bits=bits, detail=str(exc)))
                    return {"bits": bits, "result": "invalid", "detail": str(exc)}
            else:
                self.counts["keys"] += 1
                # a key frame's bits are the key: status shows neither
                self.last_frame = {"bit_length": frame.count, "keys": "".join("•" if k.isdigit() else k for k in keys),
                                   "interval_ms": self.last_frame["interval_ms"], "glitches": frame.glitches}
                decided = self._pin_outcomes(self.pipeline.keys(keys, frame.last))
                return {"bits": bits, "result": "keys", "keys": len(keys), **decided}
        return self._card(bits)

    def _card(self, bits: str) -> dict:
        (outcome,) = self.pipeline.card(bits)
        if isinstance(outcome, Rejected):
            self._submit(outcome)
            extra = {"swapped": True} if outcome.swapped else {}
            return {"bits": bits, "result": "invalid", "detail": outcome.detail, **extra}
        cred = outcome.credential
        self.counts["cards"] += 1
        self.last_frame.update(format=cred.format, facility_code=cred.facility_code, card_number=cred.card_number)
        decided = self.sink.submit(outcome, self.id)
        return {"bits": bits, "result": "card", "credential": cred.to_json(), **_decision(decided)}

    def _submit(self, outcome) -> object:
        if isinstance(outcome, Rejected):
            self.counts["invalid"] += 1
        return self.sink.submit(outcome, self.id)

    def _pin_outcomes(self, outcomes) -> dict:
        out: dict = {}
        for outcome in outcomes:
            decided = self._submit(outcome)
            if isinstance(outcome, Presented):
                out = _decision(decided)
        return out

    # ------------------------------------------------------------ simulation (mock GPIO only)
    def _require_mock(self, name: str) -> None:
        if not self.daemon.mock:
            raise CommandError("invalid", f"{name}: only when the daemon runs on mock GPIO "
                                          f"(daemon.pin_factory = \"mock\")")
        if self.device is None:
            raise CommandError("unavailable", f"{name}: the Wiegand reader is not running")

    @staticmethod
    def _interval(name: str, params: dict) -> float:
        value = params.get("interval", SIM_INTERVAL)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0002 <= value <= 0.05:
            raise CommandError("invalid", f"{name}: interval: expected 0.0002–0.05 seconds, got {value!r}")
        return float(value)

    async def _send(self, frames: list[str], interval: float) -> list[dict]:
        loop = self.daemon.loop
        outcomes = []
        async with self._send_lock:
            for i, bits in enumerate(frames):
                if i:
                    await asyncio.sleep(SIM_FRAME_GAP)
                fut = loop.create_future()
                self._waiters.append(fut)
                await loop.run_in_executor(None, lambda b=bits: self.device.send(b, interval=interval))
                try:
                    outcomes.append(await asyncio.wait_for(fut, self.timing.ceiling + 1.0))
                except TimeoutError:
                    outcomes.append({"bits": bits, "result": "noise"})  # a burst too short to be a frame
                finally:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(fut)
        return outcomes

    async def cmd_card(self, params: dict) -> dict:
        """A card by its wire value (``hex`` + ``bit_length``) or by ``format`` with ``fc``/``cn``."""
        self._require_mock("simulate.card")
        try:
            if params.get("format") is not None:
                fmt, fc, cn = params["format"], params.get("fc"), params.get("cn")
                if not isinstance(fmt, str) or not isinstance(cn, int) or not isinstance(fc, int | None):
                    raise CommandError("invalid", "simulate.card: expected format (a name), cn and optional fc "
                                                  "(integers)")
                bits = self.library.encode(fmt, facility_code=fc, card_number=cn)
            else:
                hex_value, bit_length = params.get("hex"), params.get("bit_length")
                if not isinstance(hex_value, str) or isinstance(bit_length, bool) or not isinstance(bit_length, int):
                    raise CommandError("invalid", "simulate.card: expected hex (a string) and bit_length (an integer),"
                                                  " or format with fc and cn")
                bits = hex_to_bits(hex_value, bit_length)
        except WiegandError as exc:
            raise CommandError("invalid", f"simulate.card: {exc}") from None
        (outcome,) = await self._send([bits], self._interval("simulate.card", params))
        return {"bit_length": len(bits), "bits": bits, "hex": bits_to_hex(bits), **outcome}

    async def cmd_wiegand(self, params: dict) -> dict:
        self._require_mock("simulate.wiegand")
        bits = params.get("bits")
        try:
            check_bits(bits if isinstance(bits, str) else "")
        except WiegandError as exc:
            raise CommandError("invalid", f"simulate.wiegand: bits: {exc}") from None
        (outcome,) = await self._send([bits], self._interval("simulate.wiegand", params))
        return {"bit_length": len(bits), **outcome}

    async def cmd_keys(self, params: dict) -> dict:
        self._require_mock("simulate.keys")
        digits = params.get("digits")
        if not isinstance(digits, str) or not digits or any(k not in KEYS for k in digits):
            raise CommandError("invalid", f"simulate.keys: digits: expected keys 0-9, * and #, got {digits!r}")
        if self.keypress is None:
            raise CommandError("invalid", "simulate.keys: reader.wiegand.keypress_format is \"none\"")
        try:
            frames = [f.bits for f in self.keypress.encode(digits)]
        except (KeypressError, InvalidKey) as exc:
            raise CommandError("invalid", f"simulate.keys: {exc}") from None
        outcomes = await self._send(frames, self._interval("simulate.keys", params))
        decided = next(({"decision": o["decision"], "reason": o["reason"]} for o in reversed(outcomes)
                        if "decision" in o), {})
        return {"format": self.keypress.name, "frames": len(frames),
                "results": [o.get("result") for o in outcomes], **decided}
