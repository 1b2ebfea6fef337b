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


def _abs_path(value: object) -> str | None:
    return None if str(value).startswith("/") else "expected an absolute path"


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    socket: str = opt("/run/accessd/accessd.sock", expect="an absolute path", check=_abs_path)
    state_dir: str = opt("/var/lib/accessd", expect="an absolute path", check=_abs_path)
    pin_factory: str = opt("lgpio", choices=("lgpio", "rpigpio", "mock"))
    socket_group: str | None = opt(None, expect="a group name")
    admin_group: str | None = opt(None, expect="a group name")
    event_capacity: int = opt(50_000, expect="a number of events", range=(100, 10_000_000))
    flush_interval: float = opt(0.5, expect="a number of seconds", range=(0.01, 1.0))
    subscriber_queue: int = opt(1024, expect="a number of events", range=(16, 1_000_000))
    max_clients: int = opt(256, expect="a number of connections", range=(1, 10_000))
    max_request: int = opt(65_536, expect="a number of bytes", range=(1024, 16_777_216))
    timezone: str | None = opt(None, expect="an IANA time zone name such as Europe/Berlin")


@dataclass(frozen=True, slots=True, kw_only=True)
class OsdpConfig:
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
    trace: str | None = opt(None, expect="an absolute path", check=_abs_path)
    trace_format: str = opt("jsonl", choices=("jsonl", "pcap"))

    def check(self, path: str) -> None:
        if self.install_mode and self.scbk is None:
            raise ConfigError(f"{path}.install_mode", "install mode provisions reader.osdp.scbk, which is not set")
        every = [self.address, *self.addresses]
        if len(set(every)) != len(every):
            raise ConfigError(f"{path}.addresses", f"PD addresses must be distinct, got {every}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WiegandConfig:
    d0: int = opt(17, expect="a BCM GPIO number", range=(0, 53))
    d1: int = opt(27, expect="a BCM GPIO number", range=(0, 53))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderConfig:
    protocol: str = opt("none", choices=("osdp", "wiegand", "none"))
    id: str = opt("reader1", expect="a reader name", check=lambda v: None if re.fullmatch(r"[\w.-]{1,32}", str(v)) else "expected 1–32 letters, digits, '.', '-' or '_'")
    osdp: OsdpConfig = opt(factory=OsdpConfig)
    wiegand: WiegandConfig = opt(factory=WiegandConfig)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorConfig:
    relay_pin: int = opt(22, expect="a BCM GPIO number", range=(0, 53))
    normal_state: str = opt("open", choices=("open", "closed"))
    access_time: float = opt(7.0, expect="a number of seconds", range=(1, 3600))
    contact_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    rex_pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    open_too_long: float = opt(30.0, expect="a number of seconds", range=(1, 3600))


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessConfig:
    pin_length: int = opt(6, expect="a number of digits for --generate-pin", range=(4, 16))
    pin_timeout: float = opt(10.0, expect="a number of seconds to enter the PIN after the card", range=(1, 300))
    card_and_pin: bool = opt(True)  # a holder with a card and a PIN must present both
    lockout_attempts: int = opt(5, expect="a number of failed PINs/unknown credentials (0: never lock out)", range=(0, 1000))
    lockout_window: float = opt(60.0, expect="a number of seconds", range=(1, 86400))
    lockout_duration: float = opt(300.0, expect="a number of seconds", range=(1, 86400))
    latest_size: int = opt(10, expect="a number of credentials", range=(1, 1000))
    upstream: str = opt("none", choices=("none", "fake"))
    upstream_timeout: float = opt(2.0, expect="a number of seconds", range=(0.1, 30))
    upstream_fake_grants: list[str] = opt(factory=list, expect="credential keys such as card:26:0318601, pin:1234, qr:TEXT")


@dataclass(frozen=True, slots=True, kw_only=True)
class InputConfig:
    pin: int | None = opt(None, expect="a BCM GPIO number", range=(0, 53))
    normal_state: str = opt("closed", choices=("open", "closed"))


@dataclass(frozen=True, slots=True, kw_only=True)
class FormatConfig:
    name: str = opt(expect="a format name", check=lambda v: None if re.fullmatch(r"[A-Za-z][\w-]{0,31}", str(v)) else "expected a name of letters, digits, '-' or '_'")
    bit_length: int = opt(expect="a number of bits", range=(1, 256))


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    daemon: DaemonConfig = opt(factory=DaemonConfig)
    reader: ReaderConfig = opt(factory=ReaderConfig)
    door: DoorConfig = opt(factory=DoorConfig)
    access: AccessConfig = opt(factory=AccessConfig)
    inputs: dict[str, InputConfig] = opt(factory=dict)
    formats: list[FormatConfig] = opt(factory=list)


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
