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


class StateFileError(AccessdError):
    """A file in the state directory that cannot be used (damaged, unreadable, read-only, a
    short key, written by a newer accessd): ``path`` names it, ``remedy`` says what to do.
    The daemon stops with this one line and exit status 2."""

    def __init__(self, path: str, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")
        self.path = path
        self.problem = problem
        self.remedy = remedy


class IllegalTransition(AccessdError):
    """A state machine got an event it cannot take in its state (``accessd.door.machine``)."""

    def __init__(self, state: str, event: object, detail: str) -> None:
        super().__init__(f"door in state {state!r} cannot take {event!r}: {detail}")
        self.state = state
        self.event = event
        self.detail = detail


# -- the entry list (accessd.store.entrylist) ------------------------------------------


class EntryListError(AccessdError):
    """Base of the entry list's errors; ``kind`` maps to the CLI's exit codes."""

    kind = "invalid"


class InvalidField(EntryListError, ValueError):
    """A field value that cannot be stored: names the field, the value and what was expected."""

    def __init__(self, field: str, value: object, expected: str, line: int | None = None) -> None:
        self.field, self.value, self.expected, self.line = field, value, expected, line
        where = f"line {line}, " if line is not None else ""
        super().__init__(f"{where}{field}: expected {expected}, got {value!r}")


class DuplicateCredential(EntryListError):
    """A card, PIN, QR code or first name that another holder already has (a PIN or QR text
    is never shown)."""

    def __init__(self, field: str, value: object, other: str | None, line: int | None = None) -> None:
        self.field, self.value, self.other, self.line = field, value, other, line
        where = f"line {line}, " if line is not None else ""
        owner = f" by holder {other!r}" if other else ""
        shown = "(hidden)" if field in ("pin", "qr") else repr(value)  # both are secrets
        super().__init__(f"{where}{field}: {shown} is already used{owner}")


class HolderNotFound(EntryListError):
    kind = "not_found"

    def __init__(self, ident: object) -> None:
        self.ident = ident
        super().__init__(f"no holder {ident!r} (give a holder id or first name)")


class ImportFailed(EntryListError):
    """The CSV import was rolled back; ``errors`` lists every (line, field, message)."""

    def __init__(self, errors: list[EntryListError], rows: int, limit: int = 1000) -> None:
        self.errors, self.rows = errors, rows
        shown = "\n".join(str(e) for e in errors[:20])
        more = f"\n… and {len(errors) - 20} more" if len(errors) > 20 else ""
        count = f"{len(errors)} error(s)" + (f", the first {limit} only" if len(errors) >= limit else "")
        super().__init__(f"import rejected, nothing was changed ({count}):\n{shown}{more}")


class PinSpaceExhausted(EntryListError):
    kind = "unavailable"
