"""Configuration: TOML read with tomllib into frozen, validated dataclasses.

Each section is a frozen dataclass; each field carries its rule in metadata made by
:func:`opt` (what is expected, a range or choices, an extra check).  One generic walker
(:func:`_convert`) turns the TOML tables into sections, rejecting unknown keys, wrong
types and out-of-range values with the key's dotted path before anything starts::

    door.access_time: expected a number of seconds 1–3600, got "seven"

To add a key, add a field with a default and ``opt(...)`` to its section and list it in
the README's configuration table.  Cross-field rules live in a section's ``check(path)``.
"""

from __future__ import annotations

import json
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError


def opt(
    default: object = MISSING,
    *,
    expect: str | None = None,
    range: tuple[float, float] | None = None,  # noqa: A002 - reads best at the call sites
    choices: tuple | None = None,
    check: Callable[[object], str | None] | None = None,
    factory: Callable[[], object] | None = None,
) -> typing.Any:
    """A config field: ``expect`` describes the value, ``check`` returns an error or None."""
    meta = {"expect": expect, "range": range, "choices": choices, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _hex_key(value: object) -> str | None:
    if not re.fullmatch(r"[0-9A-Fa-f]{32}", str(value)):
        return "expected 16 bytes as 32 hexadecimal digits"
    return None


def _zone(value: object) -> str | None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return "expected an IANA time zone name such as Europe/Berlin"
    return None


_CREDENTIAL_KEY = re.compile(r"card:[1-9]\d{0,3}:[0-9A-F]+|pin:[0-9]{1,32}|qr:.+", re.ASCII)


def _group(value: object) -> str | None:
    import grp

    try:
        grp.getgrnam(str(value))
    except KeyError:
        return "expected the name of a group that exists on this system"
    return None


def _abs_path(value: object) -> str | None:
    return None if str(value).startswith("/") else "expected an absolute path"


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    socket: str = opt("/run/accessd/accessd.sock", expect="an absolute path", check=_abs_path)
    state_dir: str = opt("/var/lib/accessd", expect="an absolute path", check=_abs_path)
    pin_factory: str = opt("lgpio", choices=("lgpio", "rpigpio", "mock"))
    socket_group: str | None = opt(None, expect="a group name", check=_group)
    admin_group: str | None = opt(None, expect="a group name", check=_group)
    event_capacity: int = opt(50_000, expect="a number of events", range=(100, 10_000_000))
    flush_interval: float = opt(0.5, expect="a number of seconds", range=(0.01, 1.0))
    subscriber_queue: int = opt(1024, expect="a number of events", range=(16, 1_000_000))
    max_clients: int = opt(256, expect="a number of connections", range=(1, 10_000))
    max_clients_per_uid: int = opt(16, expect="a number of connections", range=(1, 10_000))
    admin_reserve: int = opt(8, expect="a number of connections", range=(0, 1000))
    max_request: int = opt(65_536, expect="a number of bytes", range=(1024, 16_777_216))
    timezone: str | None = opt(None, expect="an IANA time zone name such as Europe/Berlin", check=_zone)


@dataclass(frozen=True, slots=True, kw_only=True)
class CardKeys:
    """How a reader's card bits are read (protocols/pipeline.py): the same keys and defaults
    for every card reader (``[reader.wiegand]``, ``[reader.osdp]``)."""

    # card formats (protocols/wiegand/formats.py): "auto" or a format name; auto tries `preference` in order
    format: str = opt("auto", expect="\"auto\" or a card format name")
    preference: list[str] = opt(factory=lambda: ["H10301", "H10306", "C1k35s", "H10302", "H10304", "C1k48s"],
                                expect="card format names")
    # frames of a length no format knows become Raw cards (matched by their bits); bad
    # parity and swapped D0/D1 stay invalid_format either way
    accept_raw: bool = opt(True)
    # card data conversion (protocols/wiegand/convert.py): present every card as this format
    convert_to: str | None = opt(None, expect="a card format name")
    fc_mode: str = opt("auto", choices=("auto", "optional", "override"))
    facility_code: int = opt(0, expect="a facility code", range=(0, 4_194_303))
    byte_reversal: bool = opt(False)
    max_32bit: bool = opt(False)

    def card_settings(self):
        from accessd.protocols.pipeline import CardSettings

        return CardSettings(format=self.format, preference=tuple(self.preference), accept_raw=self.accept_raw,
                            convert_to=self.convert_to, fc_mode=self.fc_mode, facility_code=self.facility_code,
                            byte_reversal=self.byte_reversal, max_32bit=self.max_32bit)


@dataclass(frozen=True, slots=True, kw_only=True)
class OsdpConfig(CardKeys):
    port: str = opt("/dev/ttyAMA0", expect="a serial device or pyserial URL")
    baud: int = opt(9600, choices=(9600, 19200, 38400, 57600, 115200, 230400))
    address: int = opt(0, expect="a PD address", range=(0, 126))
    scbk: str | None = opt(None, check=_hex_key)
    install_mode: bool = opt(False)
    addresses: list[int] = opt(factory=list, expect="a PD address", range=(0, 126))  # more PDs on the bus
    rs485: bool = opt(False)
    poll_interval: float = opt(0.0, expect="a number of seconds", range=(0, 1))
    reply_timeout: float = opt(0.2, expect="a number of seconds", range=(0.02, 2))
    offline_after: float = opt(8.0, expect="a number of seconds", range=(1, 60))
    probe_interval: float = opt(1.0, expect="a number of seconds", range=(0.1, 60))  # a silent/offline PD
    switch_gap: float = opt(0.025, expect="a number of seconds", range=(0, 0.5))  # quiet line before another PD
    trace: str | None = opt(None, expect="an absolute path", check=_abs_path)
    trace_format: str = opt("jsonl", choices=("jsonl", "pcap"))
    pin_length: int = opt(0, expect="a number of digits (0: no fixed length, # submits)", range=(0, 32))
    pin_timeout: float = opt(10.0, expect="a number of seconds", range=(3, 50))

    def check(self, path: str) -> None:
        if self.install_mode and self.scbk is None:
            raise ConfigError(f"{path}.install_mode", "install mode provisions reader.osdp.scbk, which is not set")
        every = [self.address, *self.addresses]
        if len(set(every)) != len(every):
            raise ConfigError(f"{path}.addresses", f"PD addresses must be distinct, got {every}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WiegandConfig(CardKeys):
    d0: int = opt(17, expect="a BCM GPIO number", range=(0, 53))
    d1: int = opt(27, expect="a BCM GPIO number", range=(0, 53))
    # keypads (protocols/wiegand/keypress.py, protocols/keypad.py)
    keypress_format: str = opt("FourBit", choices=("FourBit", "SixBitParity", "EightBitZeroPadded",
                                                   "EightBitInvertPadded", "Wiegand26", "Wiegand34", "Wiegand37",
                                                   "Wiegand37FacilityCode", "none"))
    keypress_facility_code: int = opt(0, expect="a facility code", range=(0, 65535))
    key_map: dict[str, int] = opt(factory=dict, expect="a key value", range=(0, 15))
    pin_length: int = opt(0, expect="a number of digits (0: no fixed length, # submits)", range=(0, 32))
    pin_timeout: float = opt(10.0, expect="a number of seconds", range=(3, 50))
    # edge decoder (protocols/wiegand/decoder.py): a frame ends after k × its bit interval, within floor–ceiling
    frame_k: float = opt(2.5, expect="a number of bit intervals", range=(1.2, 20))
    frame_floor: float = opt(0.001, expect="a number of seconds", range=(0.0002, 1))
    frame_ceiling: float = opt(0.06, expect="a number of seconds", range=(0.001, 1))
    glitch_pulse: float = opt(5e-6, expect="a number of seconds", range=(0, 0.0009))
    glitch_coincidence: float = opt(20e-6, expect="a number of seconds", range=(0, 0.0009))
    # reader feedback lines (wiring/feedback.py)
    led_green_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    led_red_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    led_active_low: bool = opt(True)
    led_idle: str = opt("red", choices=("off", "red", "green", "amber"))
    led_granted: str = opt("green", choices=("off", "red", "green", "amber"))
    led_denied: str = opt("red", choices=("off", "red", "green", "amber"))
    beeper_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    beeper_active_low: bool = opt(True)
    feedback_time: float = opt(2.0, expect="a number of seconds", range=(0.1, 30))

    def check(self, path: str) -> None:
        if self.frame_floor > self.frame_ceiling:
            raise ConfigError(f"{path}.frame_floor", f"must not exceed frame_ceiling ({self.frame_ceiling}), got {self.frame_floor}")
        pins = [("d0", self.d0), ("d1", self.d1), ("led_green_pin", self.led_green_pin),
                ("led_red_pin", self.led_red_pin), ("beeper_pin", self.beeper_pin)]
        seen: dict[int, str] = {}
        for name, pin in pins:
            if pin is None:
                continue
            if pin in seen:
                raise ConfigError(f"{path}.{name}", f"GPIO {pin} is already {path}.{seen[pin]}")
            seen[pin] = name
        for key in self.key_map:
            if key not in "0123456789*#" or len(key) != 1:
                raise ConfigError(f"{path}.key_map.{key}", "expected a key 0-9, * or #")
        from accessd.protocols.wiegand.keypress import KeypressFormat

        if self.keypress_format != "none":
            try:
                KeypressFormat(name=self.keypress_format, key_map=self.key_map,
                               facility_code=self.keypress_facility_code)
            except ValueError as exc:
                raise ConfigError(f"{path}.keypress_format", str(exc)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class QrConfig:
    """``[reader.qr]`` (accessd/readers/qr.py): a QR scanner beside the card reader; off
    while neither ``port`` nor ``evdev`` is set."""

    port: str | None = opt(None, expect="a serial device or pyserial URL")
    evdev: str | None = opt(None, expect="an absolute path", check=_abs_path)
    baud: int = opt(9600, choices=(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200))
    terminator: str = opt("\r", expect="1–4 characters ending a scan (\"\\r\", \"\\n\", \"\\r\\n\")",
                          check=lambda v: None if 1 <= len(str(v)) <= 4 and str(v).isascii() else "expected 1–4 ASCII characters")
    max_length: int = opt(512, expect="a number of bytes", range=(1, 7089))
    grab: bool = opt(True)
    id: str = opt("qr", expect="a reader name", check=lambda v: None if re.fullmatch(r"[\w.-]{1,32}", str(v)) else "expected 1–32 letters, digits, '.', '-' or '_'")

    @property
    def enabled(self) -> bool:
        return self.port is not None or self.evdev is not None

    def check(self, path: str) -> None:
        if self.port is not None and self.evdev is not None:
            raise ConfigError(f"{path}.evdev", "set port (a serial scanner) or evdev (a HID scanner), not both")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderConfig:
    protocol: str = opt("none", choices=("osdp", "wiegand", "none"))
    id: str = opt("reader1", expect="a reader name", check=lambda v: None if re.fullmatch(r"[\w.-]{1,32}", str(v)) else "expected 1–32 letters, digits, '.', '-' or '_'")
    osdp: OsdpConfig = opt(factory=OsdpConfig)
    wiegand: WiegandConfig = opt(factory=WiegandConfig)
    qr: QrConfig = opt(factory=QrConfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorConfig:
    relay_pin: int = opt(22, expect="a BCM GPIO number", range=(0, 53))
    normal_state: str = opt("open", choices=("open", "closed"))
    access_time: float = opt(7.0, expect="a number of seconds", range=(1, 3600))
    contact_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    rex_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    open_too_long: float = opt(30.0, expect="a number of seconds", range=(1, 3600))
    # door and I/O (accessd/doorctl.py; README door section)
    relay_active_high: bool = opt(True)
    tamper_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    contact_normal_state: str = opt("closed", choices=("open", "closed"))
    rex_normal_state: str = opt("open", choices=("open", "closed"))
    tamper_normal_state: str = opt("closed", choices=("open", "closed"))
    debounce: float = opt(0.05, expect="a number of seconds", range=(0, 1))
    rex_unlocks: bool = opt(True)
    rex_shunt: float | None = opt(None, expect="a number of seconds (default: access_time)", range=(0, 3600))
    relock_on_open: bool = opt(False)
    prealarm: float = opt(0.0, expect="a number of seconds before held_open (0: none)", range=(0, 3600))
    watchdog_grace: float = opt(2.0, expect="a number of seconds", range=(0.5, 60))

    def check(self, path: str) -> None:
        if self.prealarm and self.prealarm >= self.open_too_long:
            raise ConfigError(f"{path}.prealarm", f"expected fewer seconds than open_too_long ({self.open_too_long:g}), got {self.prealarm:g}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessConfig:
    pin_length: int = opt(6, expect="a number of digits for --generate-pin", range=(4, 16))
    pin_timeout: float = opt(10.0, expect="a number of seconds to enter the PIN after the card", range=(1, 300))
    card_and_pin: bool = opt(True)  # a holder with a card and a PIN must present both
    lockout_attempts: int = opt(5, expect="a number of failed PINs/unknown credentials (0: never lock out)", range=(0, 1000))
    lockout_window: float = opt(60.0, expect="a number of seconds", range=(1, 86400))
    lockout_duration: float = opt(300.0, expect="a number of seconds", range=(1, 86400))
    latest_size: int = opt(10, expect="a number of credentials", range=(1, 1000))
    duress: str = opt("none", choices=("none", "last_digit_plus_one"))  # a duress PIN grants and raises alarm.duress
    # anti-passback over readers with a direction
    passback: str = opt("off", choices=("off", "soft", "hard"))
    passback_reset: float = opt(0.0, expect="a number of seconds (0: no timed reset)", range=(0, 7 * 86400))
    passback_daily: str | None = opt(None, expect="a time HH:MM", check=lambda v: None if re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(v)) else "expected a time HH:MM")
    directions: dict[str, str] = opt(factory=dict, choices=("in", "out"))
    unsynced: str = opt("allow", choices=("allow", "deny"))  # schedule-limited holders while the clock is unsynchronised
    upstream: str = opt("none", choices=("none", "fake"))
    upstream_timeout: float = opt(2.0, expect="a number of seconds", range=(0.1, 30))
    upstream_fake_grants: list[str] = opt(factory=list, expect="credential keys such as card:26:0318601, pin:1234, qr:TEXT",
                                          check=lambda v: None if _CREDENTIAL_KEY.fullmatch(str(v)) else
                                          "expected card:<bit length>:<HEX>, pin:<digits> or qr:<text>")


@dataclass(frozen=True, slots=True, kw_only=True)
class InputConfig:
    pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    normal_state: str = opt(expect="\"open\" or \"closed\", the circuit at rest", choices=("open", "closed"))  # required: a guess would invert the alarm
    debounce: float | None = opt(None, expect="a number of seconds (default: door.debounce)", range=(0, 5))
    # a supervised (end-of-line) input: an ADC channel instead of a pin
    adc: str | None = opt(None, choices=("MCP3008", "MCP3208"))
    channel: int = opt(0, expect="an ADC channel", range=(0, 7))
    spi_device: int = opt(0, expect="an SPI chip select (0: CE0, 1: CE1)", range=(0, 1))
    thresholds: list[float] = opt(factory=lambda: [0.25, 0.58, 0.83], expect="a ratio of the reference voltage", range=(0, 1))
    poll_interval: float = opt(0.05, expect="a number of seconds", range=(0.005, 5))

    def check(self, path: str) -> None:
        if (self.pin is None) == (self.adc is None):
            raise ConfigError(path, "an input needs either pin (a digital input) or adc and channel (a supervised input), not both")
        t = self.thresholds
        if len(t) != 3 or not 0 < t[0] < t[1] < t[2] < 1:
            raise ConfigError(f"{path}.thresholds", f"expected three increasing ratios between 0 and 1 (short_below, closed_below, open_below), got {_show(t)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FormatConfig:
    name: str = opt(expect="a format name", check=lambda v: None if re.fullmatch(r"[A-Za-z][\w-]{0,31}", str(v)) else "expected a name of letters, digits, '-' or '_'")
    bit_length: int = opt(expect="a number of bits", range=(1, 256))
    # positions count from 0 = the first bit on the wire (protocols/wiegand/formats.py custom_format)
    fc_position: int = opt(0, expect="a bit position", range=(0, 255))
    fc_size: int = opt(0, expect="a number of bits (0: no facility code)", range=(0, 64))
    cn_position: int = opt(1, expect="a bit position", range=(0, 255))
    cn_size: int = opt(expect="a number of bits", range=(1, 128))
    start_parity: str = opt("None", choices=("None", "Even", "Odd", "Fix0", "Fix1"))
    start_span: list[int] | None = opt(None, expect="a bit position", range=(0, 255))  # [first, last]
    stop_parity: str = opt("None", choices=("None", "Even", "Odd", "Fix0", "Fix1"))
    stop_span: list[int] | None = opt(None, expect="a bit position", range=(0, 255))  # [first, last]

    def check(self, path: str) -> None:
        from accessd.protocols.wiegand.errors import FormatDefinitionError
        from accessd.protocols.wiegand.formats import custom_format

        for key in ("start_span", "stop_span"):
            span = getattr(self, key)
            if span is not None and len(span) != 2:
                raise ConfigError(f"{path}.{key}", f"expected [first, last], got {span}")
        try:
            custom_format(**{f.name: getattr(self, f.name) for f in fields(self)})
        except FormatDefinitionError as exc:
            raise ConfigError(path, str(exc)) from None


_SCHEDULE_NAME = re.compile(r"[\w.-]{1,64}", re.ASCII)


def _name_check(kind: str):
    return lambda v: None if _SCHEDULE_NAME.fullmatch(str(v)) else f"expected the name of a [{kind}.NAME] table"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleConfig:
    """``[schedules.NAME]`` (accessd/access/schedule.py): in force when a weekly or dated
    interval holds, except on the exception days and the named holiday lists' days."""

    weekly: list[str] = opt(factory=list, expect="intervals such as \"Mon-Fri 07:00-19:00\"")
    dates: list[str] = opt(factory=list, expect="dates such as \"2026-12-24 08:00-12:00\" or \"2026-07-01..2026-07-31\"")
    exceptions: list[str] = opt(factory=list, expect="dates such as \"2026-12-31\", \"12-24..12-26\"")
    holidays: list[str] = opt(factory=list, expect="holiday list names", check=_name_check("holidays"))
    valid_from: str | None = opt(None, expect="a date YYYY-MM-DD")
    valid_to: str | None = opt(None, expect="a date YYYY-MM-DD")
    ical: str | None = opt(None, expect="an absolute path", check=_abs_path)  # an .ics file's VEVENTs (RRULE)


@dataclass(frozen=True, slots=True, kw_only=True)
class HolidaysConfig:
    dates: list[str] = opt(factory=list, expect="dates YYYY-MM-DD, yearly MM-DD or ranges FIRST..LAST")


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConfig:
    schedules: list[str] = opt(factory=list, expect="schedule names", check=_name_check("schedules"))
    responder: bool = opt(False)  # admitted in lockdown


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputConfig:
    """``[outputs.NAME]``: an auxiliary output (siren, light, a second relay), wired like the lock relay."""

    pin: int = opt(expect="a BCM GPIO number", range=(0, 53))
    normal_state: str = opt("open", choices=("open", "closed"))
    active_high: bool = opt(True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PulseConfig:
    output: str = opt(expect="an [outputs.NAME]")
    seconds: float = opt(1.0, expect="a number of seconds", range=(0.05, 86400))


_RULE_EVENT = re.compile(r"rule(\.[a-z_]+)+")


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleConfig:
    """``[[rules]]`` (accessd/rules/engine.py)."""

    name: str = opt(expect="a rule name", check=_name_check("rules"))
    on: str | None = opt(None, expect="an event type glob such as \"access.granted\"")
    match: dict[str, str] = opt(factory=dict, expect="a field value as text (\"3\", \"true\")")
    schedule: str | None = opt(None, expect="a schedule name")
    holder_condition: str | None = opt(None, expect="a key of the holder's event conditions")
    pulse: PulseConfig | None = opt(None)
    unlock: float | None = opt(None, expect="a number of seconds", range=(1, 3600))
    publish: str | None = opt(None, expect="an event type rule.NAME", check=lambda v: None if _RULE_EVENT.fullmatch(str(v)) else "expected an event type rule.NAME")


_SCHEDULED_MODES = ("locked", "unlocked", "card_and_pin", "card_only", "pin_only")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeEntryConfig:
    schedule: str = opt(expect="a schedule name", check=_name_check("schedules"))
    mode: str = opt(expect="a door mode", choices=_SCHEDULED_MODES)
    first_card: bool = opt(False)  # unlocked only after a valid credential in the period

    def check(self, path: str) -> None:
        if self.first_card and self.mode != "unlocked":
            raise ConfigError(f"{path}.first_card", f"first_card applies to mode \"unlocked\", not {_show(self.mode)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModesConfig:
    """``[modes]`` (accessd/door/modes.py): the door's mode by schedule."""

    default: str = opt("locked", choices=_SCHEDULED_MODES)
    scheduled: list[ModeEntryConfig] = opt(factory=list)
    lockdown_input: str | None = opt(None, expect="an input name")  # active: lockdown, inactive: lifted


def _name(value: object) -> str | None:
    return None if re.fullmatch(r"[\w.-]{1,64}", str(value)) else "expected 1–64 letters, digits, '.', '-' or '_'"


def _ed25519_hex(value: object) -> str | None:
    return None if re.fullmatch(r"[0-9A-Fa-f]{64}", str(value)) else "expected an Ed25519 public key as 64 hexadecimal digits"


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConfig:
    """The fleet link (accessd/fleet/mqtt.py); off while ``host`` is not set."""

    host: str | None = opt(None, expect="a broker host name or address")
    port: int = opt(1883, expect="a TCP port", range=(1, 65535))
    tls_ca: str | None = opt(None, expect="an absolute path", check=_abs_path)
    tls_cert: str | None = opt(None, expect="an absolute path", check=_abs_path)
    tls_key: str | None = opt(None, expect="an absolute path", check=_abs_path)
    username: str | None = opt(None, expect="a user name")
    password_file: str | None = opt(None, expect="an absolute path", check=_abs_path)
    keepalive: int = opt(30, expect="a number of seconds", range=(5, 3600))
    device_id: str | None = opt(None, expect="a device name (default: the host name)", check=_name)
    topic_prefix: str | None = opt(None, expect="a topic prefix (default: accessd/<device_id>)",
                                   check=lambda v: None if v and not set("+#") & set(str(v)) and not str(v).endswith("/") else "expected a topic without wildcards or a trailing /")
    publish: list[str] = opt(factory=lambda: ["*"], expect="event type globs")
    qos: int = opt(1, choices=(0, 1, 2))
    qos_by_type: dict[str, int] = opt(factory=dict, expect="a QoS for the events of this type glob", range=(0, 2))
    site_public_key: str | None = opt(None, check=_ed25519_hex)
    command_window: float = opt(60.0, expect="a number of seconds a signed command stays valid", range=(5, 3600))
    homeassistant: bool = opt(True)
    batch: int = opt(500, expect="a number of events read from the log at once", range=(1, 10_000))
    max_inflight: int = opt(200, expect="a number of unacknowledged events", range=(1, 65_535))

    def check(self, path: str) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(f"{path}.tls_cert", "a client certificate needs both tls_cert and tls_key")
        if self.password_file is not None and self.username is None:
            raise ConfigError(f"{path}.password_file", "a password needs mqtt.username")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    daemon: DaemonConfig = opt(factory=DaemonConfig)
    reader: ReaderConfig = opt(factory=ReaderConfig)
    door: DoorConfig = opt(factory=DoorConfig)
    access: AccessConfig = opt(factory=AccessConfig)
    inputs: dict[str, InputConfig] = opt(factory=dict)
    formats: list[FormatConfig] = opt(factory=list)
    schedules: dict[str, ScheduleConfig] = opt(factory=dict)
    holidays: dict[str, HolidaysConfig] = opt(factory=dict)
    groups: dict[str, GroupConfig] = opt(factory=dict)
    modes: ModesConfig = opt(factory=ModesConfig)
    outputs: dict[str, OutputConfig] = opt(factory=dict)
    rules: list[RuleConfig] = opt(factory=list)
    mqtt: MqttConfig = opt(factory=MqttConfig)

    def check(self, path: str) -> None:
        _check_pins(self)
        _check_wiegand_names(self)
        from datetime import UTC

        book = self.schedule_book(UTC)
        seen: set[str] = set()
        for i, r in enumerate(self.rules):
            if r.name in seen:
                raise ConfigError(f"rules[{i}].name", f"two rules are named {_show(r.name)}")
            seen.add(r.name)
            if r.schedule is not None and r.schedule not in book.schedules:
                raise ConfigError(f"rules[{i}].schedule", f"no [schedules.{r.schedule}] table, got {_show(r.schedule)}")
            if r.pulse is not None and r.pulse.output not in self.outputs:
                raise ConfigError(f"rules[{i}].pulse.output", f"no [outputs.{r.pulse.output}] table, got {_show(r.pulse.output)}")
        li = self.modes.lockdown_input
        if li is not None and li not in self.inputs and li not in ("contact", "rex", "tamper"):
            raise ConfigError("modes.lockdown_input", f"no such input (an [inputs.NAME] or tamper), got {_show(li)}")
        for i, entry in enumerate(self.modes.scheduled):
            if entry.schedule not in book.schedules:
                raise ConfigError(f"modes.scheduled[{i}].schedule", f"no [schedules.{entry.schedule}] table, got {_show(entry.schedule)}")

    def schedule_book(self, tz):
        """The schedules and groups, evaluated in ``tz``; every problem names its key."""
        from accessd.access.schedule import Group, HolidayList, Schedule, ScheduleBook, ScheduleError

        for kind, table in (("schedules", self.schedules), ("holidays", self.holidays), ("groups", self.groups)):
            for name in table:
                if not _SCHEDULE_NAME.fullmatch(name):
                    raise ConfigError(f"{kind}.{name}", "expected a name of letters, digits, '.', '-' or '_'")
        holidays = {}
        for name, h in self.holidays.items():
            try:
                holidays[name] = HolidayList.parse(name, h.dates)
            except ScheduleError as exc:
                raise ConfigError(f"holidays.{name}.dates", f"{exc.detail} in {exc.text!r}") from None
        schedules = {}
        for name, c in self.schedules.items():
            for i, h in enumerate(c.holidays):
                if h not in holidays:
                    raise ConfigError(f"schedules.{name}.holidays[{i}]", f"no [holidays.{h}] table, got {_show(h)}")
            events = ()
            if c.ical is not None:
                from accessd.access.ical import IcalError, parse_ical

                try:
                    events = parse_ical(Path(c.ical).read_bytes(), tz)
                except OSError as exc:
                    raise ConfigError(f"schedules.{name}.ical", f"cannot read {c.ical}: {exc.strerror}") from None
                except IcalError as exc:
                    raise ConfigError(f"schedules.{name}.ical", f"{c.ical}: {exc}") from None
            try:
                schedules[name] = Schedule.parse(name, tz, weekly=c.weekly, dates=c.dates, exceptions=c.exceptions,
                                                 holidays=[holidays[h] for h in c.holidays], first=c.valid_from,
                                                 last=c.valid_to, events=events)
            except ScheduleError as exc:
                key = next((k for k in ("weekly", "dates", "exceptions") if exc.text in getattr(c, k)), None)
                where = f"schedules.{name}.{key}" if key else f"schedules.{name}"
                raise ConfigError(where, f"{exc.detail} in {exc.text!r}") from None
        groups = {}
        for name, g in self.groups.items():
            for i, sname in enumerate(g.schedules):
                if sname not in schedules:
                    raise ConfigError(f"groups.{name}.schedules[{i}]", f"no [schedules.{sname}] table, got {_show(sname)}")
            groups[name] = Group(name=name, schedules=tuple(g.schedules), responder=g.responder)
        return ScheduleBook(schedules, groups)

    def format_library(self):
        """The built-in card formats plus the custom ``[[formats]]``."""
        from accessd.protocols.wiegand.errors import FormatDefinitionError
        from accessd.protocols.wiegand.formats import LIBRARY, custom_format

        if not self.formats:
            return LIBRARY
        try:
            return LIBRARY.with_formats(custom_format(**{f.name: getattr(c, f.name) for f in fields(c)}) for c in self.formats)
        except FormatDefinitionError as exc:
            raise ConfigError("formats", str(exc)) from None


def _check_wiegand_names(cfg: Config) -> None:
    """Each card reader's format, preference and convert_to name built-in or [[formats]] formats."""
    from accessd.protocols.wiegand.errors import UnknownFormat

    lib = cfg.format_library()
    for section in ("wiegand", "osdp"):
        w = getattr(cfg.reader, section)
        for key, names in (("format", [] if w.format.lower() == "auto" else [w.format]), ("preference", w.preference),
                           ("convert_to", [w.convert_to] if w.convert_to else [])):
            for name in names:
                try:
                    lib.canonical(name)
                except UnknownFormat as exc:
                    raise ConfigError(f"reader.{section}.{key}", str(exc)) from None
            if key == "convert_to" and names and names[0].casefold() == "raw":
                raise ConfigError(f"reader.{section}.convert_to", "expected a card format to convert to, got \"Raw\"")


def _check_pins(cfg: Config) -> None:
    """Every GPIO line is used once across relay, inputs, Wiegand D0/D1, LED, beeper, SPI."""
    door = cfg.door
    used: list[tuple[str, int]] = [("door.relay_pin", door.relay_pin)]
    for key in ("contact_pin", "rex_pin", "tamper_pin"):
        if getattr(door, key) is not None:
            used.append((f"door.{key}", getattr(door, key)))
    if cfg.reader.protocol in ("wiegand", "osdp"):  # D0/D1 and every *_pin (LEDs, beeper, RS485 DE …)
        section = getattr(cfg.reader, cfg.reader.protocol)
        for f in fields(section):
            value = getattr(section, f.name)
            if (f.name in ("d0", "d1") or f.name.endswith("_pin")) and isinstance(value, int) and not isinstance(value, bool):
                used.append((f"reader.{cfg.reader.protocol}.{f.name}", value))
    for name, inp in cfg.inputs.items():
        if inp.pin is not None:
            used.append((f"inputs.{name}.pin", inp.pin))
    for name, out in cfg.outputs.items():
        used.append((f"outputs.{name}.pin", out.pin))
    spi = [inp for inp in cfg.inputs.values() if inp.adc is not None]
    if spi:
        used += [("SPI0 SCLK", 11), ("SPI0 MOSI", 10), ("SPI0 MISO", 9)]
        for dev in sorted({inp.spi_device for inp in spi}):
            used.append((f"SPI0 CE{dev}", (8, 7)[dev]))
    seen: dict[int, str] = {}
    for key, pin in used:
        if pin in seen:
            where = key if "." in key else seen[pin]
            other = seen[pin] if "." in key else key
            raise ConfigError(where, f"GPIO {pin} is already used by {other}; every pin may be used once")
        seen[pin] = key
    for name in ("contact", "rex", "tamper"):
        if name in cfg.inputs and getattr(door, f"{name}_pin") is not None:
            raise ConfigError(f"inputs.{name}", f"the door's {name} is set twice: remove door.{name}_pin or this table")
    channels = [(inp.spi_device, inp.channel) for inp in spi]
    for (name, inp) in cfg.inputs.items():
        if inp.adc is not None and channels.count((inp.spi_device, inp.channel)) > 1:
            raise ConfigError(f"inputs.{name}.channel", f"ADC channel {inp.channel} on CE{inp.spi_device} is used by two inputs")


def _show(value: object) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _describe(meta: dict, default: str) -> str:
    text = meta.get("expect") or default
    rng = meta.get("range")
    if rng:
        lo, hi = (int(x) if float(x).is_integer() else x for x in rng)
        text += f" {lo:,}–{hi:,}".replace(",", "_") if hi >= 10_000 else f" {lo}–{hi}"
    return text


def _convert(tp: typing.Any, value: object, path: str, meta: dict) -> object:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [t for t in typing.get_args(tp) if t is not type(None)]
        return _convert(inner[0], value, path, meta)
    if is_dataclass(tp):
        return load_section(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_show(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{path}[{i}]", meta) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {_show(value)}")
        _, item = typing.get_args(tp)
        return {k: _convert(item, v, f"{path}.{k}", meta) for k, v in value.items()}
    choices = meta.get("choices")
    if choices is not None:
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            allowed = ", ".join(_show(c) for c in choices)
            raise ConfigError(path, f"expected one of {allowed}, got {_show(value)}")
        return value
    if tp is bool:
        ok = isinstance(value, bool)
        expect = "true or false"
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        expect = _describe(meta, "an integer")
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        expect = _describe(meta, "a number")
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
        expect = meta.get("expect") or "a string"
    else:  # pragma: no cover - a schema mistake, not a user error
        raise TypeError(f"{path}: unsupported config type {tp!r}")
    if not ok:
        raise ConfigError(path, f"expected {expect}, got {_show(value)}")
    rng = meta.get("range")
    if rng and not rng[0] <= value <= rng[1]:
        raise ConfigError(path, f"expected {expect}, got {_show(value)}")
    check = meta.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(path, f"{problem}, got {_show(value)}")
    return value


def load_section(cls: type, data: object, path: str = "") -> typing.Any:
    """Build section ``cls`` from a TOML table, naming the key of every problem."""
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a table, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            allowed = ", ".join(known) or "none"
            raise ConfigError(f"{path}.{key}" if path else key, f"unknown key (allowed here: {allowed})")
    kwargs = {}
    for name, f in known.items():
        key_path = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key_path, dict(f.metadata))
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(key_path, f"required key is missing ({_describe(dict(f.metadata), 'a value')})")
    section = cls(**kwargs)
    check = getattr(section, "check", None)
    if check is not None:
        check(path)
    return section


def parse_config(data: dict) -> Config:
    return load_section(Config, data)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML file; every problem is a :class:`ConfigError`."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read the config file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), f"not valid TOML: {exc}") from exc
    return parse_config(data)
