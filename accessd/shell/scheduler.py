"""One scheduler for every machine's timers.

Every machine in the daemon (the door, the access policy, each reader's pipeline and
decoder, the reader feedback) keeps its timers as data: ``next_deadline()`` (monotonic
seconds, or None) and a ``tick(now)``.  A component registers that pair once with
:meth:`Scheduler.add` and calls :meth:`Scheduler.poke` after it handled anything that
may have moved a deadline.  The scheduler keeps a single loop timer at the earliest
deadline and ticks every machine that is due.

The clock is injected.  In the daemon it is ``time.monotonic`` and the timer is the
asyncio loop's; a test passes a :class:`VirtualClock` and no loop, and moves time with
:meth:`Scheduler.advance`, which fires each deadline at its exact virtual instant — so
the shell is tested in virtual time and never sleeps for a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class VirtualClock:
    """A monotonic clock that moves only when told (tests)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now


class _Machine:
    __slots__ = ("name", "deadline", "tick", "benched")

    def __init__(self, name: str, deadline: Callable[[], float | None], tick: Callable[[float], None]) -> None:
        self.name = name
        self.deadline = deadline
        self.tick = tick
        self.benched: float | None = None  # a deadline whose tick failed: not retried until it moves

    def due(self) -> float | None:
        d = self.deadline()
        if d is not None and d == self.benched:
            return None
        self.benched = None
        return d


class Scheduler:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self._machines: list[_Machine] = []
        self._timer: asyncio.TimerHandle | None = None
        self._armed: float | None = None
        self._running = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fire on ``loop``'s timers (the real daemon); without it time moves by :meth:`advance`."""
        self.loop = loop
        self.poke()

    def detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed = None
        self.loop = None

    def add(self, name: str, deadline: Callable[[], float | None], tick: Callable[[float], None]) -> None:
        self._machines.append(_Machine(name, deadline, tick))

    def next_deadline(self) -> float | None:
        return min((d for m in self._machines if (d := m.due()) is not None), default=None)

    def poke(self) -> None:
        """Deadlines may have changed: arm the one timer for the earliest."""
        if self.loop is None or self._running:
            return
        due = self.next_deadline()
        if due == self._armed and (due is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = due
        if due is not None:
            self._timer = self.loop.call_at(self.loop.time() + max(0.0, due - self.clock()), self._fire)

    def _fire(self) -> None:
        self._timer = self._armed = None
        self.run_due()

    def run_due(self) -> None:
        """Tick every machine whose deadline has come, until none is due; then re-arm.

        A machine whose tick raises, or whose deadline stays in the past after 100
        rounds, is benched until its deadline moves: one machine's bug never stops the
        others' timers nor spins the loop."""
        self._running = True
        try:
            for _ in range(100):
                now = self.clock()
                due = [(m, d) for m in self._machines if (d := m.due()) is not None and d <= now]
                if not due:
                    break
                for m, d in due:
                    try:
                        m.tick(now)
                    except Exception:
                        log.exception("timer of %s failed", m.name)
                        m.benched = d
            else:
                now = self.clock()
                for m in self._machines:
                    d = m.due()
                    if d is not None and d <= now:
                        log.error("the timer of %s stays due at %s: benched until its deadline moves", m.name, d)
                        m.benched = d
        finally:
            self._running = False
        self.poke()

    def advance(self, clock: VirtualClock, seconds: float) -> None:
        """Move a virtual clock ``seconds`` on, firing every deadline on the way at its instant."""
        end = clock.now + seconds
        while True:
            due = self.next_deadline()
            if due is None or due > end:
                break
            clock.now = max(clock.now, due)
            self.run_due()
        clock.now = end
        self.run_due()
