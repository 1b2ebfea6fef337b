"""WiegandReader and ReaderFeedback on gpiozero's MockFactory, with a patched clock."""

import pytest
from accessd.protocols.wiegand.decoder import EdgeDecoder, Frame, Timing
from accessd.protocols.wiegand.formats import LIBRARY
from accessd.wiring.feedback import ReaderFeedback
from accessd.wiring.wiegand import WiegandReader
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture
def clock(mocker):
    c = FakeClock()
    mocker.patch("gpiozero.pins.mock.monotonic", c)  # MockPin stamps edges with this
    return c


def test_edges_carry_the_pin_tick_on_the_callers_clock(factory, clock):
    edges = []
    r = WiegandReader(17, 27, on_edge=lambda *e: edges.append(e), clock=clock, pin_factory=factory)
    d0, d1 = r.pins
    assert r.levels == (1, 1)  # pulled up, idle high
    clock.t = 1000.5
    d1.drive_low()
    clock.t = 1000.50005
    d1.drive_high()
    clock.t = 1000.502
    d0.drive_low()
    d0.drive_high()
    assert edges == [(1, 0, 1000.5), (1, 1, 1000.50005), (0, 0, 1000.502), (0, 1, 1000.502)]
    r.close()


def test_patched_clock_frame_through_decoder(factory, clock):
    dec = EdgeDecoder()
    frames = []
    r = WiegandReader(17, 27, on_edge=lambda line, level, t: frames.extend(dec.edge(line, level, t)),
                      clock=clock, pin_factory=factory)
    bits = LIBRARY.encode("H10301", facility_code=90, card_number=324)
    d0, d1 = r.pins
    for i, b in enumerate(bits):
        pin = d1 if b == "1" else d0
        clock.t = 1000.0 + i * 0.002
        pin.drive_low()
        clock.t += 50e-6
        pin.drive_high()
    assert dec.next_deadline() == pytest.approx(1000.0 + 25 * 0.002 + 0.005)
    frames += dec.tick(1000.06)
    assert [f.bits for f in frames if isinstance(f, Frame)] == [bits]
    r.close()


def test_send_drives_mock_pins_with_real_timing(factory):
    dec = EdgeDecoder(Timing(floor=0.05, ceiling=0.1))  # this Python thread may be paused on a busy box
    out = []
    r = WiegandReader(5, 6, on_edge=lambda line, level, t: out.extend(dec.edge(line, level, t)), pin_factory=factory)
    r.send("10110", interval=0.001)
    assert r.edges == 10
    out += dec.flush()
    assert out[0].bits == "10110" and out[0].interval >= 0.0009  # never faster than asked
    r.close()


def test_pins_are_reserved_and_released(factory):
    r = WiegandReader(17, 27, on_edge=lambda *e: None, pin_factory=factory)
    with pytest.raises(GPIOPinInUse):
        WiegandReader(27, 22, on_edge=lambda *e: None, pin_factory=factory)
    r.close()
    assert r.closed
    WiegandReader(27, 22, on_edge=lambda *e: None, pin_factory=factory).close()
    with pytest.raises(ValueError, match="different pins"):
        WiegandReader(4, 4, on_edge=lambda *e: None, pin_factory=factory)


def test_two_led_lines_show_colours_active_low(factory):
    fb = ReaderFeedback(green_pin=12, red_pin=13, beeper_pin=16, pin_factory=factory)
    g, r = factory.pin(12), factory.pin(13)
    assert (g.state, r.state) == (1, 1)  # active low: both off
    assert fb.show("green") == "green" and (g.state, r.state) == (0, 1)
    assert fb.show("amber") == "amber" and (g.state, r.state) == (0, 0)
    assert fb.show("off") == "off" and (g.state, r.state) == (1, 1)
    with pytest.raises(ValueError, match="LED colour"):
        fb.show("blue")
    fb.close()


def test_one_led_line_and_beeper(factory):
    fb = ReaderFeedback(green_pin=12, beeper_pin=16, active_low=False, beeper_active_low=False,
                        pin_factory=factory)
    assert fb.show("green") == "green" and factory.pin(12).state == 1
    assert fb.show("red") == "red" and factory.pin(12).state == 0
    beeper = factory.pin(16)
    beeper.clear_states()
    fb.beep(2, on=0.01, off=0.01)
    fb.beeper._blink_thread.join(2)
    assert [s.state for s in beeper.states] == [0, 1, 0, 1, 0]
    fb.close()


def test_ticks_on_another_clock_keep_their_spacing(factory, clock):
    """A library stamping edges with CLOCK_REALTIME while ticks() is monotonic."""
    edges = []
    r = WiegandReader(17, 27, on_edge=lambda *e: edges.append(e), clock=clock, pin_factory=factory)
    handler = r._handlers[1]
    epoch = 1_790_000_000.0
    for i in range(4):
        clock.t = 1000.0 + i * 0.002 + 0.0003  # each callback runs 0.3 ms after its edge
        handler(epoch + i * 0.002, 0)
    times = [t for _, _, t in edges]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == pytest.approx([0.002] * 3, abs=1e-6)  # epoch seconds as floats: ~0.2 µs resolution
    assert times[-1] == pytest.approx(1000.0063, abs=1e-6)
    clock.t = 1005.0  # the other clock jumped back by 10 s: re-anchored, not 10 s in the future
    handler(epoch - 10.0, 0)
    assert edges[-1][2] == pytest.approx(1005.0)
    r.close()
