"""The ``[mqtt]`` component: events out of the durable log, signed commands in.

Nothing here runs on the daemon's loop except the commands themselves.  paho-mqtt's
network loop has its own thread (``loop_start``); one *sender* thread reads the event
log (``events.db``, read-only) after the cursor and hands events to paho, answers
commands and publishes the retained state topics.  The reader path never waits on it:
with the broker down the log keeps filling and the sender waits.

Delivery is at least once and in order: an event is published with its log ``seq``;
the cursor (``state_dir/mqtt.cursor``, written atomically) is the highest seq below
which the broker acknowledged everything (PUBACK for QoS 1).  At most ``max_inflight``
events are unacknowledged at once; paho re-sends them in order after a reconnect and
the cursor makes a restarted daemon (kill -9 included) re-send from there, so a
duplicate carries the same ``(device, seq)``.  Events that left the ring before they
were sent are reported once as ``system.events_lost`` (``first``, ``last``; its ``seq``
is ``last``, so seqs on the wire only grow).

Commands (``<prefix>/cmd``) are JSON objects ``{cmd, params, id, device, ts, nonce,
sig}``; ``sig`` is the site's Ed25519 signature (hex) over the canonical JSON of the
other fields (sorted keys, no spaces).  A retained message, no or a wrong signature, a
command for another device, a ``ts`` outside ``command_window`` or a nonce already seen
is refused: nothing changes, ``security.rejected_command`` says why, and the reply (on
``<prefix>/reply/<id>``) says so too.  An accepted command runs on the loop and is
audited as ``admin.<cmd>`` with ``via: "mqtt"``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
import queue
import re
import socket
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

COMMANDS = ("door.unlock", "door.lock", "status")
_ID = re.compile(r"[\w.-]{1,64}")


def canonical(body: dict) -> bytes:
    """The bytes a command's signature covers: the JSON of every field but ``sig``."""
    return json.dumps({k: v for k, v in body.items() if k != "sig"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


def sign(private_key, body: dict) -> dict:
    """``body`` with its ``sig`` (the site side; tests and ``accessd-cli fleet`` use it)."""
    return {**body, "sig": private_key.sign(canonical(body)).hex()}


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Rejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def create(shell, *, log, door, status):
    cfg = shell.config.mqtt
    if not cfg.host:
        return None
    return Mqtt(shell, log_path=log.path, eventlog=log, door=door, status=status)


class Mqtt:
    def __init__(self, shell, *, log_path: Path, eventlog, door, status) -> None:
        import paho.mqtt.client  # noqa: F401 - fail at build time, not at start, when it is missing

        self.shell, self.cfg = shell, shell.config.mqtt
        self.door, self.status_fn = door, status
        self.device = self.cfg.device_id or socket.gethostname()
        self.prefix = self.cfg.topic_prefix or f"accessd/{self.device}"
        self.log_path = log_path
        self.cursor_path = shell.state_dir / "mqtt.cursor"
        self.nonce_path = shell.state_dir / "mqtt.nonces"
        self.cursor = 0
        self.connected = False
        self.sent = 0
        self._acks: queue.SimpleQueue = queue.SimpleQueue()  # mids from paho's thread
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # command messages from paho's thread
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._window: deque[list] = deque()  # [seq, acked] in send order
        self._by_mid: dict[int, list] = {}
        self._nonces: dict[str, float] = {}
        self._key = None
        if self.cfg.site_public_key:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            self._key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.cfg.site_public_key))
        self.client = None
        self._thread: threading.Thread | None = None
        eventlog.on_commit.append(self._wake.set)
        shell.register_status("mqtt", self.status)

    # -- lifecycle (loop thread) -------------------------------------------------------
    async def start(self) -> None:
        import paho.mqtt.client as mqtt

        self.loop = self.shell.loop
        self.cursor = self._read_cursor()
        self._nonces = self._read_nonces()
        # MQTT 5: "retain as published" lets a live retained command be seen as retained
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.device, protocol=mqtt.MQTTv5)
        c.will_set(f"{self.prefix}/status", "offline", qos=1, retain=True)
        if self.cfg.tls_ca or self.cfg.tls_cert:
            c.tls_set(ca_certs=self.cfg.tls_ca, certfile=self.cfg.tls_cert, keyfile=self.cfg.tls_key)
        if self.cfg.username:
            password = None
            if self.cfg.password_file:
                password = Path(self.cfg.password_file).read_text().strip()
            c.username_pw_set(self.cfg.username, password)
        c.suppress_exceptions = True  # a failing callback is logged, never the end of the network thread
        c.max_inflight_messages_set(self.cfg.max_inflight)
        c.reconnect_delay_set(0.2, 5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self.client = c
        c.connect_async(self.cfg.host, self.cfg.port, self.cfg.keepalive, clean_start=True)
        c.loop_start()
        self._thread = threading.Thread(target=self._run, name="mqtt-sender", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._stop_blocking)

    def _stop_blocking(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.client is not None:
            if self.connected:
                info = self.client.publish(f"{self.prefix}/status", "offline", qos=1, retain=True)
                try:
                    info.wait_for_publish(2)
                except (RuntimeError, ValueError):
                    pass
            self.client.disconnect()
            self.client.loop_stop()
        self._drain_acks()
        self._save_cursor()

    def status(self) -> dict:
        return {"broker": f"{self.cfg.host}:{self.cfg.port}", "connected": self.connected,
                "device": self.device, "topic_prefix": self.prefix, "cursor": self.cursor,
                "in_flight": len(self._window), "sent": self.sent}

    # -- paho's thread -----------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("mqtt: broker %s:%s refused: %s", self.cfg.host, self.cfg.port, reason_code)
            return
        self.connected = True
        client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)
        from paho.mqtt.subscribeoptions import SubscribeOptions

        client.subscribe(f"{self.prefix}/cmd", options=SubscribeOptions(qos=1, retainAsPublished=True))
        self._inbox.put(("connected", None))
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put(mid)  # no lock here: paho holds its own while calling us
        self._wake.set()

    def _on_message(self, client, userdata, msg) -> None:
        self._inbox.put(("cmd", msg))
        self._wake.set()

    # -- the sender thread -------------------------------------------------------------
    def _run(self) -> None:
        db = None
        read_pos = self.cursor
        last_save = 0.0
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self._drain_acks()
            self._drain_inbox()
            if time.monotonic() - last_save > 0.1:
                self._save_cursor()
                last_save = time.monotonic()
            room = self.cfg.max_inflight - len(self._window)
            if room <= 0 or not self.connected:  # paho would queue; the log is our queue
                continue
            try:
                if db is None:
                    db = sqlite3.connect(f"file:{self.log_path}?mode=ro", uri=True, timeout=5)
                rows = db.execute("SELECT seq, type, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                                  (read_pos, min(room, self.cfg.batch))).fetchall()
            except sqlite3.Error as exc:
                log.warning("mqtt: reading the event log failed: %s", exc)
                db = None
                continue
            if not rows:
                continue
            if rows[0][0] > read_pos + 1:
                self._send_gap(read_pos + 1, rows[0][0] - 1)
            for seq, etype, data in rows:
                self._send_event(seq, etype, data)
                read_pos = seq
            self._wake.set()  # more may be waiting: read again without sleeping
        if db is not None:
            db.close()

    def _qos(self, etype: str) -> int | None:
        if not any(fnmatch.fnmatchcase(etype, g) for g in self.cfg.publish):
            return None
        for glob, qos in self.cfg.qos_by_type.items():
            if fnmatch.fnmatchcase(etype, glob):
                return qos
        return self.cfg.qos

    def _send_event(self, seq: int, etype: str, data: str) -> None:
        qos = self._qos(etype)
        if qos is None:  # not selected: counts as delivered
            self._window.append([seq, True])
            return
        event = json.loads(data)
        event["device"] = self.device
        self._publish_tracked(seq, f"{self.prefix}/event/{etype}", json.dumps(event, separators=(",", ":")), qos)
        self._track_state(event)

    def _send_gap(self, first: int, last: int) -> None:
        log.warning("mqtt: events %d–%d left the ring before they were sent", first, last)
        event = {"seq": last, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "type": "system.events_lost",
                 "first": first, "last": last, "count": last - first + 1, "device": self.device}
        self._publish_tracked(last, f"{self.prefix}/event/system.events_lost", json.dumps(event), self.cfg.qos or 1)
        self.shell.publish_threadsafe("system.events_lost", first=first, last=last, count=last - first + 1, via="mqtt")

    def _publish_tracked(self, seq: int, topic: str, payload: str, qos: int) -> None:
        entry = [seq, False]
        self._window.append(entry)
        info = self.client.publish(topic, payload, qos=qos)
        if qos == 0 and info.rc != 0:  # at most once, by choice: dropped while disconnected
            entry[1] = True
        else:
            self._by_mid[info.mid] = entry
        self.sent += 1

    def _drain_acks(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            entry = self._by_mid.pop(mid, None)
            if entry is not None:
                entry[1] = True
        while self._window and self._window[0][1]:
            self.cursor = self._window.popleft()[0]

    def _read_cursor(self) -> int:
        try:
            return int(json.loads(self.cursor_path.read_text())["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _save_cursor(self) -> None:
        if self.cursor != self._read_cursor_cached():
            write_atomic(self.cursor_path, json.dumps({"seq": self.cursor}) + "\n")
            self._saved = self.cursor

    def _read_cursor_cached(self) -> int:
        if not hasattr(self, "_saved"):
            self._saved = self._read_cursor()
        return self._saved

    # -- retained state and Home Assistant ----------------------------------------------
    def _state(self, name: str, value: str) -> None:
        self.client.publish(f"{self.prefix}/state/{name}", value, qos=1, retain=True)

    def _track_state(self, event: dict) -> None:
        t = event["type"]
        if t == "door.unlocked":
            self._state("lock", "UNLOCKED")
        elif t == "door.locked":
            self._state("lock", "LOCKED")
        elif t in ("door.opened", "door.forced_open"):
            self._state("contact", "ON")
        elif t == "door.closed":
            self._state("contact", "OFF")
        elif t in ("reader.connected", "reader.connecting", "reader.disconnected"):
            self._state("reader", t.split(".", 1)[1].replace("disconnected", "not_connected"))

    def _on_broker(self) -> None:
        """After each (re)connect: discovery and the current state, all retained."""
        from accessd import __version__

        status = self._on_loop(lambda: self.status_fn(), timeout=5) or {}
        door = status.get("door") or {}
        self._state("lock", "UNLOCKED" if door.get("state") == "unlocked" else "LOCKED")
        if door.get("contact") is not None:
            self._state("contact", "ON" if door["contact"] == "open" else "OFF")
        readers = status.get("readers") or {}
        if readers:
            self._state("reader", str(next(iter(readers.values())).get("link", next(iter(readers.values())).get("state", "unknown"))))
        if not self.cfg.homeassistant:
            return
        dev = {"identifiers": [f"accessd_{self.device}"], "name": self.device, "manufacturer": "accessd",
               "model": "accessd door controller", "sw_version": __version__}
        avail = {"availability_topic": f"{self.prefix}/status", "payload_available": "online",
                 "payload_not_available": "offline", "device": dev}
        node = re.sub(r"[^\w-]", "_", self.device)
        configs = {
            f"homeassistant/lock/{node}/door/config": {
                "name": "Door", "unique_id": f"{node}_door", "state_topic": f"{self.prefix}/state/lock",
                # commands must be signed: Home Assistant's plain LOCK/UNLOCK is refused and audited
                "command_topic": f"{self.prefix}/cmd", "payload_lock": "LOCK", "payload_unlock": "UNLOCK",
                "state_locked": "LOCKED", "state_unlocked": "UNLOCKED", "optimistic": False, **avail},
            f"homeassistant/binary_sensor/{node}/contact/config": {
                "name": "Door contact", "unique_id": f"{node}_contact", "device_class": "door",
                "state_topic": f"{self.prefix}/state/contact", "payload_on": "ON", "payload_off": "OFF", **avail},
            f"homeassistant/sensor/{node}/reader/config": {
                "name": "Reader link", "unique_id": f"{node}_reader", "state_topic": f"{self.prefix}/state/reader",
                "icon": "mdi:card-account-details", **avail},
        }
        for topic, payload in configs.items():
            self.client.publish(topic, json.dumps(payload), qos=1, retain=True)

    def _on_loop(self, fn, timeout: float = 10):
        async def run():
            return fn()

        try:
            return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)
        except Exception:  # noqa: BLE001 - the loop is stopping, or fn failed: no answer
            log.exception("mqtt: running on the loop failed")
            return None

    # -- commands ------------------------------------------------------------------------
    def _drain_inbox(self) -> None:
        while True:
            try:
                kind, msg = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "connected":
                self._on_broker()
            else:
                self._command(msg)

    def _verify(self, msg) -> dict:
        if msg.retain:
            raise Rejected("retained", "a retained message is never a command")
        try:
            body = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError):
            raise Rejected("malformed", "not JSON") from None
        if not isinstance(body, dict):
            raise Rejected("malformed", "not a JSON object")
        sig = body.get("sig")
        if not isinstance(sig, str):
            raise Rejected("unsigned", "no sig")
        if self._key is None:
            raise Rejected("no_key", "mqtt.site_public_key is not set")
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.verify(bytes.fromhex(sig), canonical(body))
        except (InvalidSignature, ValueError):
            raise Rejected("bad_signature") from None
        if body.get("device") != self.device:
            raise Rejected("wrong_device", f"for {body.get('device')!r}")
        ts, nonce, now = body.get("ts"), body.get("nonce"), time.time()
        if not isinstance(ts, int | float) or isinstance(ts, bool) or abs(now - ts) > self.cfg.command_window:
            raise Rejected("expired", f"ts outside ±{self.cfg.command_window:g} s")
        if not isinstance(nonce, str) or not 8 <= len(nonce) <= 128:
            raise Rejected("malformed", "nonce must be a string of 8–128 characters")
        self._nonces = {n: t for n, t in self._nonces.items() if t > now - 2 * self.cfg.command_window}
        if nonce in self._nonces:
            raise Rejected("replay", "nonce already seen")
        self._nonces[nonce] = now
        write_atomic(self.nonce_path, json.dumps(self._nonces))
        if body.get("cmd") not in COMMANDS:
            raise Rejected("unknown_command", f"known: {', '.join(COMMANDS)}")
        if not isinstance(body.get("params", {}), dict):
            raise Rejected("malformed", "params must be an object")
        return body

    def _read_nonces(self) -> dict[str, float]:
        try:
            data = json.loads(self.nonce_path.read_text())
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _reply(self, rid, payload: dict) -> None:
        topic = f"{self.prefix}/reply/{rid}" if isinstance(rid, str) and _ID.fullmatch(rid) else f"{self.prefix}/reply"
        self.client.publish(topic, json.dumps({"id": rid, "device": self.device, **payload}), qos=1)

    def _command(self, msg) -> None:
        if msg.retain and not msg.payload:
            return  # a retained message being cleared
        rid = None
        try:
            try:
                rid = json.loads(msg.payload).get("id")
            except (ValueError, UnicodeDecodeError, AttributeError):
                pass
            body = self._verify(msg)
        except Rejected as exc:
            fields = {"reason": exc.reason, "via": "mqtt", "topic": msg.topic, "retained": bool(msg.retain)}
            if exc.detail:
                fields["detail"] = exc.detail
            if isinstance(rid, str | int):
                fields["id"] = rid
            self.shell.publish_threadsafe("security.rejected_command", **fields)
            self._reply(rid, {"ok": False, "error": {"kind": "rejected", "reason": exc.reason}})
            if msg.retain and msg.payload:  # clear it, so that no later subscription replays it
                self.client.publish(msg.topic, b"", qos=1, retain=True)
            return
        outcome = self._on_loop(lambda: self._execute(body))
        if outcome is None:
            outcome = {"ok": False, "error": {"kind": "unavailable", "message": "the daemon did not answer"}}
        self._reply(rid, outcome)

    def _execute(self, body: dict) -> dict:
        """Loop thread: run one verified command and audit it."""
        from accessd.errors import CommandError
        from accessd.shell.server import redact

        cmd, params = body["cmd"], body.get("params", {})
        result, error = None, None
        try:
            if cmd == "door.unlock":
                seconds = params.get("seconds")
                if seconds is not None and (not isinstance(seconds, int | float) or isinstance(seconds, bool)
                                            or not 1 <= seconds <= 3600):
                    raise CommandError("invalid", "door.unlock: seconds must be a number 1–3600")
                result = self.door.unlock(seconds)
            elif cmd == "door.lock":
                result = self.door.lock()
            else:
                result = self.status_fn()
        except CommandError as exc:
            error = {"kind": exc.kind, "message": str(exc)}
        fields = {"via": "mqtt", "id": body.get("id"), "nonce": body["nonce"], "params": redact(params),
                  "ok": error is None}
        if error is not None:
            fields["error"] = error["kind"]
        self.shell.publish("admin." + cmd, **fields)
        return {"ok": True, "result": result} if error is None else {"ok": False, "error": error}
