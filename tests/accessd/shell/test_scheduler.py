"""One scheduler for every machine's timers, in virtual time and on a real loop."""

from __future__ import annotations

import asyncio
import time

from accessd.shell.scheduler import Scheduler, VirtualClock


class Machine:
    def __init__(self, *deadlines: float) -> None:
        self.deadlines = sorted(deadlines)
        self.fired: list[float] = []

    def next_deadline(self):
        return self.deadlines[0] if self.deadlines else None

    def tick(self, now):
        while self.deadlines and self.deadlines[0] <= now:
            self.fired.append(now)
            self.deadlines.pop(0)


def test_virtual_time_fires_each_deadline_at_its_instant():
    clock = VirtualClock(100.0)
    s = Scheduler(clock)
    a, b = Machine(101.0, 103.5), Machine(102.0)
    s.add("a", a.next_deadline, a.tick)
    s.add("b", b.next_deadline, b.tick)
    s.advance(clock, 1.5)
    assert (a.fired, b.fired, clock.now) == ([101.0], [], 101.5)
    s.advance(clock, 10)
    assert (a.fired, b.fired, clock.now) == ([101.0, 103.5], [102.0], 111.5)
    assert s.next_deadline() is None


def test_a_failing_or_stuck_machine_is_benched_and_the_others_go_on():
    clock = VirtualClock(0.0)
    s = Scheduler(clock)
    ok = Machine(1.0, 2.0)
    calls = []

    def broken(now):
        calls.append(now)
        raise RuntimeError("bug")

    s.add("broken", lambda: 0.5, broken)  # raises, and its deadline never moves
    s.add("stuck", lambda: 0.7, lambda now: None)  # never consumes its deadline
    s.add("ok", ok.next_deadline, ok.tick)
    s.advance(clock, 3)
    assert ok.fired == [1.0, 2.0] and calls == [0.5]
    assert s.next_deadline() is None  # both benched until their deadlines move


def test_on_a_real_loop_one_timer_follows_the_earliest_deadline():
    async def main():
        s = Scheduler(time.monotonic)
        s.attach(asyncio.get_running_loop())
        start = time.monotonic()
        m = Machine(start + 0.05, start + 0.10)
        s.add("m", m.next_deadline, m.tick)
        s.poke()
        await asyncio.sleep(0.3)
        s.detach()
        return start, m.fired

    start, fired = asyncio.run(main())
    assert len(fired) == 2 and fired[0] >= start + 0.05 and fired[1] >= start + 0.10
