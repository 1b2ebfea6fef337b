"""Board profiles: header names and BCM numbers, both ways."""

from __future__ import annotations

import pytest
from accessd.wiring.boards import BOARDS, HEADER_40, board, describe, header_pin, resolve
from accessd.wiring.errors import UnknownPin


@pytest.mark.parametrize("name", ["pi3", "pi4", "pi5"])
@pytest.mark.parametrize("spelling, bcm", [
    (22, 22), ("22", 22), ("GPIO22", 22), ("bcm22", 22), ("BOARD15", 22), ("J8:15", 22), ("pin15", 22),
    ("BOARD3", 2), ("J8:40", 21), ("BOARD27", 0),
])
def test_resolve(name, spelling, bcm):
    assert resolve(spelling, name) == bcm


def test_header_is_a_bijection_on_gpio_lines():
    lines = [n for n in HEADER_40.values() if n is not None]
    assert sorted(lines) == list(range(28))
    for bcm in lines:
        assert resolve(f"BOARD{header_pin(bcm)}") == bcm


@pytest.mark.parametrize("bad, shown", [
    ("BOARD1", "3V3"), ("J8:6", "GND"), ("BOARD2", "5V"), ("BOARD41", "not on the header"),
    (28, "28"), ("GPIO40", "40"), ("relay", "relay"), (True, "True"),
])
def test_unknown_pins_name_what_and_board(bad, shown):
    with pytest.raises(UnknownPin) as info:
        resolve(bad, "pi5")
    assert "pi5" in str(info.value) and shown in str(info.value)


def test_boot_pulls_and_description():
    assert board("pi4").boot_pull(4) == "up" and board("pi4").boot_pull(22) == "down"
    assert BOARDS["pi5"].boot_pull(22) is None
    assert describe(22) == "GPIO22 (header pin 15)"
    assert "SPI0 CE0" in describe(8)
    with pytest.raises(ValueError, match="board: expected one of pi3, pi4, pi5"):
        board("pi2")


def test_from_model_and_boot_check():
    from accessd.wiring.boards import boot_check, from_model

    assert from_model("4B").name == "pi4" and from_model("3B+").name == "pi3" and from_model("5B").name == "pi5"
    assert from_model("CM4").name == "pi4" and from_model("Zero2W") is None and from_model(None) is None
    # an active-high relay locked low on GPIO22 (pulled down at reset): safe; on GPIO4 (pulled up): not
    assert boot_check(22, False, from_model("4B")) == {"boot_pull": "down", "boot_safe": True}
    assert boot_check(4, False, from_model("4B")) == {"boot_pull": "up", "boot_safe": False}
    assert boot_check(4, True, from_model("3B")) == {"boot_pull": "up", "boot_safe": True}
    assert boot_check(22, False, from_model("5B")) == {"boot_pull": None, "boot_safe": None}
