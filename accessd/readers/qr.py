"""The QR reader component: a scanner's text → the credential pipeline.

Path of a scan::

    scanner thread (wiring/qr.py: a serial line or an evdev keyboard, decoded by
    protocols/qr.py) → QrText | QrInvalid → loop.call_soon_threadsafe
      → pipeline.qr(text) / pipeline.qr_rejected(detail) (protocols/pipeline.py)
      → Presented / Rejected → sink.submit(outcome, reader id)

The scanner sits beside whichever card reader is configured.  A scanner that is missing
or unplugged is retried every second by its thread; ``status`` shows ``connected`` /
``not_connected`` and the changes are ``reader.connected`` / ``reader.disconnected``
events.  A scanned text is a secret like a PIN: it goes to the pipeline and nowhere else
(events carry ``kind = "qr"`` and the holder, never the text, nor the bytes of a bad scan).

On mock GPIO the component registers ``simulate.qr {text}``: the text and the scanner's
terminator go through the same line decoder as a serial scanner's bytes.
"""

from __future__ import annotations

import asyncio
import logging

from accessd.errors import CommandError, ConfigError
from accessd.protocols.pipeline import CardInterpreter, ReaderPipeline
from accessd.protocols.qr import LineAssembler, QrText

log = logging.getLogger(__name__)


def create(daemon, sink):
    cfg = daemon.config.reader.qr
    if not cfg.enabled:
        return None
    return QrReader(daemon, sink)


class QrReader:
    """One QR scanner: its own reader (id ``reader.qr.id``) with its own pipeline."""

    def __init__(self, daemon, sink) -> None:
        from accessd.wiring.errors import ScannerError
        from accessd.wiring.qr import make_scanner

        self.daemon = daemon
        self.sink = sink
        self.cfg = cfg = daemon.config.reader.qr
        self.id = cfg.id
        self.readers = [self]
        # no card ever arrives here; the interpreter is there for the pipeline's shape
        self.pipeline = ReaderPipeline(cards=CardInterpreter(daemon.formats))
        self._state = "connecting"
        self._error: str | None = None
        try:
            self.scanner = make_scanner(self._deliver, port=cfg.port, evdev=cfg.evdev, baud=cfg.baud,
                                        terminator=cfg.terminator, max_length=cfg.max_length, grab=cfg.grab,
                                        on_status=self._on_status, clock=daemon.clock)
        except ValueError as exc:  # "reader.qr.<key>: …"
            key, _, why = str(exc).partition(": ")
            raise ConfigError(key, why or str(exc)) from None
        except ScannerError as exc:
            raise ConfigError("reader.qr.evdev", str(exc)) from None
        if daemon.mock:
            daemon.register_command("simulate.qr", self.cmd_simulate, privileged=True)

    async def start(self) -> None:
        self.scanner.start()

    async def stop(self) -> None:
        self.scanner.stop()

    # -- the reader contract
    def status(self) -> dict:
        out = {"state": self._state, "protocol": "qr"}
        out["port" if self.cfg.port is not None else "evdev"] = self.cfg.port or self.cfg.evdev
        if self._error:
            out["error"] = self._error
        return out

    def feedback(self, granted: bool) -> None:
        """A scanner has no LED or beeper accessd drives."""

    # -- from the scanner thread
    def _deliver(self, event, now: float) -> None:
        self.daemon.loop.call_soon_threadsafe(self.handle, event)

    def _on_status(self, status: str, reason: str | None) -> None:
        self.daemon.loop.call_soon_threadsafe(self._status_changed, status, reason)

    # -- on the loop
    def _outcomes(self, event) -> list:
        if isinstance(event, QrText):
            return self.pipeline.qr(event.text)
        return self.pipeline.qr_rejected(f"{event.reason}: {event.detail}")  # QrInvalid: why, never the bytes

    def handle(self, event) -> None:
        for outcome in self._outcomes(event):
            self.sink.submit(outcome, self.id)

    def _status_changed(self, status: str, reason: str | None) -> None:
        self._state, self._error = status, reason
        if status == "connected":
            self.daemon.publish("reader.connected", reader=self.id, protocol="qr")
        else:
            self.daemon.publish("reader.disconnected", reader=self.id, protocol="qr", reason=reason)

    async def cmd_simulate(self, params: dict) -> dict:
        text = params.get("text")
        if set(params) - {"text"} or not isinstance(text, str) or not text:
            raise CommandError("invalid", "simulate.qr: expected {\"text\": the scanned text}")
        assembler = LineAssembler(terminator=self.cfg.terminator.encode(), max_length=self.cfg.max_length)
        decided = []
        for event in assembler.feed(text.encode("utf-8") + self.cfg.terminator.encode()):
            for outcome in self._outcomes(event):
                result = self.sink.submit(outcome, self.id)
                if isinstance(result, asyncio.Future):  # waits (upstream)
                    result = await result
                if result is not None:
                    decided.append(result.to_json())
        return {"reader": self.id, "decisions": decided}
