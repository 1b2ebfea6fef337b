"""Door modes by schedule: pure, no clock, no I/O.

``[[modes.scheduled]]`` entries (a schedule, a mode, ``first_card``) are tried in order;
the first whose schedule is active gives the scheduled mode, else ``modes.default``.
``lockdown`` is set by command and overrides every schedule until it is lifted.

* ``locked`` — credentials as the entry list says;
* ``unlocked`` — free access: the door is held unlocked (credentials still decide and are
  logged); with ``first_card`` the period begins only when a valid credential is
  presented in it, and until then the door is in ``modes.default``;
* ``card_and_pin`` — a holder with a card and a PIN presents both; ``card_only`` — cards
  alone (no PIN asked, PINs alone refused); ``pin_only`` — PINs alone (cards refused);
* ``lockdown`` — only holders of a ``responder`` group are granted; free egress stays
  (the exit button is the door's, untouched).

:class:`Modes` holds the state; :meth:`Modes.evaluate` (at ``wall``), :meth:`Modes.granted`
and :meth:`Modes.set_lockdown` return the :class:`ModeChanged` events, one per change of
the effective mode; :meth:`Modes.next_change` says when the schedules next change.
"""

from __future__ import annotations

from dataclasses import dataclass

from accessd.access.schedule import ScheduleBook

MODES = ("locked", "unlocked", "card_and_pin", "card_only", "pin_only", "lockdown")
SCHEDULED_MODES = MODES[:-1]  # lockdown only by command


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeEntry:
    schedule: str
    mode: str
    first_card: bool = False

    def __post_init__(self) -> None:
        if self.mode not in SCHEDULED_MODES:
            raise ValueError(f"mode: expected one of {', '.join(SCHEDULED_MODES)}, got {self.mode!r}")
        if self.first_card and self.mode != "unlocked":
            raise ValueError(f"first_card applies to the unlocked mode, not {self.mode!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeChanged:
    """The effective mode changed (published as ``door.mode``)."""

    mode: str
    previous: str
    source: str  # "start" | "schedule" | "first_card" | "command"
    scheduled: str
    waiting_first_card: bool

    def fields(self) -> dict:
        return {"mode": self.mode, "previous": self.previous, "source": self.source, "scheduled": self.scheduled,
                "waiting_first_card": self.waiting_first_card}


class Modes:
    def __init__(self, book: ScheduleBook, entries: tuple[ModeEntry, ...] = (), default: str = "locked") -> None:
        if default not in SCHEDULED_MODES:
            raise ValueError(f"default: expected one of {', '.join(SCHEDULED_MODES)}, got {default!r}")
        for e in entries:
            if e.schedule not in book.schedules:
                raise ValueError(f"no schedule {e.schedule!r}")
        self.book = book
        self.entries = entries
        self.default = default
        self.scheduled = default  # what the schedules say
        self.first_card = False  # the scheduled unlocked period needs a first card
        self.waiting = False  # ... and none came yet
        self.lockdown = False
        self.mode = default  # in force
        self._started = False

    def _at(self, wall: float) -> tuple[str, bool]:
        for e in self.entries:
            if self.book.schedules[e.schedule].active(wall):
                return e.mode, e.first_card
        return self.default, False

    def evaluate(self, wall: float) -> list[ModeChanged]:
        """The schedules at ``wall``; call at start, at :meth:`next_change` and after a clock step."""
        mode, first = self._at(wall)
        source = "schedule" if self._started else "start"
        if not self._started or (mode, first) != (self.scheduled, self.first_card):
            self.scheduled, self.first_card = mode, first
            self.waiting = mode == "unlocked" and first
        started = self._started
        self._started = True
        out = self._settle(source)
        if not started and not out:
            out = [ModeChanged(mode=self.mode, previous=self.mode, source="start", scheduled=self.scheduled,
                               waiting_first_card=self.waiting)]
        return out

    def granted(self) -> list[ModeChanged]:
        """A valid credential was granted: a first-card period begins."""
        if not self.waiting or self.lockdown:
            return []
        self.waiting = False
        return self._settle("first_card")

    def set_lockdown(self, on: bool) -> list[ModeChanged]:
        self.lockdown = bool(on)
        return self._settle("command")

    def next_change(self, wall: float) -> float | None:
        """When a schedule that an entry names next changes (the scheduled mode may change then)."""
        return min((c for e in self.entries if (c := self.book.schedules[e.schedule].next_change(wall)) is not None),
                   default=None)

    def _settle(self, source: str) -> list[ModeChanged]:
        if self.lockdown:
            mode = "lockdown"
        elif self.waiting:
            mode = self.default if self.default != "unlocked" else "locked"
        else:
            mode = self.scheduled
        if mode == self.mode:
            return []
        previous, self.mode = self.mode, mode
        return [ModeChanged(mode=mode, previous=previous, source=source, scheduled=self.scheduled,
                            waiting_first_card=self.waiting and not self.lockdown)]

    def status(self) -> dict:
        return {"mode": self.mode, "scheduled": self.scheduled, "lockdown": self.lockdown,
                "waiting_first_card": self.waiting}
