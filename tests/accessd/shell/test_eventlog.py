import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accessd.events import Event
from accessd.shell.eventlog import EventLog

ROOT = Path(__file__).resolve().parents[3]


def ev(seq, etype="door.opened", ts=None, **fields):
    return Event(seq=seq, ts=ts if ts is not None else 1_700_000_000 + seq, type=etype, fields=fields)


@pytest.fixture
def log(tmp_path):
    log = EventLog(tmp_path / "events.db", capacity=100, flush_interval=0.05)
    assert log.open() is None
    yield log
    log.close()


def test_append_flush_query_in_order(log):
    for i in range(1, 11):
        log.append(ev(i, "access.granted" if i % 2 else "door.opened", holder={"first_name": f"H{i}"}))
    assert log.flush()
    rows = log.query()
    assert [r["seq"] for r in rows] == list(range(1, 11))
    assert rows[0]["type"] == "access.granted" and rows[0]["holder"] == {"first_name": "H1"}
    assert rows[0]["time"].endswith("Z")


def test_filters(log):
    for i in range(1, 21):
        log.append(ev(i, "door.opened" if i <= 10 else "access.denied", reason="expired" if i > 10 else None, note=f"n{i}"))
    log.flush()
    assert len(log.query(type_glob="door.*")) == 10
    assert [r["seq"] for r in log.query(since=1_700_000_005, until=1_700_000_008)] == [5, 6, 7]
    assert [r["seq"] for r in log.query(search="N17")] == [17]  # case-insensitive
    assert log.query(search="100%") == []  # LIKE wildcards are escaped
    assert [r["seq"] for r in log.query(after_seq=18)] == [19, 20]
    assert [r["seq"] for r in log.query(max_seq=2)] == [1, 2]
    assert len(log.query(limit=3)) == 3


def test_ring_keeps_capacity(log):
    for i in range(1, 251):
        log.append(ev(i))
    log.flush()
    assert log.count() == 100
    assert log.query(limit=1)[0]["seq"] == 151


def test_reopen_continues_the_sequence(tmp_path):
    log = EventLog(tmp_path / "e.db", flush_interval=0.05)
    log.open()
    log.append(ev(1))
    log.append(ev(2))
    log.close()
    again = EventLog(tmp_path / "e.db")
    again.open()
    assert again.last_seq == 2
    again.close()


def test_corrupt_file_is_kept_and_a_fresh_log_started(tmp_path):
    path = tmp_path / "events.db"
    path.write_bytes(b"this is not a database" * 100)
    log = EventLog(path)
    corrupt = log.open()
    assert corrupt is not None and Path(corrupt.kept).read_bytes().startswith(b"this is not")
    log.append(ev(1))
    log.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1


WRITER = """
import sys, time
from accessd.shell.eventlog import EventLog
from accessd.events import Event
log = EventLog(sys.argv[1], flush_interval=0.5)
log.open()
seq = 0
while True:
    seq += 1
    log.append(Event(seq=seq, ts=time.time(), type="door.opened", fields={}))
    print(seq, time.monotonic(), flush=True)
    time.sleep(0.002)
"""


@pytest.mark.parametrize("run", range(3))
def test_kill_9_loses_at_most_the_last_second(tmp_path, run):
    path = tmp_path / "events.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    time.sleep(1.5 + run * 0.37)
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    out, _ = proc.communicate()
    accepted = [(int(s), float(t)) for s, t in (line.split() for line in out.splitlines() if line.strip())]
    must_have = [s for s, t in accepted if t < killed - 1.0]
    assert must_have, "the writer accepted nothing more than a second before the kill"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in db.execute("SELECT seq FROM events")}
    assert set(must_have) <= stored
    assert stored <= {s for s, _ in accepted}


def test_a_full_disk_keeps_events_in_memory_and_records_the_gap_past_the_backlog(tmp_path):
    from accessd.events import Event
    from accessd.shell.eventlog import EventLog

    log = EventLog(tmp_path / "events.db", flush_interval=0.02, backlog=5)
    log.open()
    lost = []
    log.on_lost = lambda *gap: lost.append(gap)
    try:
        pages = log._db.execute("PRAGMA page_count").fetchone()[0]
        log._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        for seq in range(1, 21):
            log.append(Event(seq=seq, ts=float(seq), type="system.filler", fields={"pad": "x" * 4000}))
            assert log.flush()
        assert "full" in log.write_error and log.unwritten == 5
        log._db.execute("PRAGMA max_page_count = 1073741823")  # space again
        log.append(Event(seq=21, ts=21.0, type="system.filler", fields={}))
        assert log.flush()
        assert log.write_error is None and log.unwritten == 0
        assert lost == [(1, 15, 15)]
        seqs = [r[0] for r in log._db.execute("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(16, 22))
    finally:
        log.close()
