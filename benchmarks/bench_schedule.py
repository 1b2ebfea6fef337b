"""Schedules: the decision with time limits, next_change, and mode changes at their second.

1. The pure policy on the real entry list (SQLite, ``--holders`` holders, every one with a
   schedule or a group), ``--schedules`` schedules (3 weekly intervals, one overnight, and
   a holiday list each) and ``--groups`` groups of 3 schedules: decision time p50/p99
   over random instants of 2026 (a third of them within two days of a DST change, where
   the exact span rule runs).
2. ``Schedule.next_change`` for the same schedules at random instants.
3. A daemon on the real asyncio loop and the real clocks with a mode schedule that changes
   every second for ``--changes`` changes: how late each ``door.mode`` is published after
   the second it is due (p50/p99/max).

    .venv/bin/python benchmarks/bench_schedule.py [--holders 100000] [--changes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accessd.protocols.credential import Credential  # noqa: E402

from accessd.access.component import EntryListLookup  # noqa: E402
from accessd.access.policy import AccessPolicy, Decided, PolicySettings, Present  # noqa: E402
from accessd.access.schedule import Group, HolidayList, Schedule, ScheduleBook  # noqa: E402
from accessd.config import parse_config  # noqa: E402
from accessd.shell.daemon import Daemon  # noqa: E402
from accessd.store.entrylist import EntryList  # noqa: E402

TZ = ZoneInfo("Europe/Berlin")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def book(rng, n_schedules, n_groups) -> ScheduleBook:
    holidays = HolidayList.parse("public", ["01-01", "12-25", "12-26", "2026-04-03", "2026-05-14"])
    schedules = {}
    for i in range(n_schedules):
        a, b = sorted(rng.sample(range(7), 2))
        texts = [f"{DAYS[a]}-{DAYS[b]} {rng.randrange(5, 10):02d}:{rng.randrange(60):02d}-{rng.randrange(15, 20):02d}:00",
                 f"{DAYS[rng.randrange(7)]} 22:{rng.randrange(60):02d}-05:30",
                 f"Sat {rng.randrange(8, 11):02d}:00-12:{rng.randrange(60):02d}"]
        schedules[f"s{i}"] = Schedule.parse(f"s{i}", TZ, weekly=texts, holidays=[holidays])
    groups = {f"g{i}": Group(name=f"g{i}", schedules=tuple(rng.sample(sorted(schedules), 3))) for i in range(n_groups)}
    return ScheduleBook(schedules, groups)


def instants(rng, n):
    dst = [datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp(), datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp()]
    lo, hi = datetime(2026, 1, 1, tzinfo=UTC).timestamp(), datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    return [rng.choice(dst) + rng.uniform(-2 * 86400, 2 * 86400) if rng.random() < 1 / 3 else rng.uniform(lo, hi)
            for _ in range(n)]


def bench_decisions(args) -> None:
    rng = random.Random(1)
    b = book(rng, args.schedules, args.groups)
    with tempfile.TemporaryDirectory() as tmp:
        store = EntryList(tmp)
        rows = ["first_name,card,bit_length,schedule,group\n"]
        for i in range(args.holders):
            sched, group = (f"s{rng.randrange(args.schedules)}", "") if i % 2 else ("", f"g{rng.randrange(args.groups)}")
            rows.append(f"H{i},{i + 1:X},26,{sched},{group}\n")
        t0 = time.perf_counter()
        store.import_csv(rows)
        print(f"import of {args.holders:,} holders with schedules/groups: {time.perf_counter() - t0:.1f} s")
        policy = AccessPolicy(PolicySettings(card_and_pin=False), EntryListLookup(store), TZ, book=b)
        walls = instants(rng, args.n)
        cards = [Credential.card(f"{rng.randrange(args.holders) + 1:X}", 26) for _ in range(args.n)]
        times, outside = [], 0
        for i, (cred, wall) in enumerate(zip(cards, walls, strict=True)):
            t = time.perf_counter()
            actions = policy.handle(Present(credential=cred, reader="r1", ref=i), now=float(i), wall=wall)
            times.append(time.perf_counter() - t)
            d = next(a for a in actions if isinstance(a, Decided))
            outside += d.decision.reason == "outside_schedule"
        store.close()
    print(f"decision (look-up + validity + schedule), {args.n:,} presentations, {args.schedules} schedules, "
          f"{args.groups} groups: p50 {pct(times, 50) * 1e6:.0f} µs, p99 {pct(times, 99) * 1e6:.0f} µs, "
          f"max {max(times) * 1e6:.0f} µs; {outside / args.n:.0%} outside_schedule")
    scheds = list(b.schedules.values())
    times = []
    for wall in walls[:2000]:
        s = rng.choice(scheds)
        t = time.perf_counter()
        s.next_change(wall)
        times.append(time.perf_counter() - t)
    print(f"next_change: p50 {pct(times, 50) * 1e6:.0f} µs, p99 {pct(times, 99) * 1e6:.0f} µs, "
          f"max {max(times) * 1e6:.0f} µs")


def bench_mode_lateness(args) -> None:
    start = datetime.fromtimestamp(time.time() + 3, TZ).replace(microsecond=0)
    intervals = []
    for k in range(0, args.changes, 2):
        a, b = start + timedelta(seconds=k), start + timedelta(seconds=k + 1)
        intervals.append(f'"daily {a:%H:%M:%S}-{b:%H:%M:%S}"')
    due = [(start + timedelta(seconds=k)).timestamp() for k in range(args.changes)]
    with tempfile.TemporaryDirectory() as tmp:
        text = (f'[daemon]\nsocket = "{tmp}/a.sock"\nstate_dir = "{tmp}/state"\npin_factory = "mock"\n'
                f'timezone = "Europe/Berlin"\n[schedules.tick]\nweekly = [{", ".join(intervals)}]\n'
                f'[[modes.scheduled]]\nschedule = "tick"\nmode = "unlocked"\n')

        async def main():
            d = Daemon(parse_config(tomllib.loads(text)))
            seen: list[float] = []
            publish = d.publish

            def record(type, **fields):  # noqa: A002
                if type == "door.mode" and fields.get("source") == "schedule":
                    seen.append(time.time())
                return publish(type, **fields)

            d.publish = record
            task = asyncio.create_task(d.run())
            while len(seen) < args.changes and time.time() < due[-1] + 5:
                await asyncio.sleep(0.2)
            d.request_stop()
            await task
            return seen

        seen = asyncio.run(main())
    late = [s - t for s, t in zip(seen, due, strict=False)]
    print(f"door.mode lateness on the real loop, {len(late)} changes one second apart: "
          f"p50 {pct(late, 50) * 1e3:.2f} ms, p99 {pct(late, 99) * 1e3:.2f} ms, max {max(late) * 1e3:.2f} ms, "
          f"min {min(late) * 1e3:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holders", type=int, default=100_000)
    ap.add_argument("--schedules", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--changes", type=int, default=20)
    args = ap.parse_args()
    bench_decisions(args)
    bench_mode_lateness(args)


if __name__ == "__main__":
    main()
