"""Events: what happened, numbered and stamped, as every client and the log see it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from accessd.access.decision import REASONS

# The event types of the public interface (DESIGN.md).  Components may add types in
# these namespaces (for example ``security.downgrade`` or ``alarm.lockout``).
EVENT_TYPES = frozenset(
    {
        "access.granted", "access.denied", "credential.read",
        "door.unlocked", "door.locked", "door.opened", "door.closed",
        "door.forced_open", "door.held_open", "input.changed", "tamper",
        "reader.connected", "reader.connecting", "reader.disconnected",
        "system.started", "system.stopping",
    }
)  # fmt: skip
NAMESPACES = frozenset({t.split(".")[0] for t in EVENT_TYPES} | {"security", "alarm", "admin", "rule", "output"})
DENY_REASONS = REASONS  # one list: accessd.access.decision
_TYPE = re.compile(r"[a-z]+(\.[a-z_]+)*")


def iso_utc(ts: float) -> str:
    """Unix time as ISO 8601 UTC with milliseconds: ``2026-11-24T01:02:03.456Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    seq: int
    ts: float
    type: str
    fields: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _TYPE.fullmatch(self.type) or self.type.split(".")[0] not in NAMESPACES:
            raise ValueError(f"unknown event type {self.type!r}")
        if self.seq < 1:
            raise ValueError(f"event seq must be positive, got {self.seq}")
        clash = {"seq", "time", "type"} & self.fields.keys()
        if clash:
            raise ValueError(f"event fields may not be named {sorted(clash)}")
        if self.type == "access.denied" and self.fields.get("reason") not in DENY_REASONS:
            raise ValueError(f"access.denied needs a reason in {DENY_REASONS}, got {self.fields.get('reason')!r}")

    def to_json(self) -> dict:
        return {"seq": self.seq, "time": iso_utc(self.ts), "type": self.type, **self.fields}
