"""Event rules, pure: which ``[[rules]]`` fire for an event or a trigger.

A rule fires when an event's ``type`` matches its ``on`` glob, every ``match`` entry
equals the event's field at that dotted path (``holder.first_name``), its ``schedule``
(if any) is active at ``wall``, and — with ``holder_condition`` — the event's holder has
that key set in their event conditions (``holders … conditions``, JSON).  ``trigger(name)``
fires a rule by hand.  What a firing does (pulse an output, unlock the door, publish an
event) is carried out by :mod:`accessd.rules.component`.  Events a rule publishes
(``rule.*``) never fire rules, so rules cannot loop.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from accessd.access.schedule import ScheduleBook


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    on: str | None = None  # an event type glob; None: by trigger only
    match: tuple[tuple[str, str], ...] = ()
    schedule: str | None = None
    holder_condition: str | None = None
    pulse_output: str | None = None
    pulse_seconds: float = 1.0
    unlock: float | None = None
    publish: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fired:
    rule: Rule
    trigger: str  # the event type, or "manual"


def _field(fields: dict, path: str):
    node: object = fields
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class Rules:
    def __init__(self, rules: tuple[Rule, ...], book: ScheduleBook) -> None:
        self.rules = rules
        self.by_name = {r.name: r for r in rules}
        self.book = book

    def on_event(self, type_: str, fields: dict, wall: float,
                 conditions: Callable[[int], dict] | None = None) -> list[Fired]:
        if type_.startswith("rule."):
            return []
        out = []
        for r in self.rules:
            if r.on is None or not fnmatch.fnmatchcase(type_, r.on):
                continue
            if any(str(_field(fields, path)) != value for path, value in r.match):
                continue
            if r.schedule is not None and not self.book.schedules[r.schedule].active(wall):
                continue
            if r.holder_condition is not None:
                holder = fields.get("holder")
                hid = holder.get("id") if isinstance(holder, dict) else None
                if hid is None or conditions is None or not (conditions(hid) or {}).get(r.holder_condition):
                    continue
            out.append(Fired(rule=r, trigger=type_))
        return out

    def trigger(self, name: str) -> Fired:
        return Fired(rule=self.by_name[name], trigger="manual")
