"""Sans-IO QR scanner decoding: serial lines and HID keystrokes → QR texts.

Two kinds of scanner deliver a QR code's text:

* a **serial** scanner (RS232/USB-CDC) sends the text's bytes followed by a
  terminator (usually ``\\r``, sometimes ``\\r\\n``).  :class:`LineAssembler`
  takes bytes in any chunking and returns :class:`QrText` per line;
* a **USB HID** scanner types the text like a US keyboard and presses Enter.
  :class:`HidDecoder` takes the ``(key code, value)`` pairs of evdev's
  ``EV_KEY`` events (value 1 press, 0 release, 2 autorepeat) and returns the
  same :class:`QrText` on ``KEY_ENTER`` / ``KEY_KPENTER``.

Input that is not a usable text never raises: it becomes a :class:`QrInvalid`
event carrying the offending bytes and a ``reason`` from :data:`REASONS`:

``too_long``
    more than ``max_length`` bytes (serial) or characters (HID) before the
    terminator.  Reported as soon as the limit is passed (so a scanner whose
    suffix does not match ``terminator`` is noticed at the first scan); the
    rest of the line is dropped and decoding resyncs after the next terminator.
``not_utf8``
    a serial line that is not valid UTF-8; ``offset`` is the first bad byte.
``unknown_key``
    a HID key that is not in :data:`US_LAYOUT` (or a character key pressed
    with Ctrl/Alt/Meta held); ``detail`` names it (``KEY_F5 (63)``).  The line
    is reported at its Enter.

Empty lines (a bare terminator, the ``\\n`` of ``\\r\\n``) produce nothing.
CR and LF at either end of a serial line are stripped, so ``\\r\\n`` works with
either ``terminator=b"\\r"`` or ``b"\\n"``.  A partial line is kept until its
terminator comes (there is no inter-character timeout): a stale prefix makes
the next text unknown, never someone else's.

Typical use::

    lines = LineAssembler(terminator=b"\\r", max_length=512)
    for event in lines.feed(data):
        if isinstance(event, QrText):
            access.present(Credential(kind="qr", qr=event.text), reader_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_TERMINATOR = b"\r"
DEFAULT_MAX_LENGTH = 512
MAX_LENGTH_LIMIT = 7089  # the most a QR code (version 40, numeric) holds
REASONS = ("too_long", "not_utf8", "unknown_key")
_STRIP = b"\r\n"


class QrConfigError(ValueError):
    """A terminator or length limit that cannot work; the message names the setting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QrText:
    """The text of one scanned QR code (never empty, CR/LF stripped at the ends)."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text:
            raise ValueError(f"QrText.text must be a non-empty str, got {self.text!r}")
        if len(self.text) > MAX_LENGTH_LIMIT:
            raise ValueError(f"QrText.text has {len(self.text)} characters, more than a QR code holds "
                             f"({MAX_LENGTH_LIMIT})")


@dataclass(frozen=True, slots=True, kw_only=True)
class QrInvalid:
    """A scan that gave no usable text.

    ``data`` is what was received (bytes of a serial line; for HID the UTF-8 of
    the characters typed so far), at most ``max_length + 1`` bytes of it;
    ``offset`` the index in ``data`` where it went wrong; ``detail`` a
    sentence for the log.
    """

    reason: Literal["too_long", "not_utf8", "unknown_key"]
    data: bytes
    offset: int
    detail: str

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"QrInvalid.reason must be one of {REASONS}, got {self.reason!r}")
        if not isinstance(self.data, bytes):
            raise ValueError(f"QrInvalid.data must be bytes, got {type(self.data).__name__}")
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or not 0 <= self.offset <= len(self.data):
            raise ValueError(f"QrInvalid.offset must be 0–{len(self.data)}, got {self.offset!r}")
        if not self.detail:
            raise ValueError("QrInvalid.detail must say what went wrong")


QrEvent = QrText | QrInvalid


def check_max_length(max_length: object) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= MAX_LENGTH_LIMIT:
        raise QrConfigError(f"max_length: expected 1–{MAX_LENGTH_LIMIT}, got {max_length!r}")
    return max_length


def check_terminator(terminator: object) -> bytes:
    """``terminator`` as bytes: a str is encoded as UTF-8 (``"\\r"`` → ``b"\\r"``)."""
    if isinstance(terminator, str):
        terminator = terminator.encode("utf-8")
    if not isinstance(terminator, bytes | bytearray) or not 1 <= len(terminator) <= 4:
        raise QrConfigError(f"terminator: expected 1 to 4 bytes (such as \"\\r\" or \"\\r\\n\"), got {terminator!r}")
    return bytes(terminator)


class LineAssembler:
    """Serial scanner bytes → :class:`QrText` / :class:`QrInvalid` events.  See the module docstring."""

    __slots__ = ("terminator", "max_length", "_buf", "_dropping")

    def __init__(self, *, terminator: bytes | str = DEFAULT_TERMINATOR, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.terminator = check_terminator(terminator)
        self.max_length = check_max_length(max_length)
        self._buf = bytearray()
        self._dropping = False  # an overlong line was reported; skip to the next terminator

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished line are held (leading CR/LF not counted)."""
        return len(self._buf.lstrip(_STRIP))

    def reset(self) -> None:
        """Forget a partial line (the port was reopened)."""
        self._buf.clear()
        self._dropping = False

    def feed(self, data: bytes) -> list[QrEvent]:
        """Take bytes as they arrived; return the events of every line they complete."""
        events: list[QrEvent] = []
        buf, term = self._buf, self.terminator
        keep = len(term) - 1  # bytes at the end that may be the start of a split terminator
        buf += data
        while True:
            end = buf.find(term)
            if end >= 0:
                line = bytes(buf[:end])
                del buf[: end + len(term)]
                if self._dropping:
                    self._dropping = False
                    continue
                event = self._line(line.strip(_STRIP))
                if event is not None:
                    events.append(event)
                continue
            if not self._dropping:
                # No terminator yet: every byte but the last ``keep`` belongs to
                # this line, so once those (CR/LF stripped) pass the limit the
                # line is overlong whatever comes next.
                line = bytes(buf[: max(0, len(buf) - keep)]).strip(_STRIP)
                if len(line) > self.max_length:
                    events.append(self._too_long(line))
                    self._dropping = True
            if self._dropping:
                del buf[: max(0, len(buf) - keep)]
            return events

    def _too_long(self, line: bytes) -> QrInvalid:
        return QrInvalid(
            reason="too_long", data=line[: self.max_length + 1], offset=self.max_length,
            detail=f"no terminator {self.terminator!r} within {self.max_length} bytes "
                   "(a longer code, or the scanner's suffix does not match the configured terminator)")

    def _line(self, line: bytes) -> QrEvent | None:
        if not line:
            return None
        if len(line) > self.max_length:
            return self._too_long(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return QrInvalid(reason="not_utf8", data=line, offset=exc.start,
                             detail=f"not UTF-8: {exc.reason} at byte {exc.start} (0x{line[exc.start]:02X})")
        return QrText(text=text)


# --------------------------------------------------------------------- HID keyboard

EV_KEY = 1
KEY_RELEASE, KEY_PRESS, KEY_REPEAT = 0, 1, 2

KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
KEY_ENTER, KEY_KPENTER = 28, 96
SHIFT_KEYS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
OTHER_MODIFIERS = {29: "KEY_LEFTCTRL", 97: "KEY_RIGHTCTRL", 56: "KEY_LEFTALT", 100: "KEY_RIGHTALT",
                   125: "KEY_LEFTMETA", 126: "KEY_RIGHTMETA"}
ENTER_KEYS = frozenset({KEY_ENTER, KEY_KPENTER})
IGNORED_KEYS = {69: "KEY_NUMLOCK", 70: "KEY_SCROLLLOCK"}  # lock keys other than Caps Lock change nothing here

# The US keyboard layout: key code → (name, unshifted, shifted).  Codes and
# names are Linux's input-event-codes.h (the test checks them against evdev.ecodes).
US_LAYOUT: dict[int, tuple[str, str, str]] = {
    2: ("KEY_1", "1", "!"), 3: ("KEY_2", "2", "@"), 4: ("KEY_3", "3", "#"), 5: ("KEY_4", "4", "$"),
    6: ("KEY_5", "5", "%"), 7: ("KEY_6", "6", "^"), 8: ("KEY_7", "7", "&"), 9: ("KEY_8", "8", "*"),
    10: ("KEY_9", "9", "("), 11: ("KEY_0", "0", ")"), 12: ("KEY_MINUS", "-", "_"), 13: ("KEY_EQUAL", "=", "+"),
    15: ("KEY_TAB", "\t", "\t"),
    16: ("KEY_Q", "q", "Q"), 17: ("KEY_W", "w", "W"), 18: ("KEY_E", "e", "E"), 19: ("KEY_R", "r", "R"),
    20: ("KEY_T", "t", "T"), 21: ("KEY_Y", "y", "Y"), 22: ("KEY_U", "u", "U"), 23: ("KEY_I", "i", "I"),
    24: ("KEY_O", "o", "O"), 25: ("KEY_P", "p", "P"), 26: ("KEY_LEFTBRACE", "[", "{"),
    27: ("KEY_RIGHTBRACE", "]", "}"),
    30: ("KEY_A", "a", "A"), 31: ("KEY_S", "s", "S"), 32: ("KEY_D", "d", "D"), 33: ("KEY_F", "f", "F"),
    34: ("KEY_G", "g", "G"), 35: ("KEY_H", "h", "H"), 36: ("KEY_J", "j", "J"), 37: ("KEY_K", "k", "K"),
    38: ("KEY_L", "l", "L"), 39: ("KEY_SEMICOLON", ";", ":"), 40: ("KEY_APOSTROPHE", "'", '"'),
    41: ("KEY_GRAVE", "`", "~"), 43: ("KEY_BACKSLASH", "\\", "|"),
    44: ("KEY_Z", "z", "Z"), 45: ("KEY_X", "x", "X"), 46: ("KEY_C", "c", "C"), 47: ("KEY_V", "v", "V"),
    48: ("KEY_B", "b", "B"), 49: ("KEY_N", "n", "N"), 50: ("KEY_M", "m", "M"), 51: ("KEY_COMMA", ",", "<"),
    52: ("KEY_DOT", ".", ">"), 53: ("KEY_SLASH", "/", "?"), 57: ("KEY_SPACE", " ", " "),
    # the keypad, as typed with Num Lock on (scanners that "type digits on the keypad")
    55: ("KEY_KPASTERISK", "*", "*"), 71: ("KEY_KP7", "7", "7"), 72: ("KEY_KP8", "8", "8"),
    73: ("KEY_KP9", "9", "9"), 74: ("KEY_KPMINUS", "-", "-"), 75: ("KEY_KP4", "4", "4"),
    76: ("KEY_KP5", "5", "5"), 77: ("KEY_KP6", "6", "6"), 78: ("KEY_KPPLUS", "+", "+"),
    79: ("KEY_KP1", "1", "1"), 80: ("KEY_KP2", "2", "2"), 81: ("KEY_KP3", "3", "3"),
    82: ("KEY_KP0", "0", "0"), 83: ("KEY_KPDOT", ".", "."), 98: ("KEY_KPSLASH", "/", "/"),
    117: ("KEY_KPEQUAL", "=", "="),
}

# Names of keys that type nothing here, so that an unknown key is named in the log.
KEY_NAMES: dict[int, str] = {
    1: "KEY_ESC", 14: "KEY_BACKSPACE", 28: "KEY_ENTER", 42: "KEY_LEFTSHIFT", 54: "KEY_RIGHTSHIFT",
    58: "KEY_CAPSLOCK", 86: "KEY_102ND", 96: "KEY_KPENTER", 99: "KEY_SYSRQ", 101: "KEY_LINEFEED",
    102: "KEY_HOME", 103: "KEY_UP", 104: "KEY_PAGEUP", 105: "KEY_LEFT", 106: "KEY_RIGHT", 107: "KEY_END",
    108: "KEY_DOWN", 109: "KEY_PAGEDOWN", 110: "KEY_INSERT", 111: "KEY_DELETE", 119: "KEY_PAUSE",
    **{59 + i: f"KEY_F{i + 1}" for i in range(10)}, 87: "KEY_F11", 88: "KEY_F12",
    **OTHER_MODIFIERS, **IGNORED_KEYS,
    **{code: name for code, (name, _, _) in US_LAYOUT.items()},
}


def key_name(code: int) -> str:
    """``KEY_F5 (63)``, or ``key code 183`` for a code without a name here."""
    name = KEY_NAMES.get(code)
    return f"{name} ({code})" if name else f"key code {code}"


class HidDecoder:
    """evdev ``EV_KEY`` (code, value) pairs of a keyboard-wedge scanner → QR events.

    Characters are typed on press and on autorepeat (value 2), as a keyboard
    would; Shift (either side) is held state, Caps Lock toggles the case of
    letters.  ``KEY_ENTER``/``KEY_KPENTER`` ends the text.  See the module docstring.
    """

    __slots__ = ("max_length", "_chars", "_shift", "_caps", "_mods", "_error", "_too_long")

    def __init__(self, *, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.max_length = check_max_length(max_length)
        self._chars: list[str] = []
        self._shift: set[int] = set()
        self._mods: set[int] = set()
        self._caps = False
        self._error: QrInvalid | None = None  # the first problem of the current line
        self._too_long = False

    @property
    def pending(self) -> int:
        """How many characters of an unfinished text are held."""
        return len(self._chars)

    def reset(self) -> None:
        """Forget a partial text and all key state (the device was reopened)."""
        self._chars.clear()
        self._shift.clear()
        self._mods.clear()
        self._caps = False
        self._error = None
        self._too_long = False

    def feed_events(self, events) -> list[QrEvent]:
        """Feed an iterable of ``(code, value)`` pairs; return the events they cause."""
        out: list[QrEvent] = []
        for code, value in events:
            out += self.feed(code, value)
        return out

    def feed(self, code: int, value: int) -> list[QrEvent]:
        """Feed one ``EV_KEY`` event; return the events it causes (at most one)."""
        if isinstance(code, bool) or not isinstance(code, int) or code < 0:
            raise ValueError(f"key code must be a non-negative int, got {code!r}")
        if value not in (KEY_RELEASE, KEY_PRESS, KEY_REPEAT):
            raise ValueError(f"EV_KEY value must be 0 (release), 1 (press) or 2 (repeat), got {value!r}")
        if code in SHIFT_KEYS:
            if value == KEY_RELEASE:
                self._shift.discard(code)
            else:
                self._shift.add(code)
            return []
        if code in OTHER_MODIFIERS:
            if value == KEY_RELEASE:
                self._mods.discard(code)
            else:
                self._mods.add(code)
            return []
        if value == KEY_RELEASE or code in IGNORED_KEYS:
            return []
        if code == KEY_CAPSLOCK:
            if value == KEY_PRESS:
                self._caps = not self._caps
            return []
        if code in ENTER_KEYS:
            return self._end()
        entry = US_LAYOUT.get(code)
        if entry is None or self._mods:
            held = "+".join(OTHER_MODIFIERS[m] for m in sorted(self._mods))
            self._fail("unknown_key", f"{held + '+' if held else ''}{key_name(code)} types no character"
                       " in the US layout")
            return []
        _, plain, shifted = entry
        char = shifted if self._shift else plain
        if self._caps and char.isalpha():
            char = char.swapcase()
        if self._too_long:
            return []
        if len(self._chars) >= self.max_length:
            self._too_long = True
            if self._error is not None:  # the line already failed: report that at Enter
                return []
            typed = "".join(self._chars).encode("utf-8")
            return [QrInvalid(reason="too_long", data=(typed + char.encode("utf-8"))[: self.max_length + 1],
                              offset=self.max_length,
                              detail=f"more than {self.max_length} characters before Enter")]
        self._chars.append(char)
        return []

    def _fail(self, reason: str, detail: str) -> None:
        if self._error is None and not self._too_long:
            typed = "".join(self._chars).encode("utf-8")
            self._error = QrInvalid(reason=reason, data=typed, offset=len(typed), detail=detail)

    def _end(self) -> list[QrEvent]:
        error, text, too_long = self._error, "".join(self._chars), self._too_long
        self._chars.clear()
        self._error = None
        self._too_long = False
        if error is not None:
            return [error]
        if too_long:  # reported when it happened
            return []
        if not text:
            return []
        return [QrText(text=text)]
