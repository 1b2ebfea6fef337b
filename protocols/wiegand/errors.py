"""Typed errors of the Wiegand package; each carries the offending bits or value."""

from __future__ import annotations


class WiegandError(ValueError):
    """Base class of every Wiegand error."""


class BitsError(WiegandError):
    """A bit string that is not 0/1, or hex that does not fit its bit length."""

    def __init__(self, bits: str, message: str) -> None:
        self.bits = bits
        super().__init__(message)


class UnknownFormat(WiegandError):
    """A format name that is neither a format nor an alias."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown Wiegand format {name!r} (known: {', '.join(known)})")


class FormatDefinitionError(WiegandError):
    """A format declaration (built in or from the config) that cannot work."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"format {name}: {message}")


class LengthMismatch(WiegandError):
    """Bits whose count is not the chosen format's length."""

    def __init__(self, bits: str, format_name: str, expected: int) -> None:
        self.bits = bits
        self.format_name = format_name
        self.expected = expected
        super().__init__(f"{format_name} has {expected} bits, got {len(bits)}: {bits}")


class FieldRangeError(WiegandError):
    """A value that does not fit its field when encoding (names the limit)."""

    def __init__(self, format_name: str, field: str, value: int, maximum: int) -> None:
        self.format_name = format_name
        self.field = field
        self.value = value
        self.maximum = maximum
        label = field.replace("_", " ")
        if maximum < 0:
            msg = f"{format_name} has no {label} (got {value})"
        else:
            msg = f"{label} {value} is out of range for {format_name} (0–{maximum})"
        super().__init__(msg)


class KeypressError(WiegandError):
    """A keypress frame that is not a key (bad length, bad inverse nibble, bad parity, unmapped value)."""

    def __init__(self, bits: str, message: str) -> None:
        self.bits = bits
        super().__init__(message)
