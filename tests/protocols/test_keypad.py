"""PIN assembly: `*` clears, `#` submits, fixed length, timeouts as data."""

import pytest
from accessd.protocols.keypad import InvalidKey, PinAssembler, PinCleared, PinEntered, PinTimeout
from hypothesis import given
from hypothesis import strategies as st


def test_hash_submits_and_resets():
    p = PinAssembler(timeout=10)
    assert p.feed("12", 0.0) == []
    assert p.pending == 2
    assert p.feed("34#", 1.0) == [PinEntered(pin="1234", by="hash")]
    assert p.pending == 0
    assert p.next_deadline() is None


def test_star_clears_pending_digits():
    p = PinAssembler()
    assert p.feed("99*", 0.0) == [PinCleared(digits=2)]
    assert p.feed("5#", 0.5) == [PinEntered(pin="5", by="hash")]


def test_empty_hash_and_star_do_nothing():
    p = PinAssembler()
    assert p.feed("#*#", 0.0) == []
    assert p.next_deadline() is None


def test_fixed_length_submits_without_hash():
    p = PinAssembler(length=4)
    assert p.feed("123", 0.0) == []
    assert p.feed("45", 1.0) == [PinEntered(pin="1234", by="length")]
    assert p.pending == 1
    assert p.feed("#", 1.5) == [PinEntered(pin="5", by="hash")]


def test_variable_length_caps_at_32_digits():
    p = PinAssembler(length=0)
    events = p.feed("1" * 33, 0.0)
    assert events == [PinEntered(pin="1" * 32, by="length")]
    assert p.pending == 1


def test_timeout_is_data():
    p = PinAssembler(timeout=5)
    p.feed("12", 10.0)
    assert p.next_deadline() == 15.0
    p.feed("3", 12.0)  # every key restarts the timeout
    assert p.next_deadline() == 17.0
    assert p.tick(16.999) == []
    assert p.tick(17.0) == [PinTimeout(digits=3, last_key=12.0)]
    assert p.pending == 0 and p.next_deadline() is None
    assert p.tick(100.0) == []


def test_late_key_starts_a_new_pin():
    p = PinAssembler(timeout=3)
    p.feed("12", 0.0)
    events = p.feed("9#", 4.0)
    assert events == [PinTimeout(digits=2, last_key=0.0), PinEntered(pin="9", by="hash")]


def test_invalid_key_changes_nothing():
    p = PinAssembler()
    p.feed("1", 0.0)
    with pytest.raises(InvalidKey) as err:
        p.feed("2A#", 0.1)
    assert err.value.offset == 1 and err.value.keys == "2A#"
    assert "'A' at position 1" in str(err.value)
    assert p.pending == 1


@pytest.mark.parametrize("kwargs, text", [
    ({"length": 33}, "PIN length: expected 0 (no fixed length) to 32, got 33"),
    ({"length": -1}, "got -1"),
    ({"timeout": 2.9}, "PIN timeout: expected 3–50 seconds, got 2.9"),
    ({"timeout": 51}, "got 51"),
    ({"timeout": "7"}, "got '7'"),
])
def test_bad_settings_are_named(kwargs, text):
    with pytest.raises(ValueError) as err:
        PinAssembler(**kwargs)
    assert text in str(err.value)


@given(st.text(alphabet="0123456789", min_size=1, max_size=32))
def test_any_pin_round_trips(pin):
    (event,) = PinAssembler().feed(pin + "#", 0.0)
    assert event == PinEntered(pin=pin, by="hash" if len(pin) < 32 else "length")
