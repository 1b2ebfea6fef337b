"""Typed errors of the daemon shell."""

from __future__ import annotations


class AccessdError(Exception):
    """Base class of accessd's own errors."""


class ConfigError(AccessdError):
    """A configuration value is wrong; ``path`` names the key (``door.access_time``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


# Kinds of command errors and the accessd-cli exit code each maps to.
EXIT_CODES = {"denied": 1, "not_found": 1, "invalid": 2, "forbidden": 2, "unavailable": 3}


class CommandError(AccessdError):
    """A socket command failed; ``kind`` is one of :data:`EXIT_CODES`."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in EXIT_CODES:
            raise ValueError(f"unknown command error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message


class LogCorrupt(AccessdError):
    """The event log failed its integrity check; ``kept`` is where the broken file was moved."""

    def __init__(self, path: str, detail: str, kept: str) -> None:
        super().__init__(f"event log {path} is corrupt ({detail}); kept as {kept}")
        self.path = path
        self.detail = detail
        self.kept = kept


class IllegalTransition(AccessdError):
    """A state machine got an event it cannot take in its state (``accessd.door``)."""

    def __init__(self, state: str, event: object, detail: str) -> None:
        super().__init__(f"door in state {state!r} cannot take {event!r}: {detail}")
        self.state = state
        self.event = event
        self.detail = detail
