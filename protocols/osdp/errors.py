"""Typed errors of the OSDP package; each carries the offending bytes."""

from __future__ import annotations


class OsdpError(Exception):
    """Base class of every OSDP error."""


class FrameError(OsdpError):
    """Bytes on the bus that are not a well-formed OSDP frame.

    ``data`` is the frame (or the garbage) that was rejected, ``offset`` the
    index of the offending byte within it.
    """

    def __init__(self, message: str, data: bytes, offset: int = 0) -> None:
        self.data = bytes(data)
        self.offset = offset
        super().__init__(f"{message} at offset {offset} in {self.data[:48].hex(' ')}"
                         + (" …" if len(self.data) > 48 else ""))


class ChecksumMismatch(FrameError):
    """The CRC-16 or 8-bit checksum of a frame is wrong."""

    def __init__(self, data: bytes, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"check value mismatch: frame says 0x{actual:04X}, computed 0x{expected:04X}",
                         data, len(data) - 2)


class PayloadError(OsdpError):
    """A command or reply payload that does not match its layout."""

    def __init__(self, name: str, data: bytes, reason: str) -> None:
        self.name = name
        self.data = bytes(data)
        self.reason = reason
        super().__init__(f"osdp_{name}: {reason} (payload {self.data.hex(' ') or 'empty'})")


class SecureChannelError(OsdpError):
    """A MAC, cryptogram or secure-block failure; the session must be dropped."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        self.data = bytes(data)
        super().__init__(message + (f" ({self.data[:48].hex(' ')})" if data else ""))


class MacMismatch(SecureChannelError):
    def __init__(self, data: bytes, expected: bytes, actual: bytes) -> None:
        self.expected = bytes(expected)
        self.actual = bytes(actual)
        super().__init__(f"MAC mismatch: frame carries {self.actual.hex()}, expected {self.expected.hex()}", data)


class CryptogramMismatch(SecureChannelError):
    def __init__(self, data: bytes) -> None:
        super().__init__("client cryptogram does not match (wrong key?)", data)


class Nak(OsdpError):
    """A PD refused a command with osdp_NAK ``code``."""

    def __init__(self, code: int, data: bytes = b"") -> None:
        from .payloads import NAK_REASONS

        self.code = code
        self.data = bytes(data)
        super().__init__(f"NAK {code} ({NAK_REASONS.get(code, 'unknown')})")


class IllegalTransition(OsdpError):
    def __init__(self, state: str, event: str) -> None:
        self.state = state
        self.event = event
        super().__init__(f"no transition from state {state} on {event}")
