"""Issue 9 finding 5: holders list/export read off the event loop, bounded.

A client looping `holders.export` pages over 100k holders must not hold up `status`
(and with it the reader path, which shares the loop).
"""

from __future__ import annotations

import threading
import time

from accessd.store.entrylist import EntryList

HOLDERS = 100_000


def _fill(state_dir) -> None:
    store = EntryList(state_dir)
    try:
        store.add(first_name="seed")
        with store.conn:
            store.conn.execute("BEGIN")
            store.conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " INSERT INTO holders (id, first_name, last_name, notes, uses_epoch)"
                " SELECT i, 'holder-' || i, 'Last', 'some notes for this holder', 0 FROM n",
                (HOLDERS,),
            )
            store.conn.execute(
                "INSERT INTO credentials (holder_id, kind, card_hex, bit_length)"
                " SELECT id, 'card', printf('%08X', id), 32 FROM holders WHERE id > 1"
            )
            store.conn.execute("COMMIT")
        assert store.count() == HOLDERS
    finally:
        store.close()


def test_status_stays_prompt_while_a_client_loops_exports(daemon_factory, tmp_path):
    d = daemon_factory(start=False)
    _fill(d.state_dir)
    d.start()

    stop = threading.Event()
    pages = [0]
    errors: list = []

    def exporter(kind: str) -> None:
        try:
            while not stop.is_set():
                after = 0
                while not stop.is_set():
                    if kind == "export":
                        page = d.result("holders.export", after_id=after, limit=50_000)
                        rows = page["rows"]
                    else:
                        page = d.result("holders.list", after_id=after, limit=10_000)
                        rows = page["holders"]
                    pages[0] += 1
                    if not page["more"] or not rows:
                        break
                    after = rows[-1]["id"]
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=exporter, args=(k,), daemon=True) for k in ("export", "export", "list")]
    for t in threads:
        t.start()
    worst = 0.0
    try:
        time.sleep(0.5)
        end = time.monotonic() + 6
        n = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            d.result("status")
            worst = max(worst, time.monotonic() - t0)
            n += 1
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert pages[0] >= 5, pages  # the exports did run throughout
    assert n >= 20
    assert worst < 0.5, f"status took {worst:.2f} s while exports looped"


def test_export_pages_are_capped_and_complete(daemon_factory):
    d = daemon_factory(start=False)
    _fill(d.state_dir)
    d.start()
    page = d.result("holders.export", after_id=0, limit=50_000)
    assert len(page["rows"]) == 5000 and page["more"]
    seen, after = 0, 0
    while True:
        page = d.result("holders.export", after_id=after, limit=50_000)
        seen += len(page["rows"])
        if not page["more"] or not page["rows"]:
            break
        after = page["rows"][-1]["id"]
    assert seen == HOLDERS
    # a write on the loop's connection is seen by the next read-only read
    d.result("holders.add", first_name="newcomer")
    last = d.result("holders.list", after_id=HOLDERS, limit=10)["holders"]
    assert [h["first_name"] for h in last] == ["newcomer"]


def test_event_queries_still_answer_in_parallel(daemon):
    results: list = []

    def ask() -> None:
        results.append(daemon.result("events", limit=10_000))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 6 and all(r["events"] for r in results)
