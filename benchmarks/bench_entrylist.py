"""Entry list at scale: import, lookups, credential-to-relay latency, RSS, check-credential.

For each size (default 100,000 and 1,000,000 holders, each with a 32-bit card and an
8-digit PIN, every tenth with a use count):

* CSV import through the real path (``accessd-cli holders import`` → daemon, chunked,
  one transaction) — wall time;
* the daemon's resident memory (VmRSS, and VmHWM = peak) after the import and after a
  restart plus 5,000 presentations;
* ``check-credential`` round trip: a socket request on an open connection, and a whole
  ``accessd-cli`` process;
* card and PIN lookups in the store (known and unknown), and the whole decision
  (lookup + ``decide``) — p50/p99;
* credential-to-relay-command latency inside the daemon: from ``access.present()`` to
  the relay's ``set_unlocked`` call on the mock pin (the real door component), for an
  unlimited holder and for a holder with uses (one fsync'd commit first), back to back
  and paced (one every 10 ms, one every second: a door's idle gaps), with the paced
  rows' run-queue wait (preemption by other processes) and deadline → relay.

The imported state is kept in ``--cache`` (default /tmp/accessd-bench-cache) and reused
by later runs, which then skip the import (delete the folder to measure it again).

Goals (issue 5): p99 decision < 1 ms at 1M, import of 1M < 60 s, RSS < 60 MB.

    .venv/bin/python benchmarks/bench_entrylist.py [--sizes 100000,1000000] [--samples 20000]
        [--slow 90] [--cache DIR] [--parts trips,lookups,relay] [--pragma mmap_size=N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accessd.protocols.credential import Credential  # noqa: E402

from accessd.access.decision import decide  # noqa: E402
from accessd.store.entrylist import EntryList  # noqa: E402

MULT = 2654435761  # odd: i -> i * MULT mod 2**32 is a bijection, so cards are unique


def card_of(i: int) -> str:
    return f"{(i * MULT) % 2**32:08X}"


def pin_of(i: int) -> str:
    return f"{(i * 7919 + 12345678) % 10**8:08d}"  # 7919 is prime to 10**8: unique PINs


def write_csv(path: Path, n: int) -> None:
    with open(path, "w") as f:
        f.write("first_name,last_name,card,bit_length,pin,uses,notes\n")
        batch = []
        for i in range(n):
            batch.append(f"H{i},Holder {i},{card_of(i)},32,{pin_of(i)},{1000 if i % 10 == 0 else ''},\n")
            if len(batch) == 10000:
                f.writelines(batch)
                batch = []
        f.writelines(batch)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def rss(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Daemon:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.socket = str(directory / "accessd.sock")
        self.config = directory / "accessd.toml"
        self.config.write_text(
            f'[daemon]\nsocket = "{self.socket}"\nstate_dir = "{directory}/state"\npin_factory = "mock"\n'
            f'[reader]\nprotocol = "none"\n'
            f"[access]\ncard_and_pin = false\nlockout_attempts = 0\n"
        )
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "accessd.main", "--config", str(self.config), "--log-level", "ERROR"],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                self.request("status")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("daemon did not start")

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.socket)
        f = s.makefile("rb")
        f.readline()
        return s, f

    def request(self, cmd: str, **params) -> dict:
        s, f = self.connect()
        try:
            s.sendall(json.dumps({"id": 1, "cmd": cmd, "params": params}).encode() + b"\n")
            return json.loads(f.readline())
        finally:
            s.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "accessd.cli", "--socket", self.socket, *args],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def lookups(state: Path, n: int, samples: int, rng: random.Random) -> dict:
    store = EntryList(state)
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Berlin")
    out = {}
    known = [rng.randrange(n) for _ in range(samples)]
    cards = [format(int(card_of(i), 16), "032b") for i in known]
    pins = [pin_of(i) for i in known]
    unknown_cards = [format(rng.getrandbits(34), "034b") for _ in range(samples)]
    perf = time.perf_counter_ns
    for name, fn, args in (
        ("card lookup", store.find_card, cards),
        ("card lookup, unknown", store.find_card, unknown_cards),
        ("PIN lookup (HMAC + index)", store.find_pin, pins),
    ):
        times = []
        for a in args:
            t = perf()
            h = fn(a)
            times.append((perf() - t) / 1000)
            assert (h is None) == (name.endswith("unknown")), (name, a)
        out[name] = times
    from datetime import UTC, datetime

    times = []
    for b in cards:
        t = perf()
        cred = Credential(kind="card", bits=b)
        decide(holder=store.find(cred), now=datetime.now(UTC), tz=tz)
        times.append((perf() - t) / 1000)
    out["decision (card → lookup → decide)"] = times
    store.close()
    return out


def _schedstat() -> int:
    """Nanoseconds this thread has waited in the kernel's run queue (runnable, not running)."""
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1])


# (label, holder kind, count, pause in seconds); counts of paced rows are fixed, the
# back-to-back ones scale with --samples.
PATHS = (
    ("unlimited holder, back to back", "unlimited", None, 0),
    ("unlimited holder, one every 10 ms", "unlimited", 1000, 0.01),
    ("unlimited holder, one every 1 s", "unlimited", None, 1.0),
    ("holder with uses (fsync'd commit), back to back", "uses", None, 0),
    ("holder with uses (fsync'd commit), one every 10 ms", "uses", 300, 0.01),
    ("holder with uses (fsync'd commit), one every 1 s", "uses", None, 1.0),
)


def relay_latency(directory: Path, n: int, samples: int, rng: random.Random, *, slow: int = 90,
                  pragmas: tuple[str, ...] = ()) -> dict:
    """Inside the daemon (in-process, real door component on mock pins).

    Each paced presentation is a callback at a loop deadline (as the Wiegand end of
    frame is), after an idle gap.  Per sample: present() → relay, deadline → relay (the
    loop's wake-up included) and the time the thread waited in the kernel's run queue
    meanwhile (other processes on the CPU: the machine, not accessd)."""
    import tomllib

    from accessd.config import parse_config
    from accessd.shell.daemon import Daemon as AccessDaemon

    cfg = parse_config(tomllib.loads(
        f'[daemon]\nsocket = "{directory}/inproc.sock"\nstate_dir = "{directory}/state"\npin_factory = "mock"\n'
        f'[reader]\nprotocol = "none"\n[access]\ncard_and_pin = false\nlockout_attempts = 0\n'
    ))
    result: dict = {}
    perf = time.perf_counter_ns

    async def main():
        d = AccessDaemon(cfg)
        task = asyncio.create_task(d.run(signals=False))
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        for pragma in pragmas:  # store-side prototypes, set from the outside
            d.access.store.conn.execute(f"PRAGMA {pragma}")
        loop = asyncio.get_running_loop()
        relay = d.door.relay
        stamp = []
        original = relay.set_unlocked

        def set_unlocked(value):
            if value:
                stamp.append(perf())
            return original(value)

        relay.set_unlocked = set_unlocked
        try:
            for label, kind, count, pause in PATHS:
                if count is None:
                    count = slow if pause >= 1 else (samples if kind == "unlimited" else max(200, samples // 20))
                pick = (lambda: rng.randrange(n) | 1) if kind == "unlimited" else (lambda: rng.randrange(n // 10) * 10)
                times, woke, waited = [], [], []
                for k in range(count):
                    if pause:
                        due = loop.create_future()
                        deadline = loop.time() + pause  # loop.time() is CLOCK_MONOTONIC, as perf_counter
                        loop.call_at(deadline, due.set_result, None)
                        await due
                    i = pick()
                    cred = Credential(kind="card", bits=format(int(card_of(i), 16), "032b"))
                    stamp.clear()
                    rq = _schedstat() if pause else 0
                    t = perf()
                    decision = d.access.present(cred, "bench")
                    assert decision.granted, decision
                    assert stamp, "the relay was not commanded"
                    times.append((stamp[0] - t) / 1000)
                    if pause:
                        waited.append((_schedstat() - rq) / 1000)
                        woke.append((stamp[0] - deadline * 1e9) / 1000)
                    d.door.lock()
                    if not pause and k % 200 == 199:
                        await asyncio.sleep(0)  # let the event log and timers run
                result[label] = {"present": times, "deadline": woke, "runqueue": waited}
            result["rss"] = rss(os.getpid())
        finally:
            d.request_stop()
            await task

    asyncio.run(main())
    return result


def row(name: str, values: list[float], unit: str = "µs") -> str:
    return f"| {name} | {len(values)} | {statistics.median(values):.1f} | {pct(values, 0.99):.1f} | {max(values):.1f} | {unit} |"


def relay_table(lat: dict) -> list[str]:
    """One table: present → relay p50/p99/max, the paced rows' wake-up and preemption."""
    lines = [
        "| credential → relay command in the daemon | n | p50 µs | p99 µs | max µs | > 1 ms "
        "| preempted (run-queue wait) | p99 µs, not preempted | deadline → relay p50 / p99 µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in lat.items():
        if name == "rss":
            continue
        v = r["present"]
        over = sum(x > 1000 for x in v) / len(v)
        if r["runqueue"]:
            quiet = [x for x, w in zip(v, r["runqueue"], strict=True) if w <= 50]  # > 50 µs waiting: preempted
            pre = f"{len(v) - len(quiet)}"
            qp99 = f"{pct(quiet, 0.99):.1f}" if quiet else "—"
            dl = f"{statistics.median(r['deadline']):.0f} / {pct(r['deadline'], 0.99):.0f}"
        else:
            pre = qp99 = dl = "—"
        lines.append(f"| {name} | {len(v)} | {statistics.median(v):.1f} | {pct(v, 0.99):.1f} | {max(v):.1f} "
                     f"| {over:.1%} | {pre} | {qp99} | {dl} |")
    return lines


STATE_FILES = ("entrylist.db", "access.db", "pin.key")


def cached_state(cache: Path, n: int) -> Path | None:
    path = cache / f"holders-{n}"
    return path if all((path / f).exists() for f in STATE_FILES) else None


def bench(n: int, samples: int, *, cache: Path | None, parts: set[str], slow: int, pragmas: tuple[str, ...]) -> list[str]:
    rng = random.Random(n)
    directory = Path(tempfile.mkdtemp(prefix=f"bench-entrylist-{n}-"))
    state = directory / "state"
    lines = [f"### {n:,} holders", ""]
    daemon = Daemon(directory)
    reuse = cached_state(cache, n) if cache is not None else None
    if reuse is not None:
        state.mkdir(mode=0o750)
        for f in STATE_FILES:
            shutil.copy2(reuse / f, state / f)
        lines += [f"(state reused from {reuse}: import not measured)", ""]
    else:
        csv_path = directory / "holders.csv"
        t = time.perf_counter()
        write_csv(csv_path, n)
        gen = time.perf_counter() - t
        lines += [f"CSV: {csv_path.stat().st_size / 1e6:.1f} MB, written in {gen:.1f} s", ""]
        daemon.start()
        t = time.perf_counter()
        done = daemon.cli("holders", "import", str(csv_path), "--json")
        import_s = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(f"import failed: {done.stderr[-2000:]}")
        rss_import = rss(daemon.proc.pid)
        daemon.stop()
        csv_path.unlink()
        db = state / "entrylist.db"
        size_mb = sum(p.stat().st_size for p in db.parent.glob("entrylist.db*")) / 1e6
        lines += [
            "| measure | value |",
            "|---|---|",
            f"| CSV import via `accessd-cli holders import` (one transaction) | {import_s:.1f} s ({n / import_s:,.0f} rows/s) |",
            f"| database size | {size_mb:.0f} MB |",
            f"| daemon RSS after the import (current / peak) | {rss_import[0]:.1f} MB / {rss_import[1]:.1f} MB |",
        ]
        if cache is not None:  # checkpointed copy for the next run (--cache)
            import sqlite3

            for f in ("entrylist.db", "access.db"):
                conn = sqlite3.connect(state / f)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
            target = cache / f"holders-{n}"
            target.mkdir(parents=True, exist_ok=True)
            for f in STATE_FILES:
                shutil.copy2(state / f, target / f)
    if "trips" in parts:
        # fresh daemon: round trips and steady memory
        daemon.start()
        s, f = daemon.connect()
        trips = []
        for k in range(5000):
            i = rng.randrange(n)
            msg = json.dumps({"id": k, "cmd": "check-credential", "params": {"card": card_of(i), "bit_length": 32, "present": True}})
            t = time.perf_counter_ns()
            s.sendall(msg.encode() + b"\n")
            reply = json.loads(f.readline())
            trips.append((time.perf_counter_ns() - t) / 1000)
            assert reply["ok"] and reply["result"]["decision"] == "granted", reply
            if k % 50 == 0:
                s.sendall(json.dumps({"id": -1, "cmd": "door.lock", "params": {}}).encode() + b"\n")
                f.readline()
        s.close()
        rss_steady = rss(daemon.proc.pid)
        cli_trips = []
        for _ in range(10):
            t = time.perf_counter()
            done = daemon.cli("check-credential", "--pin", pin_of(rng.randrange(n)))
            cli_trips.append((time.perf_counter() - t) * 1000)
            assert done.returncode == 0, done.stderr
        daemon.stop()
        lines += [
            "",
            f"daemon RSS after restart + 5,000 presentations (current / peak): {rss_steady[0]:.1f} MB / {rss_steady[1]:.1f} MB",
            "",
            "| path | n | p50 | p99 | max | unit |",
            "|---|---|---|---|---|---|",
            row("check-credential --present, socket round trip (open connection)", trips),
            row("check-credential, whole `accessd-cli` process", cli_trips, "ms"),
        ]
    if "lookups" in parts:
        if "trips" not in parts:
            lines += ["", "| path | n | p50 | p99 | max | unit |", "|---|---|---|---|---|---|"]
        for name, values in lookups(state, n, samples, rng).items():
            lines.append(row(name, values))
    if "relay" in parts:
        lat = relay_latency(directory, n, samples // 4, rng, slow=slow, pragmas=pragmas)
        lines += [""] + ([f"(store prototype: PRAGMA {', '.join(pragmas)})", ""] if pragmas else []) + relay_table(lat)
    lines.append("")
    shutil.rmtree(directory, ignore_errors=True)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--slow", type=int, default=90, help="presentations in each one-per-second row (90: 1.5 min each)")
    ap.add_argument("--cache", default="/tmp/accessd-bench-cache",
                    help="keep the imported state here and reuse it (import not measured then); '' for none")
    ap.add_argument("--parts", default="trips,lookups,relay", help="of trips,lookups,relay (the import runs unless cached)")
    ap.add_argument("--pragma", action="append", default=[], help="store prototype, e.g. mmap_size=268435456")
    args = ap.parse_args()
    out = [f"## Entry list (bench_entrylist.py, {os.cpu_count()} cores, SQLite {__import__('sqlite3').sqlite_version})", ""]
    for n in (int(x) for x in args.sizes.split(",")):
        out += bench(n, args.samples, cache=Path(args.cache) if args.cache else None,
                     parts=set(args.parts.split(",")), slow=args.slow, pragmas=tuple(args.pragma))
        print("\n".join(out), flush=True)
        out = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
