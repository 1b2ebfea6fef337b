"""Digital and supervised inputs on gpiozero's MockFactory with a patched clock."""

from __future__ import annotations

import gc

import pytest
from accessd.wiring.errors import BadAdcValue, BadThresholds
from accessd.wiring.inputs import (
    DEFAULT_THRESHOLDS,
    Debounce,
    DigitalInput,
    InputChange,
    MockMCP3xxx,
    SupervisedInput,
    check_thresholds,
    classify,
    ratio_for,
)
from gpiozero.pins.mock import MockFactory


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()
    f.close()


@pytest.fixture
def clock():
    return Clock()


# --- debounce ---------------------------------------------------------------------------------


def test_debounce_accepts_after_stable_period_stamped_at_start():
    d = Debounce("inactive", seconds=0.05, now=0.0)
    assert d.sample("active", 1.00) is False
    assert d.next_deadline() == pytest.approx(1.05)
    assert d.tick(1.04) is False
    assert d.tick(1.05) is True
    assert d.value == "active" and d.since == 1.00
    assert d.next_deadline() is None


def test_debounce_ignores_glitches_shorter_than_period():
    d = Debounce(False, seconds=0.05)
    d.sample(True, 1.00)
    d.sample(False, 1.02)  # bounced back
    assert d.next_deadline() is None
    assert d.tick(2.0) is False and d.value is False


def test_debounce_restarts_on_a_third_value():
    d = Debounce("inactive", seconds=0.1)
    d.sample("cut", 0.0)
    d.sample("short", 0.05)
    assert d.next_deadline() == pytest.approx(0.15)
    assert d.tick(0.12) is False
    assert d.tick(d.next_deadline()) is True and d.value == "short"


def test_zero_debounce_is_immediate_and_late_sample_settles_first():
    d = Debounce(0, seconds=0)
    assert d.sample(1, 5.0) is True and d.value == 1
    d2 = Debounce(0, seconds=0.1)
    d2.sample(1, 0.0)
    # a later sample with the same value confirms the pending change
    assert d2.sample(1, 0.5) is True and d2.since == 0.0


def test_debounce_rejects_bad_seconds():
    with pytest.raises(ValueError, match="debounce"):
        Debounce(0, seconds=-1)


# --- digital inputs ----------------------------------------------------------------------------


def make_digital(factory, clock, normal_state="closed", debounce=0.05, start_closed=True):
    pin = factory.pin(23)
    edges = []
    inp = DigitalInput("contact", 23, normal_state=normal_state, debounce=debounce,
                       pin_factory=factory, clock=clock,
                       on_edge=lambda i, level, at: edges.append((i.name, level, at)))
    if start_closed:  # pulled up: a closed circuit pulls the line low
        pin.drive_low()
        inp.edge(True, clock.t)
        inp.tick(clock.t + debounce)
    edges.clear()
    return inp, pin, edges


def test_digital_initial_state_is_read_from_the_line(factory, clock):
    # the pull-up holds the line high: an open circuit, i.e. a door open at start
    inp = DigitalInput("contact", 23, normal_state="closed", pin_factory=factory, clock=clock)
    assert inp.state == "active" and factory.pin(23).state is True
    btn = DigitalInput("rex", 24, normal_state="open", pin_factory=factory, clock=clock)
    assert btn.state == "inactive"


def test_digital_contact_normally_closed(factory, clock):
    inp, pin, _ = make_digital(factory, clock)
    assert inp.state == "inactive"
    edges = []
    inp.on_edge = lambda i, level, at: edges.append((level, at))
    clock.t = 1001.0
    pin.drive_high()  # door opens: circuit open
    assert edges == [(False, 1001.0)]
    assert inp.raw_state() == "active"
    # the owner feeds the edge; nothing is accepted before the debounce time
    assert inp.edge(False, 1001.0) == []
    assert inp.next_deadline() == pytest.approx(1001.05)
    (change,) = inp.tick(1001.05)
    assert change == InputChange(name="contact", state="active", previous="inactive", at=1001.0)
    assert inp.active


def test_digital_button_normally_open(factory, clock):
    inp, pin, edges = make_digital(factory, clock, normal_state="open", start_closed=False)
    assert inp.state == "inactive"
    clock.t = 1002.0
    pin.drive_low()  # pressed: circuit closes
    assert edges == [("contact", True, 1002.0)]
    inp.edge(True, 1002.0)
    assert [c.state for c in inp.tick(1002.2)] == ["active"]
    pin.drive_high()
    inp.edge(False, 1002.3)
    assert [c.state for c in inp.tick(1002.4)] == ["inactive"]


def test_digital_bounce_is_filtered(factory, clock):
    inp, pin, edges = make_digital(factory, clock, debounce=0.05)
    t = 1003.0
    for i in range(6):  # a bouncing reed contact: 6 edges within 10 ms
        clock.t = t + i * 0.002
        (pin.drive_high if i % 2 == 0 else pin.drive_low)()
    assert len(edges) == 6
    changes = []
    for _, level, at in edges:
        changes += inp.edge(level, at)
    assert changes == [] and inp.next_deadline() is None  # ended closed: nothing to report
    assert inp.state == "inactive"


def test_digital_status_and_bad_normal_state(factory, clock):
    inp, _, _ = make_digital(factory, clock)
    assert inp.status() == {"kind": "digital", "pin": 23, "normal_state": "closed", "state": "inactive"}
    with pytest.raises(ValueError, match="input rex: normal_state must be one of"):
        DigitalInput("rex", 24, normal_state="NC", pin_factory=factory)


# --- supervised inputs: classification -------------------------------------------------------------


@pytest.mark.parametrize("ratio, normal_state, state", [
    (0.00, "closed", "short"),
    (0.249, "closed", "short"),
    (0.25, "closed", "inactive"),
    (0.50, "closed", "inactive"),   # 2.2 kΩ loop: contact closed
    (0.579, "closed", "inactive"),
    (0.58, "closed", "active"),
    (0.667, "closed", "active"),    # 4.4 kΩ loop: contact open
    (0.829, "closed", "active"),
    (0.83, "closed", "cut"),
    (1.00, "closed", "cut"),
    (0.50, "open", "active"),       # a normally-open button, pressed
    (0.667, "open", "inactive"),
    (0.10, "open", "short"),
    (0.95, "open", "cut"),
])
def test_classify_default_thresholds(ratio, normal_state, state):
    assert classify(ratio, DEFAULT_THRESHOLDS, normal_state) == state


def test_default_thresholds_fit_the_documented_wiring_with_5_percent_resistors():
    r_ref = 2200.0
    for r_ref_f in (0.95, 1.05):
        for r_f in (0.95, 1.05):
            ref = r_ref * r_ref_f
            loop_closed = 2200 * r_f
            loop_open = 4400 * r_f
            assert classify(loop_closed / (loop_closed + ref), DEFAULT_THRESHOLDS, "closed") == "inactive"
            assert classify(loop_open / (loop_open + ref), DEFAULT_THRESHOLDS, "closed") == "active"


@pytest.mark.parametrize("state", ["inactive", "active", "cut", "short"])
@pytest.mark.parametrize("normal_state", ["open", "closed"])
def test_ratio_for_lands_in_its_own_band(state, normal_state):
    th = (0.1, 0.4, 0.9)
    assert classify(ratio_for(state, th, normal_state), th, normal_state) == state


@pytest.mark.parametrize("bad", [(0.5, 0.4, 0.9), (0.0, 0.5, 0.9), (0.1, 0.5, 1.0), (0.1, 0.5), "abc", None])
def test_bad_thresholds(bad):
    with pytest.raises(BadThresholds) as info:
        check_thresholds(bad, "inputs.zone1.thresholds")
    assert info.value.thresholds == bad
    assert "inputs.zone1.thresholds" in str(info.value)


# --- supervised inputs through the mock MCP3008 / MCP3208 ----------------------------------------


@pytest.fixture(params=[("MCP3008", 10), ("MCP3208", 12)])
def adc(request, factory):
    chip, bits = request.param
    mock = MockMCP3xxx(bits=bits, pin_factory=factory)
    made = []

    def make(name="zone1", channel=2, **kw):
        mock.set_ratio(channel, kw.pop("ratio", 0.5))
        s = SupervisedInput(name, chip=chip, channel=channel, pin_factory=factory, **kw)
        made.append(s)
        return s

    yield mock, make
    for s in made:
        s.close()
    mock.close()
    # gpiozero 2.0 keys shared SPI interfaces by pin names only, and a closed one that
    # the cyclic GC finalizes later deletes the entry of whichever live interface has
    # the same key: collect now, before the next test builds its own.
    gc.collect()


def test_supervised_reads_through_real_gpiozero_adc(adc, clock):
    mock, make = adc
    s = make(clock=clock, debounce=0.1, poll_interval=0.05)
    assert s.state == "inactive" and s.value == pytest.approx(0.5, abs=0.002)
    assert s.next_deadline() == pytest.approx(1000.05)
    mock.set_ratio(2, 0.667)  # contact opened
    assert s.tick(1000.04) == []  # not time to poll yet
    assert s.tick(1000.05) == []  # first sample of the new band
    assert s.tick(1000.10) == []
    (change,) = s.tick(1000.15)
    assert (change.state, change.previous, change.at) == ("active", "inactive", pytest.approx(1000.05))
    assert change.value == pytest.approx(0.667, abs=0.002)
    assert not change.fault


def test_supervised_cut_and_short_are_faults(adc, clock):
    mock, make = adc
    s = make(clock=clock, debounce=0.0)
    mock.set_ratio(2, 1.0)
    (c,) = s.sample(1001.0)
    assert c.state == "cut" and c.fault
    mock.set_ratio(2, 0.0)
    (c,) = s.sample(1001.1)
    assert c.state == "short" and c.previous == "cut" and c.fault
    assert s.status()["state"] == "short"


def test_supervised_channels_are_independent(adc, clock):
    mock, make = adc
    a = make("a", channel=0, clock=clock, debounce=0.0)
    b = make("b", channel=7, clock=clock, debounce=0.0, ratio=0.95)
    assert (a.state, b.state) == ("inactive", "cut")
    mock.set_ratio(0, 0.1)
    assert [c.state for c in a.sample(1002.0)] == ["short"]
    assert b.sample(1002.0) == []


def test_supervised_custom_thresholds_and_normally_open(adc, clock):
    mock, make = adc
    s = make(clock=clock, debounce=0.0, normal_state="open", thresholds=(0.1, 0.3, 0.7), ratio=0.5)
    assert s.state == "inactive"  # circuit open at rest
    mock.set_ratio(2, 0.2)
    assert [c.state for c in s.sample(1003.0)] == ["active"]


def test_supervised_glitch_shorter_than_debounce_is_ignored(adc, clock):
    mock, make = adc
    s = make(clock=clock, debounce=0.1, poll_interval=0.05)
    mock.set_ratio(2, 1.0)
    assert s.sample(1000.05) == []
    mock.set_ratio(2, 0.5)
    assert s.sample(1000.10) == []
    assert s.sample(1000.30) == [] and s.state == "inactive"


def test_supervised_rejects_bad_adc_value(clock):
    class Broken:
        value = 1.7

    with pytest.raises(BadAdcValue) as info:
        SupervisedInput("zone9", adc=Broken(), clock=clock)
    assert info.value.raw == 1.7 and "zone9" in str(info.value)


def test_supervised_argument_checks(factory):
    with pytest.raises(ValueError, match="chip must be one of"):
        SupervisedInput("z", chip="ADS1115", pin_factory=factory)
    with pytest.raises(ValueError, match="channel must be 0–7"):
        SupervisedInput("z", channel=8, pin_factory=factory)
    with pytest.raises(BadThresholds):
        SupervisedInput("z", thresholds=(0.9, 0.5, 0.1), pin_factory=factory)


def test_resync_accepts_present_level_at_once(factory, clock):
    inp, pin, _ = make_digital(factory, clock)
    pin.drive_high()
    inp.edge(False, clock.t)
    assert inp.next_deadline() is not None and inp.state == "inactive"
    inp.resync(clock.t)
    assert inp.state == "active" and inp.next_deadline() is None and inp.debounce == 0.05


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["inactive", "active", "cut"]), st.floats(0.0, 0.2)), max_size=30),
       st.sampled_from([0.0, 0.05, 0.1]))
def test_debounce_accepts_only_runs_that_held(samples, seconds):
    """Every accepted change is a raw run that held for `seconds`; the last long run wins."""
    d = Debounce("inactive", seconds=seconds)
    t = 0.0
    runs: list[tuple[float, str]] = [(-1.0, "inactive")]  # (start, value) of the raw signal
    accepted: list[tuple[float, str]] = []
    for value, dt in samples:
        t += dt
        if d.tick(t):
            accepted.append((d.since, d.value))
        if value != runs[-1][1]:
            runs.append((t, value))
        if d.sample(value, t):
            accepted.append((d.since, d.value))
    end = t + seconds
    if d.tick(end):
        accepted.append((d.since, d.value))
    for since, value in accepted:
        i = max(i for i, run in enumerate(runs) if run == (since, value))  # a raw run began then
        run_end = runs[i + 1][0] if i + 1 < len(runs) else end
        assert run_end - since >= seconds - 1e-9
    assert d.value == runs[-1][1]  # the final level held to the end
