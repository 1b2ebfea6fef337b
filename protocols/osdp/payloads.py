"""OSDP command and reply payloads: construct layouts behind typed dataclasses.

Every payload is a frozen, slotted, keyword-only dataclass with ``CODE``,
``build() -> bytes`` and ``parse(data) -> instance``; construct containers never
leave this module.  ``parse_command(code, data)`` / ``parse_reply(code, data)``
dispatch on the code (commands and replies share code space: 0x76 is CHLNG as a
command and CCRYPT as a reply).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from construct import (
    Bytes,
    ConstructError,
    GreedyBytes,
    GreedyRange,
    Int8ul,
    Int16ul,
    Int32ul,
    Struct,
)

from .errors import PayloadError


def _compiled(s):
    try:
        return s.compile()
    except Exception:  # pragma: no cover - construct cannot compile every layout
        return s


NAK_REASONS = {
    0: "no error",
    1: "message check character(s) error",
    2: "command length error",
    3: "unknown command code",
    4: "unexpected sequence number",
    5: "security block not supported",
    6: "encrypted communication required",
    7: "BIO_TYPE not supported",
    8: "BIO_FORMAT not supported",
    9: "unable to process command record",
}

COMMANDS: dict[int, type[Payload]] = {}
REPLIES: dict[int, type[Payload]] = {}


def _byte(name: str, value: int, lo: int = 0, hi: int = 255) -> None:
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer {lo}-{hi}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload:
    CODE: ClassVar[int] = -1
    NAME: ClassVar[str] = ""
    STRUCT: ClassVar[Any] = None

    def _to_obj(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def _from_obj(cls, obj) -> Payload:
        return cls(**{f.name: obj[f.name] for f in fields(cls)})

    def build(self) -> bytes:
        if self.STRUCT is None:
            return b""
        return self.STRUCT.build(self._to_obj())

    @classmethod
    def parse(cls, data: bytes) -> Payload:
        data = bytes(data)
        if cls.STRUCT is None:
            if data:
                raise PayloadError(cls.NAME, data, "expected no data")
            return cls()
        if cls._size is not None and len(data) != cls._size:
            raise PayloadError(cls.NAME, data, f"expected {cls._size} bytes, got {len(data)}")
        try:
            obj = cls.STRUCT.parse(data)
            consumed = len(cls.STRUCT.build(obj)) if not cls._greedy else len(data)
        except (ConstructError, ValueError, TypeError, IndexError, struct.error) as exc:  # compiled parsers raise struct.error
            raise PayloadError(cls.NAME, data, f"does not match the layout: {exc}") from None
        if consumed != len(data):
            raise PayloadError(cls.NAME, data, f"expected {consumed} bytes, got {len(data)}")
        try:
            return cls._from_obj(obj)
        except ValueError as exc:
            raise PayloadError(cls.NAME, data, str(exc)) from None

    _greedy: ClassVar[bool] = False
    _size: ClassVar[int | None] = None


def _register(table: dict, code: int, name: str, struct, greedy: bool):
    def deco(cls):
        cls.CODE, cls.NAME, cls._greedy = code, name, greedy
        cls.STRUCT = _compiled(struct) if struct is not None else None
        try:
            cls._size = struct.sizeof() if struct is not None else 0
        except Exception:  # variable-size layout
            cls._size = None
        table[code] = cls
        return cls
    return deco


def command(code: int, name: str, struct=None, greedy: bool = False):
    return _register(COMMANDS, code, name, struct, greedy)


def reply(code: int, name: str, struct=None, greedy: bool = False):
    return _register(REPLIES, code, name, struct, greedy)


def parse_command(code: int, data: bytes) -> Payload:
    cls = COMMANDS.get(code)
    if cls is None:
        raise PayloadError(f"0x{code:02X}", data, "unknown command code")
    return cls.parse(data)


def parse_reply(code: int, data: bytes) -> Payload:
    cls = REPLIES.get(code)
    if cls is None:
        raise PayloadError(f"0x{code:02X}", data, "unknown reply code")
    return cls.parse(data)


# --------------------------------------------------------------------------- commands


@command(0x60, "POLL")
@dataclass(frozen=True, slots=True, kw_only=True)
class Poll(Payload):
    pass


@command(0x61, "ID", Struct("reply_type" / Int8ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class IdRequest(Payload):
    reply_type: int = 0

    def __post_init__(self) -> None:
        _byte("reply_type", self.reply_type)


@command(0x62, "CAP", Struct("reply_type" / Int8ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class CapRequest(Payload):
    reply_type: int = 0

    def __post_init__(self) -> None:
        _byte("reply_type", self.reply_type)


@command(0x64, "LSTAT")
@dataclass(frozen=True, slots=True, kw_only=True)
class LocalStatusRequest(Payload):
    pass


@command(0x65, "ISTAT")
@dataclass(frozen=True, slots=True, kw_only=True)
class InputStatusRequest(Payload):
    pass


@command(0x66, "OSTAT")
@dataclass(frozen=True, slots=True, kw_only=True)
class OutputStatusRequest(Payload):
    pass


@command(0x67, "RSTAT")
@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderStatusRequest(Payload):
    pass


_OUT_REC = Struct("output" / Int8ul, "control" / Int8ul, "timer" / Int16ul)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRecord:
    """One osdp_OUT record: control 0 nop, 1/2 permanent off/on (abort timer),
    3/4 permanent off/on (allow timer), 5/6 temporary off/on for ``timer`` x 100 ms."""

    output: int
    control: int
    timer: int = 0

    def __post_init__(self) -> None:
        _byte("output", self.output)
        _byte("control", self.control, 0, 6)
        _byte("timer", self.timer, 0, 0xFFFF)


@command(0x68, "OUT", GreedyRange(_OUT_REC), greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class Output(Payload):
    records: tuple[OutputRecord, ...]

    def __post_init__(self) -> None:
        if not self.records:
            raise ValueError("osdp_OUT needs at least one record")

    def _to_obj(self):
        return [dict(output=r.output, control=r.control, timer=r.timer) for r in self.records]

    @classmethod
    def _from_obj(cls, obj):
        return cls(records=tuple(OutputRecord(output=r.output, control=r.control, timer=r.timer) for r in obj))

    @classmethod
    def parse(cls, data: bytes) -> Payload:
        if len(data) % 4:
            raise PayloadError(cls.NAME, data, f"length {len(data)} is not a multiple of 4")
        return super(Output, cls).parse.__func__(cls, data)


LED_COLORS = {"black": 0, "red": 1, "green": 2, "amber": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 7}

_LED_REC = Struct(
    "reader" / Int8ul,
    "led" / Int8ul,
    "temp_control" / Int8ul,
    "temp_on_time" / Int8ul,
    "temp_off_time" / Int8ul,
    "temp_on_color" / Int8ul,
    "temp_off_color" / Int8ul,
    "temp_timer" / Int16ul,
    "perm_control" / Int8ul,
    "perm_on_time" / Int8ul,
    "perm_off_time" / Int8ul,
    "perm_on_color" / Int8ul,
    "perm_off_color" / Int8ul,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedRecord:
    """One 14-byte osdp_LED record.  Times in units of 100 ms; temp_timer too.

    temp_control: 0 nop, 1 cancel temporary, 2 set temporary (and start timer);
    perm_control: 0 nop, 1 set permanent.
    """

    reader: int = 0
    led: int = 0
    temp_control: int = 0
    temp_on_time: int = 0
    temp_off_time: int = 0
    temp_on_color: int = 0
    temp_off_color: int = 0
    temp_timer: int = 0
    perm_control: int = 0
    perm_on_time: int = 0
    perm_off_time: int = 0
    perm_on_color: int = 0
    perm_off_color: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "temp_timer":
                _byte(f.name, self.temp_timer, 0, 0xFFFF)
            else:
                _byte(f.name, getattr(self, f.name))
        _byte("temp_control", self.temp_control, 0, 2)
        _byte("perm_control", self.perm_control, 0, 1)


@command(0x69, "LED", GreedyRange(_LED_REC), greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class Led(Payload):
    records: tuple[LedRecord, ...]

    def __post_init__(self) -> None:
        if not self.records:
            raise ValueError("osdp_LED needs at least one record")

    def _to_obj(self):
        return [{f.name: getattr(r, f.name) for f in fields(LedRecord)} for r in self.records]

    @classmethod
    def _from_obj(cls, obj):
        return cls(records=tuple(LedRecord(**{f.name: r[f.name] for f in fields(LedRecord)}) for r in obj))

    @classmethod
    def parse(cls, data: bytes) -> Payload:
        if len(data) % 14:
            raise PayloadError(cls.NAME, data, f"length {len(data)} is not a multiple of 14")
        return super(Led, cls).parse.__func__(cls, data)


@command(0x6A, "BUZ", Struct("reader" / Int8ul, "tone" / Int8ul, "on_time" / Int8ul, "off_time" / Int8ul, "count" / Int8ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class Buzzer(Payload):
    """tone 0 none, 1 off, 2 default tone; times in 100 ms; count 0 = forever."""

    reader: int = 0
    tone: int = 2
    on_time: int = 1
    off_time: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            _byte(f.name, getattr(self, f.name))
        _byte("tone", self.tone, 0, 2)


@command(0x6B, "TEXT")  # layout _TEXT below: its length byte is derived, not a field
@dataclass(frozen=True, slots=True, kw_only=True)
class Text(Payload):
    """command 1 permanent no wrap, 2 permanent wrap, 3 temporary no wrap, 4 temporary wrap."""

    reader: int = 0
    command: int = 1
    temp_time: int = 0
    row: int = 1
    column: int = 1
    text: str = ""

    def __post_init__(self) -> None:
        for name in ("reader", "temp_time", "row", "column"):
            _byte(name, getattr(self, name))
        _byte("command", self.command, 1, 4)
        raw = self.text.encode("ascii", "strict") if self.text.isascii() else None
        if raw is None or not all(0x20 <= b < 0x7F for b in raw):
            raise ValueError(f"text must be printable ASCII, got {self.text!r}")
        if not 1 <= len(raw) <= 32:
            raise ValueError(f"text must be 1-32 characters, got {len(raw)}")


_TEXT = _compiled(Struct("reader" / Int8ul, "command" / Int8ul, "temp_time" / Int8ul, "row" / Int8ul,
                         "column" / Int8ul, "length" / Int8ul, "text" / Bytes(lambda this: this.length)))


def _text_build(self: Text) -> bytes:
    raw = self.text.encode("ascii")
    return _TEXT.build(dict(reader=self.reader, command=self.command, temp_time=self.temp_time, row=self.row,
                            column=self.column, length=len(raw), text=raw))


def _text_parse(cls, data: bytes) -> Text:
    data = bytes(data)
    if len(data) < 6:
        raise PayloadError(cls.NAME, data, f"expected at least 6 bytes, got {len(data)}")
    if 6 + data[5] != len(data):
        raise PayloadError(cls.NAME, data, f"text length {data[5]} disagrees with payload of {len(data)} bytes")
    try:
        obj = _TEXT.parse(data)
    except (ConstructError, ValueError) as exc:
        raise PayloadError(cls.NAME, data, f"does not match the layout: {exc}") from None
    if 6 + obj.length != len(data):
        raise PayloadError(cls.NAME, data, f"text length {obj.length} disagrees with payload of {len(data)} bytes")
    try:
        return cls(reader=obj.reader, command=obj.command, temp_time=obj.temp_time, row=obj.row,
                   column=obj.column, text=obj.text.decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(cls.NAME, data, str(exc)) from None


Text.build = _text_build
Text.parse = classmethod(_text_parse)


@command(0x6E, "COMSET", Struct("address" / Int8ul, "baud" / Int32ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class ComSet(Payload):
    address: int
    baud: int

    def __post_init__(self) -> None:
        _byte("address", self.address, 0, 0x7E)
        if self.baud not in (9600, 19200, 38400, 57600, 115200, 230400):
            raise ValueError(f"baud must be one of 9600/19200/38400/57600/115200/230400, got {self.baud}")


@command(0x75, "KEYSET", Struct("key_type" / Int8ul, "length" / Int8ul, "key" / Bytes(lambda this: this.length)))
@dataclass(frozen=True, slots=True, kw_only=True)
class KeySet(Payload):
    key: bytes
    key_type: int = 1

    def __post_init__(self) -> None:
        if self.key_type != 1:
            raise ValueError(f"key_type must be 1 (SCBK), got {self.key_type}")
        if len(self.key) != 16:
            raise ValueError(f"key must be 16 bytes, got {len(self.key)}")

    def _to_obj(self):
        return dict(key_type=self.key_type, length=len(self.key), key=self.key)

    def __repr__(self) -> str:  # never print key material
        return "KeySet(key=<16 bytes>)"


@command(0x76, "CHLNG", Struct("rnd_a" / Bytes(8)))
@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge(Payload):
    rnd_a: bytes

    def __post_init__(self) -> None:
        if len(self.rnd_a) != 8:
            raise ValueError(f"rnd_a must be 8 bytes, got {len(self.rnd_a)}")


@command(0x77, "SCRYPT", Struct("cryptogram" / Bytes(16)))
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerCryptogram(Payload):
    cryptogram: bytes

    def __post_init__(self) -> None:
        if len(self.cryptogram) != 16:
            raise ValueError(f"cryptogram must be 16 bytes, got {len(self.cryptogram)}")


@command(0x7B, "ACURXSIZE", Struct("size" / Int16ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class AcuRxSize(Payload):
    size: int

    def __post_init__(self) -> None:
        _byte("size", self.size, 64, 0xFFFF)


@command(0xA7, "KEEPACTIVE", Struct("time_ms" / Int16ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class KeepActive(Payload):
    time_ms: int

    def __post_init__(self) -> None:
        _byte("time_ms", self.time_ms, 0, 0xFFFF)


@command(0xA2, "ABORT")
@dataclass(frozen=True, slots=True, kw_only=True)
class Abort(Payload):
    pass


@command(0x80, "MFG", Struct("vendor" / Bytes(3), "data" / GreedyBytes), greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class Manufacturer(Payload):
    vendor: bytes
    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.vendor) != 3:
            raise ValueError(f"vendor code must be 3 bytes, got {len(self.vendor)}")


# --------------------------------------------------------------------------- replies


@reply(0x40, "ACK")
@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(Payload):
    pass


@reply(0x41, "NAK", Struct("code" / Int8ul, "data" / GreedyBytes), greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class NakReply(Payload):
    code: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _byte("code", self.code)

    @property
    def reason(self) -> str:
        return NAK_REASONS.get(self.code, "unknown")


@reply(0x45, "PDID", Struct("vendor" / Bytes(3), "model" / Int8ul, "version" / Int8ul, "serial" / Int32ul,
                            "fw_major" / Int8ul, "fw_minor" / Int8ul, "fw_build" / Int8ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class PdId(Payload):
    vendor: bytes
    model: int
    version: int
    serial: int
    fw_major: int
    fw_minor: int
    fw_build: int

    def __post_init__(self) -> None:
        if len(self.vendor) != 3:
            raise ValueError(f"vendor code must be 3 bytes, got {len(self.vendor)}")
        for name in ("model", "version", "fw_major", "fw_minor", "fw_build"):
            _byte(name, getattr(self, name))
        _byte("serial", self.serial, 0, 0xFFFFFFFF)

    def to_json(self) -> dict:
        return dict(vendor=self.vendor.hex(), model=self.model, version=self.version, serial=self.serial,
                    firmware=f"{self.fw_major}.{self.fw_minor}.{self.fw_build}")


CAP_NAMES = {
    1: "contact_status_monitoring", 2: "output_control", 3: "card_data_format", 4: "reader_led_control",
    5: "reader_audible_output", 6: "reader_text_output", 7: "time_keeping", 8: "check_character_support",
    9: "communication_security", 10: "receive_buffer_size", 11: "largest_combined_message_size",
    12: "smart_card_support", 13: "readers", 14: "biometrics", 15: "secure_pin_entry", 16: "osdp_version",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    function: int
    compliance: int
    count: int

    def __post_init__(self) -> None:
        for f in fields(self):
            _byte(f.name, getattr(self, f.name))


@reply(0x46, "PDCAP", GreedyRange(Struct("function" / Int8ul, "compliance" / Int8ul, "count" / Int8ul)), greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class PdCap(Payload):
    capabilities: tuple[Capability, ...]

    def _to_obj(self):
        return [dict(function=c.function, compliance=c.compliance, count=c.count) for c in self.capabilities]

    @classmethod
    def _from_obj(cls, obj):
        return cls(capabilities=tuple(Capability(function=c.function, compliance=c.compliance, count=c.count)
                                      for c in obj))

    @classmethod
    def parse(cls, data: bytes) -> Payload:
        if len(data) % 3:
            raise PayloadError(cls.NAME, data, f"length {len(data)} is not a multiple of 3")
        return super(PdCap, cls).parse.__func__(cls, data)

    def get(self, function: int) -> Capability | None:
        for c in self.capabilities:
            if c.function == function:
                return c
        return None

    @property
    def secure_channel(self) -> bool:
        c = self.get(9)
        return c is not None and c.compliance & 0x01 == 1

    @property
    def crc(self) -> bool:
        c = self.get(8)
        return c is not None and c.compliance & 0x01 == 1


@reply(0x48, "LSTATR", Struct("tamper" / Int8ul, "power" / Int8ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class LocalStatus(Payload):
    tamper: int
    power: int

    def __post_init__(self) -> None:
        _byte("tamper", self.tamper, 0, 1)
        _byte("power", self.power, 0, 1)


def _status_reply(code: int, name: str):
    @reply(code, name, Struct("status" / GreedyBytes), greedy=True)
    @dataclass(frozen=True, slots=True, kw_only=True)
    class _S(Payload):
        status: bytes

    _S.__name__ = _S.__qualname__ = name
    return _S


InputStatus = _status_reply(0x49, "ISTATR")
OutputStatus = _status_reply(0x4A, "OSTATR")
ReaderStatus = _status_reply(0x4B, "RSTATR")


@reply(0x50, "RAW", Struct("reader" / Int8ul, "format" / Int8ul, "bit_count" / Int16ul, "data" / GreedyBytes),
       greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class RawCard(Payload):
    """Card data: ``data`` holds ``bit_count`` bits MSB first, left-justified.

    format 0 = raw unspecified, 1 = raw Wiegand.
    """

    reader: int
    format: int
    bit_count: int
    data: bytes

    def __post_init__(self) -> None:
        _byte("reader", self.reader)
        _byte("format", self.format, 0, 1)
        if not 1 <= self.bit_count <= 0xFFFF:
            raise ValueError(f"bit_count must be 1-65535, got {self.bit_count}")
        need = (self.bit_count + 7) // 8
        if len(self.data) != need:
            raise ValueError(f"{self.bit_count} bits need {need} bytes, got {len(self.data)}")

    @property
    def bits(self) -> str:
        """The card bits in wire order (first bit sent first) as ``0``/``1``."""
        return format(int.from_bytes(self.data, "big"), f"0{len(self.data) * 8}b")[: self.bit_count]

    @classmethod
    def from_bits(cls, bits: str, *, reader: int = 0, format: int = 1) -> RawCard:
        n = len(bits)
        padded = bits + "0" * (-n % 8)
        return cls(reader=reader, format=format, bit_count=n,
                   data=int(padded, 2).to_bytes(len(padded) // 8, "big") if n else b"")


@reply(0x51, "FMT", Struct("reader" / Int8ul, "direction" / Int8ul, "length" / Int8ul,
                           "data" / Bytes(lambda this: this.length)))
@dataclass(frozen=True, slots=True, kw_only=True)
class FormattedCard(Payload):
    reader: int
    direction: int
    data: bytes

    def __post_init__(self) -> None:
        _byte("reader", self.reader)
        _byte("direction", self.direction, 0, 1)
        if len(self.data) > 255:
            raise ValueError("formatted card data is at most 255 characters")

    def _to_obj(self):
        return dict(reader=self.reader, direction=self.direction, length=len(self.data), data=self.data)


KEY_BYTES = {**{str(d): 0x30 + d for d in range(10)}, "*": 0x7F, "#": 0x0D}
#: Parsing also accepts ASCII ``*`` (0x2A) and ``#`` (0x23), which some readers send.
KEY_CODES = {**{v: k for k, v in KEY_BYTES.items()}, 0x2A: "*", 0x23: "#"}


@reply(0x53, "KEYPAD", Struct("reader" / Int8ul, "count" / Int8ul, "data" / Bytes(lambda this: this.count)))
@dataclass(frozen=True, slots=True, kw_only=True)
class Keypad(Payload):
    """Key presses: digits 0x30-0x39, ``*`` = 0x7F, ``#`` = 0x0D."""

    reader: int
    data: bytes

    def __post_init__(self) -> None:
        _byte("reader", self.reader)
        bad = [b for b in self.data if b not in KEY_CODES]
        if bad:
            raise ValueError(f"key code 0x{bad[0]:02X} is not a digit, * or #")
        if len(self.data) > 255:
            raise ValueError("at most 255 keys per reply")

    def _to_obj(self):
        return dict(reader=self.reader, count=len(self.data), data=self.data)

    @property
    def keys(self) -> str:
        return "".join(KEY_CODES[b] for b in self.data)

    @classmethod
    def from_keys(cls, keys: str, *, reader: int = 0) -> Keypad:
        try:
            return cls(reader=reader, data=bytes(KEY_BYTES[k] for k in keys))
        except KeyError as exc:
            raise ValueError(f"key {exc.args[0]!r} is not a digit, * or #") from None


@reply(0x54, "COM", Struct("address" / Int8ul, "baud" / Int32ul))
@dataclass(frozen=True, slots=True, kw_only=True)
class Com(Payload):
    address: int
    baud: int

    def __post_init__(self) -> None:
        _byte("address", self.address, 0, 0x7E)
        _byte("baud", self.baud, 0, 0xFFFFFFFF)


@reply(0x76, "CCRYPT", Struct("cuid" / Bytes(8), "rnd_b" / Bytes(8), "cryptogram" / Bytes(16)))
@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCryptogram(Payload):
    cuid: bytes
    rnd_b: bytes
    cryptogram: bytes

    def __post_init__(self) -> None:
        if (len(self.cuid), len(self.rnd_b), len(self.cryptogram)) != (8, 8, 16):
            raise ValueError("CCRYPT needs cUID(8), RND.B(8) and a cryptogram(16)")


@reply(0x78, "RMAC_I", Struct("rmac" / Bytes(16)))
@dataclass(frozen=True, slots=True, kw_only=True)
class InitialRMac(Payload):
    rmac: bytes

    def __post_init__(self) -> None:
        if len(self.rmac) != 16:
            raise ValueError(f"RMAC-I must be 16 bytes, got {len(self.rmac)}")


@reply(0x79, "BUSY")
@dataclass(frozen=True, slots=True, kw_only=True)
class Busy(Payload):
    pass


@reply(0x90, "MFGREP", Struct("vendor" / Bytes(3), "data" / GreedyBytes), greedy=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class ManufacturerReply(Payload):
    vendor: bytes
    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.vendor) != 3:
            raise ValueError(f"vendor code must be 3 bytes, got {len(self.vendor)}")
