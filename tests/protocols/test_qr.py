"""QR scanner decoding: serial lines by terminator, HID keystrokes by the US layout."""

from __future__ import annotations

import os

import pytest
from accessd.protocols.qr import (
    KEY_NAMES,
    MAX_LENGTH_LIMIT,
    US_LAYOUT,
    HidDecoder,
    LineAssembler,
    QrConfigError,
    QrInvalid,
    QrText,
    key_name,
)
from hypothesis import given, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("ACCESSD_FUZZ_EXAMPLES", "2000"))  # make fuzz: 10**6


def text(t):
    return QrText(text=t)


def too_long(data, limit, term=b"\r"):
    return QrInvalid(reason="too_long", data=data, offset=limit,
                     detail=f"no terminator {term!r} within {limit} bytes (a longer code, or the scanner's "
                            "suffix does not match the configured terminator)")


# (terminator, max_length, bytes, events)
LINES = [
    (b"\r", 512, b"AQ1-ABC\r", [text("AQ1-ABC")]),
    (b"\r", 512, b"one\rtwo\r", [text("one"), text("two")]),
    (b"\r", 512, b"one\r\ntwo\r\n", [text("one"), text("two")]),  # CRLF with terminator CR
    (b"\n", 512, b"one\r\ntwo\r\n", [text("one"), text("two")]),  # CRLF with terminator LF
    (b"\r\n", 512, b"one\r\ntwo\r\n", [text("one"), text("two")]),
    (b"\r", 512, b"\r\r\n\r", []),  # empty lines are nothing
    (b"\x03", 512, b"multi\nline\x03", [text("multi\nline")]),  # inner LF kept with another terminator
    (b"\r", 512, "Grüße €\r".encode(), [text("Grüße €")]),
    (b"\r", 512, b"  spaced  \r", [text("  spaced  ")]),  # only CR/LF are stripped
    (b"\r", 512, b"a\xffb\rok\r",
     [QrInvalid(reason="not_utf8", data=b"a\xffb", offset=1, detail="not UTF-8: invalid start byte at byte 1 (0xFF)"),
      text("ok")]),
    (b"\r", 512, b"\xe2\x82\r",
     [QrInvalid(reason="not_utf8", data=b"\xe2\x82", offset=0, detail="not UTF-8: unexpected end of data at byte 0 (0xE2)")]),
    (b"\r", 4, b"abcd\r", [text("abcd")]),  # exactly the limit
    (b"\r", 4, b"abcde\rok\r", [too_long(b"abcde", 4), text("ok")]),
    (b"\r", 4, b"abcdefghijklmnop\rok\r", [too_long(b"abcde", 4), text("ok")]),  # resync after the terminator
    (b"\r\n", 4, b"abcd\r\nabcdef\r\nok\r\n", [text("abcd"), too_long(b"abcde", 4, b"\r\n"), text("ok")]),
    (b"\r", 4, b"abcd\n\n\n\n\n\n\r", [text("abcd")]),  # trailing LFs don't count
]
IDS = [repr(row[2])[:40] for row in LINES]


def feed_all(assembler, chunks):
    events = []
    for chunk in chunks:
        events += assembler.feed(chunk)
    return events


@pytest.mark.parametrize(("term", "limit", "data", "expected"), LINES, ids=IDS)
def test_lines_fed_whole(term, limit, data, expected):
    assert LineAssembler(terminator=term, max_length=limit).feed(data) == expected


@pytest.mark.parametrize(("term", "limit", "data", "expected"), LINES, ids=IDS)
def test_lines_fed_byte_by_byte(term, limit, data, expected):
    a = LineAssembler(terminator=term, max_length=limit)
    assert feed_all(a, [data[i:i + 1] for i in range(len(data))]) == expected
    assert a.pending == 0


@pytest.mark.parametrize(("term", "limit", "data", "expected"), LINES, ids=IDS)
def test_lines_with_trailing_garbage(term, limit, data, expected):
    a = LineAssembler(terminator=term, max_length=limit)
    garbage = b"\xff\x00zz"[:limit]
    assert a.feed(data + garbage) == expected
    assert a.pending == len(garbage)  # held until its terminator, never a text on its own
    # the garbage ends up as the start of the next line
    assert a.feed(term) == [LineAssembler(terminator=term, max_length=limit).feed(garbage + term)[0]]


@given(cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
@pytest.mark.parametrize(("term", "limit", "data", "expected"), LINES, ids=IDS)
def test_lines_in_any_chunking(term, limit, data, expected, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert feed_all(LineAssembler(terminator=term, max_length=limit), chunks) == expected


def test_overlong_is_reported_before_its_terminator():
    """A scanner whose suffix does not match the terminator is noticed at its first scan."""
    a = LineAssembler(terminator=b"\r", max_length=8)
    assert a.feed(b"AQ1-ABCD") == []
    [event] = a.feed(b"E\n")  # the 9th byte: the line can only be too long now
    assert event.reason == "too_long" and event.data == b"AQ1-ABCDE"
    assert a.feed(b"more and more bytes " * 100) == []  # dropped, not buffered
    assert a.pending == 0
    assert a.feed(b"\rAQ1-X\r") == [text("AQ1-X")]


def test_a_split_multibyte_terminator_is_found():
    a = LineAssembler(terminator=b"\x02\x03", max_length=4)
    assert a.feed(b"abcd\x02") == []
    assert a.feed(b"\x03") == [text("abcd")]
    assert a.feed(b"abcdefgh\x02") == [too_long(b"abcde", 4, b"\x02\x03")]
    assert a.feed(b"\x03ok\x02\x03") == [text("ok")]


def test_terminator_as_str_and_reset():
    a = LineAssembler(terminator="\n")
    assert a.terminator == b"\n"
    a.feed(b"stale")
    a.reset()
    assert a.feed(b"fresh\n") == [text("fresh")]


@pytest.mark.parametrize("term", [b"", "", b"12345", 13, None])
def test_bad_terminator_is_named(term):
    with pytest.raises(QrConfigError, match="terminator"):
        LineAssembler(terminator=term)


@pytest.mark.parametrize("limit", [0, -1, MAX_LENGTH_LIMIT + 1, True, 2.5, "10"])
def test_bad_max_length_is_named(limit):
    with pytest.raises(QrConfigError, match="max_length"):
        LineAssembler(max_length=limit)
    with pytest.raises(QrConfigError, match="max_length"):
        HidDecoder(max_length=limit)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"text": ""}, "non-empty"),
    ({"text": b"bytes"}, "non-empty str"),
    ({"text": "x" * (MAX_LENGTH_LIMIT + 1)}, "more than a QR code holds"),
])
def test_qrtext_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QrText(**kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"reason": "bad", "data": b"", "offset": 0, "detail": "x"}, "reason"),
    ({"reason": "too_long", "data": "str", "offset": 0, "detail": "x"}, "bytes"),
    ({"reason": "too_long", "data": b"ab", "offset": 3, "detail": "x"}, "offset"),
    ({"reason": "too_long", "data": b"ab", "offset": 1, "detail": ""}, "detail"),
])
def test_qrinvalid_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QrInvalid(**kwargs)


def test_events_are_frozen_slotted_keyword_only():
    t = text("x")
    with pytest.raises(AttributeError):
        t.text = "y"
    assert not hasattr(t, "__dict__")
    with pytest.raises(TypeError):
        QrText("x")


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=20))
def test_any_bytes_never_raise_and_stay_bounded(chunks):
    a = LineAssembler(terminator=b"\r", max_length=16)
    for chunk in chunks:
        for event in a.feed(chunk):
            assert isinstance(event, QrText | QrInvalid)
            if isinstance(event, QrText):
                assert len(event.text.encode()) <= 16
            else:
                assert len(event.data) <= 17
        assert a.pending <= 16 + 2


# --------------------------------------------------------------------- HID

# Key codes of linux/input-event-codes.h, by hand (the table itself is checked against evdev below)
SHIFT, RSHIFT, ENTER, KPENTER, CAPS, CTRL = 42, 54, 28, 96, 58, 29
A, Q, ONE, MINUS, F5, ESC, KP1 = 30, 16, 2, 12, 63, 1, 79


def press(code):
    return [(code, 1), (code, 0)]


def shifted(code, shift=SHIFT):
    return [(shift, 1), (code, 1), (code, 0), (shift, 0)]


def typed(s):
    """The key events a US-layout HID scanner sends for ``s`` (built from the table inverted)."""
    by_char = {}
    for code, (_, plain, shift) in sorted(US_LAYOUT.items(), reverse=True):  # main keys win over the keypad
        by_char[shift] = (code, shift != plain)
        by_char[plain] = (code, False)
    out = []
    for ch in s:
        code, need_shift = by_char[ch]
        out += shifted(code) if need_shift else press(code)
    return out


HID = [
    (press(A) + press(ENTER), [text("a")]),
    (shifted(A) + press(Q) + press(ENTER), [text("Aq")]),
    (shifted(A, RSHIFT) + press(KPENTER), [text("A")]),
    (shifted(ONE) + press(ONE) + shifted(MINUS) + press(MINUS) + press(ENTER), [text("!1_-")]),
    ([(SHIFT, 1), (A, 1), (A, 0), (SHIFT, 2), (A, 1), (A, 0), (SHIFT, 0), (A, 1), (ENTER, 1)], [text("AAa")]),
    ([(A, 1), (A, 2), (A, 2), (A, 0), (ENTER, 1)], [text("aaa")]),  # autorepeat types, as a keyboard does
    (press(CAPS) + press(A) + shifted(A) + press(ONE) + press(CAPS) + press(A) + press(ENTER), [text("Aa1a")]),
    (press(KP1) + press(55) + press(ENTER), [text("1*")]),
    (press(ENTER) + press(ENTER), []),  # empty texts are nothing
    (press(A) + press(F5) + press(A) + press(ENTER) + press(Q) + press(ENTER),
     [QrInvalid(reason="unknown_key", data=b"a", offset=1, detail="KEY_F5 (63) types no character in the US layout"),
      text("q")]),
    (press(ESC) + press(183) + press(ENTER),
     [QrInvalid(reason="unknown_key", data=b"", offset=0, detail="KEY_ESC (1) types no character in the US layout")]),
    ([(CTRL, 1), (A, 1), (A, 0), (CTRL, 0), (A, 1), (ENTER, 1)],
     [QrInvalid(reason="unknown_key", data=b"", offset=0,
                detail="KEY_LEFTCTRL+KEY_A (30) types no character in the US layout")]),
    (press(69) + press(A) + press(ENTER), [text("a")]),  # Num Lock changes nothing
    (typed("AQ1-ZZ27QX") + press(ENTER), [text("AQ1-ZZ27QX")]),
    (typed("https://example.org/?q=a_b&c=\"d\"") + press(ENTER), [text("https://example.org/?q=a_b&c=\"d\"")]),
]


def test_typed_builds_real_shift_sequences():
    assert typed("aA!") == press(A) + shifted(A) + shifted(ONE)


@pytest.mark.parametrize(("keys", "expected"), HID, ids=[str(i) for i in range(len(HID))])
def test_hid_events(keys, expected):
    assert HidDecoder().feed_events(keys) == expected


@pytest.mark.parametrize(("keys", "expected"), HID, ids=[str(i) for i in range(len(HID))])
def test_hid_events_one_by_one_and_trailing_garbage(keys, expected):
    d = HidDecoder()
    events = []
    for code, value in keys:
        events += d.feed(code, value)
    assert events == expected
    assert d.feed_events(press(A) + press(F5)) == []  # garbage without Enter: nothing yet
    assert d.pending == 1
    d.reset()
    assert d.feed_events(press(Q) + press(ENTER)) == [text("q")]


def test_hid_overlong_is_reported_at_once_then_resyncs_at_enter():
    d = HidDecoder(max_length=3)
    assert d.feed_events(typed("abc")) == []
    assert d.feed_events(typed("d")) == [QrInvalid(reason="too_long", data=b"abcd", offset=3,
                                                   detail="more than 3 characters before Enter")]
    assert d.feed_events(typed("efgh")) == []
    assert d.pending == 3  # bounded
    assert d.feed_events(press(ENTER)) == []  # already reported
    assert d.feed_events(typed("ok") + press(ENTER)) == [text("ok")]


def test_hid_first_problem_wins():
    d = HidDecoder(max_length=2)
    events = d.feed_events(press(A) + press(F5) + typed("bcd") + press(ENTER))
    assert [e.reason for e in events] == ["unknown_key"]


@pytest.mark.parametrize(("code", "value"), [(30, 3), (30, -1), (-1, 1), ("30", 1), (True, 1)])
def test_hid_rejects_what_evdev_never_sends(code, value):
    with pytest.raises(ValueError):
        HidDecoder().feed(code, value)


def test_key_names():
    assert key_name(63) == "KEY_F5 (63)"
    assert key_name(183) == "key code 183"


def test_us_layout_matches_the_kernel_key_codes():
    """Every code and name in the table is the kernel's (evdev.ecodes is built from linux/input.h)."""
    from evdev import ecodes  # python-evdev is in the test extra
    for code, name in KEY_NAMES.items():
        assert getattr(ecodes, name) == code, name
    # and the printable main block is complete: every US ASCII printable character can be typed
    chars = {c for _, plain, shift in US_LAYOUT.values() for c in (plain, shift)}
    assert {chr(c) for c in range(0x20, 0x7F)} <= chars


def reference_lines(stream, term, limit):
    """The same rules written the obvious way, on the whole stream at once."""
    *complete, rest = stream.split(term)
    out = []
    for part in complete:
        line = part.strip(b"\r\n")
        if not line:
            continue
        if len(line) > limit:
            out.append(("too_long", line[: limit + 1]))
            continue
        try:
            out.append(("text", line.decode("utf-8")))
        except UnicodeDecodeError:
            out.append(("not_utf8", line))
    tail = rest[: max(0, len(rest) - (len(term) - 1))].strip(b"\r\n")
    if len(tail) > limit:
        out.append(("too_long", tail[: limit + 1]))
    return out


PIECES = st.sampled_from([b"a", b"Z", b"\r", b"\n", b"\r\n", b"\x03", b"\xff", "é".encode(), b"\xc3", b" "])


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(pieces=st.lists(PIECES, max_size=60), cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=10),
       term=st.sampled_from([b"\r", b"\n", b"\r\n", b"\x03", b"\r\x03"]), limit=st.integers(min_value=1, max_value=8))
def test_lines_agree_with_the_obvious_rules(pieces, cuts, term, limit):
    stream = b"".join(pieces)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    got = []
    for event in feed_all(LineAssembler(terminator=term, max_length=limit), chunks):
        got.append(("text", event.text) if isinstance(event, QrText) else (event.reason, event.data))
    assert got == reference_lines(stream, term, limit)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40))
def test_any_printable_ascii_typed_by_a_scanner_comes_back(s):
    assert HidDecoder().feed_events(typed(s) + press(ENTER)) == [text(s)]


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=255), st.sampled_from([0, 1, 2])), max_size=80))
def test_any_key_events_never_raise_and_stay_bounded(keys):
    d = HidDecoder(max_length=8)
    for event in d.feed_events(keys):
        assert isinstance(event, QrText | QrInvalid)
        if isinstance(event, QrText):
            assert len(event.text) <= 8
    assert d.pending <= 8
