"""kill -9 at random instants can never yield more grants than a holder's uses.

A real daemon subprocess is killed with SIGKILL 200 times while a three-use card is
presented again and again (``check-credential`` with ``present``, which acts exactly
as a reader does).  A use is committed (``synchronous=FULL``) before the grant becomes
visible — before the door is told, the event is published or the reply is sent — so
every grant anyone can observe is backed by a use taken on disk.  After every kill the
entry list and access.db pass ``PRAGMA integrity_check`` and the daemon restarts on them.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from accessd.protocols.wiegand.formats import LIBRARY

ROOT = Path(__file__).resolve().parents[2]

CYCLES = 200
THREE = {"card": "0318601", "bit_length": 26}


def cycle_card(cycle: int) -> dict:
    """A card per cycle, one a reader accepts (good H10301 parity)."""
    bits = LIBRARY.encode("H10301", facility_code=7, card_number=cycle)
    return {"card": f"{int(bits, 2):07X}", "bit_length": 26}


def presenter(path: str, cards: list[dict], stop: threading.Event, granted: list, denied: list) -> None:
    """Present the cards in turn, over and over, on fresh connections until the daemon dies."""
    n = 0
    while not stop.is_set():
        card = cards[n % len(cards)]
        n += 1
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                f = s.makefile("rb")
                f.readline()  # greeting
                s.sendall(json.dumps({"id": 1, "cmd": "check-credential", "params": {**card, "present": True}}).encode() + b"\n")
                line = f.readline()
            if not line:
                continue
            reply = json.loads(line)
            if reply.get("ok"):
                (granted if reply["result"]["decision"] == "granted" else denied).append(reply["result"]["credential"]["hex"])
        except OSError:
            time.sleep(0.005)


def spawn(d) -> None:
    """Start the daemon process without waiting for it to be ready."""
    d.stderr = open(d.dir / "stderr.log", "ab")  # noqa: SIM115 - closed by d.kill()
    d.proc = subprocess.Popen(
        [sys.executable, "-m", "accessd.main", "--config", str(d.config)],
        cwd=ROOT, env=d.env, stdout=subprocess.DEVNULL, stderr=d.stderr,
    )


def check_entrylist(path) -> dict[str, int]:
    """Integrity of the entry list and of access.db (where uses are taken) as the next
    start will find them; returns the uses left per card."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.execute("ATTACH DATABASE ? AS st", (str(path.parent / "access.db"),))
        assert db.execute("PRAGMA st.integrity_check").fetchall() == [("ok",)]
        return dict(
            db.execute(
                "SELECT c.card_hex, h.uses - coalesce((SELECT taken FROM st.uses_taken t WHERE t.holder_id = h.id"
                " AND t.epoch = h.uses_epoch), 0) FROM holders h JOIN credentials c ON c.holder_id = h.id"
            ).fetchall()
        )
    finally:
        db.close()


def test_sigkill_never_yields_more_grants_than_uses(daemon_factory):
    """The three-use card is presented throughout; each cycle also adds a fresh three-use
    card and presents it too, so that kills land in the middle of grants all along."""
    rng = random.Random(5)
    d = daemon_factory("[access]\nlockout_attempts = 0\n")
    d.result("holders.add", first_name="Three", uses=3, **THREE)
    d.kill()
    db_path = d.state_dir / "entrylist.db"
    granted: list[str] = []
    denied: list[str] = []
    left: dict[str, int] = {"0318601": 3}
    for cycle in range(CYCLES):
        stop = threading.Event()
        if cycle % 5 == 4:
            # a kill during start-up (opening the entry list, binding the socket)
            spawn(d)
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            d.start()
            card = cycle_card(cycle)
            t = threading.Thread(target=presenter, args=(d.socket, [card, THREE], stop, granted, denied), daemon=True)
            t.start()
            d.result("holders.add", first_name=f"C{cycle}", uses=3, **card)
            time.sleep(rng.uniform(0.0, 0.1))
        d.kill()
        stop.set()
        now = check_entrylist(db_path)
        for hex_value, uses in now.items():
            assert uses <= left.get(hex_value, 3), (cycle, hex_value)  # uses never come back
            seen = granted.count(hex_value)
            # every grant a client saw was backed by a use committed on disk
            assert seen <= 3 - uses, (cycle, hex_value, seen, uses)
        left = now
    d.start()
    try:
        time.sleep(0.3)
        events = d.result("events", type="access.granted", limit=10_000)["events"]
        per_card: dict[str, int] = {}
        for e in events:
            per_card[e["credential"]["hex"]] = per_card.get(e["credential"]["hex"], 0) + 1
        assert all(n <= 3 for n in per_card.values())
        assert per_card.get("0318601", 0) <= 3
        out = d.result("check-credential", present=True, **THREE)
        assert (out["decision"], out["reason"]) == ("denied", "uses_exhausted")
    finally:
        d.stop()
    assert granted.count("0318601") <= 3 and left["0318601"] == 0
    kills_mid_count = sum(1 for h, uses in left.items() if h != "0318601" and 0 < uses < 3)
    print(f"crash test: {len(granted)} grants seen, {len(denied)} denials, "
          f"{kills_mid_count} cards killed with 1 or 2 uses left")
    # the kills did land while cards were being granted
    assert kills_mid_count >= 3
