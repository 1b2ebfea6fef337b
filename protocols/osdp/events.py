"""Typed events the OSDP control panel emits (frozen, slotted, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    address: int

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0x7F:
            raise ValueError(f"PD address must be 0-127, got {self.address}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Connecting(Event):
    """The CP started (or restarted) the handshake with a PD that answers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Online(Event):
    secure: bool
    pdid: dict = field(default_factory=dict)
    capabilities: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Offline(Event):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CardRead(Event):
    """Card data; ``bits`` in wire order (left-justified OSDP bytes unpacked)."""

    reader: int
    format: int
    bits: str

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if not self.bits or set(self.bits) - {"0", "1"}:
            raise ValueError(f"bits must be a non-empty string of 0/1, got {self.bits!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FormattedCardRead(Event):
    reader: int
    direction: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeypadKeys(Event):
    """Key presses as text: digits, ``*`` and ``#``."""

    reader: int
    keys: str

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if set(self.keys) - set("0123456789*#"):
            raise ValueError(f"keys must be digits, * or #, got {self.keys!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalStatus(Event):
    """osdp_LSTATR as reported (first report and every change)."""

    tamper: bool
    power_failure: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class IoStatus(Event):
    """osdp_ISTATR / OSTATR / RSTATR: ``kind`` is input / output / reader."""

    kind: str
    status: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ManufacturerData(Event):
    vendor: bytes
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityAlert(Event):
    """A security problem: ``kind`` is one of downgrade, wrong_key, mac_mismatch,
    plaintext_reply, rmac_rejected, secure_channel_required, secure_channel_lost."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisioned(Event):
    """Install mode finished: the PD now holds the configured SCBK."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComChanged(Event):
    """The PD acknowledged osdp_COMSET: it now answers at ``address`` and ``baud``."""

    old_address: int
    baud: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandDone(Event):
    """Completion of a queued command; ``ok`` False with ``detail`` on NAK/offline."""

    handle: int
    command: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BusError(Event):
    """A framing/payload problem on the bus (address of the PD being served)."""

    error: str
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet(Event):
    """A packet sent or received (only when the CP runs with ``trace=True``)."""

    direction: str  # "tx" | "rx"
    time: float
    raw: bytes
