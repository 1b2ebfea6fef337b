"""Edge decoder: frames from edge lists, adaptive end of frame, glitches, truncation."""

import random

import pytest
from accessd.protocols.wiegand.decoder import Discarded, EdgeDecoder, Frame, Glitch, Timing, edges_for
from accessd.protocols.wiegand.formats import LIBRARY
from hypothesis import given, settings
from hypothesis import strategies as st

H26 = LIBRARY.encode("H10301", facility_code=90, card_number=324)


def run(edges, *, timing=None, end=None):
    """Feed edges, calling tick at every deadline as a timer would; return events and decision times."""
    dec = EdgeDecoder(timing)
    events, decided = [], []
    for line, level, t in sorted(edges, key=lambda e: e[2]):
        while (d := dec.next_deadline()) is not None and d <= t:
            out = dec.tick(d)
            events += out
            decided += [d] * len(out)
        events += dec.edge(line, level, t)
    while (d := dec.next_deadline()) is not None and (end is None or d <= end):
        out = dec.tick(d)
        events += out
        decided += [d] * len(out)
    return events, decided


@pytest.mark.parametrize("edges, expected", [
    # (edge list, expected frames' bits) — falling edges only, 2 ms apart
    ([(0, 0, 0.000), (1, 0, 0.002), (1, 0, 0.004), (0, 0, 0.006)], ["0110"]),
    ([(1, 0, 0.0), (1, 0, 0.001), (1, 0, 0.002), (1, 0, 0.003), (0, 0, 0.004)], ["11110"]),
    # two frames 25 ms apart
    ([(1, 0, 0.0), (0, 0, 0.002), (1, 0, 0.004), (1, 0, 0.006),
      (0, 0, 0.031), (0, 0, 0.033), (0, 0, 0.035), (0, 0, 0.037)], ["1011", "0000"]),
])
def test_edge_tables(edges, expected):
    events, _ = run(edges)
    assert [e.bits for e in events if isinstance(e, Frame)] == expected


def test_frame_fields():
    events, decided = run(edges_for(H26, start=10.0, interval=0.002))
    (frame,) = events
    assert frame.bits == H26 and frame.count == 26
    assert frame.first == 10.0 and frame.last == pytest.approx(10.05)
    assert frame.interval == pytest.approx(0.002)
    assert decided[0] - frame.last == pytest.approx(0.005)  # 2.5 intervals


def test_one_ms_reader_decided_within_a_few_ms():
    events, decided = run(edges_for(H26, interval=0.001))
    assert events[0].bits == H26
    assert decided[0] - events[0].last <= 0.003


def test_slow_reader_is_never_split():
    rng = random.Random(7)
    jitter = tuple(rng.uniform(-0.002, 0.002) for _ in H26)
    events, _ = run(edges_for(H26, interval=0.020, jitter=jitter))
    assert [e.bits for e in events] == [H26]


def test_floor_and_ceiling_bound_the_end_gap():
    dec = EdgeDecoder(Timing(floor=0.004, ceiling=0.010))
    dec.falling(0, 0.0)
    assert dec.next_deadline() == pytest.approx(0.010)  # one bit: the ceiling
    dec.falling(1, 0.0002)
    assert dec.next_deadline() == pytest.approx(0.0042)  # 2.5 × 0.2 ms < floor
    dec.falling(1, 0.0102)
    assert dec.next_deadline() == pytest.approx(0.0202)  # 2.5 × 10 ms > ceiling


def test_late_timer_never_merges_frames():
    dec = EdgeDecoder()
    for line, level, t in edges_for("1010", interval=0.001):
        dec.edge(line, level, t)
    # nobody called tick(); the next frame's first edge closes the first frame
    events = dec.falling(0, 0.030)
    assert [e.bits for e in events] == ["1010"] and dec.pending == 1


def test_coincident_edges_are_one_glitch():
    edges = [(1, 0, 0.0), (0, 0, 0.002), (1, 0, 0.002 + 3e-6), (1, 0, 0.004), (0, 0, 0.006), (1, 0, 0.008)]
    events, _ = run(edges)
    assert isinstance(events[0], Glitch) and events[0].reason == "coincident_edges"
    (frame,) = [e for e in events if isinstance(e, Frame)]
    assert frame.bits == "1101" and frame.glitches == 1


def test_short_pulse_dropped_when_rising_edges_are_fed():
    edges = edges_for("0110", interval=0.002)
    edges += [(0, 0, 0.003), (0, 1, 0.003 + 2e-6)]  # a 2 µs spike between bits
    events, _ = run(edges)
    assert [type(e) for e in events] == [Glitch, Frame]
    assert events[1].bits == "0110"


def test_short_burst_and_overflow_discarded():
    events, _ = run([(1, 0, 0.0), (0, 0, 0.001)])
    assert events == [Discarded(bits="10", first=0.0, last=0.001, reason="short_burst")]
    events, _ = run(edges_for("1" * 40, interval=0.001), timing=Timing(max_bits=32))
    assert isinstance(events[0], Discarded) and events[0].reason == "too_long" and len(events[0].bits) == 33


def test_truncated_frame_is_delivered_as_is_for_the_format_layer():
    events, _ = run(edges_for(H26[:-3], interval=0.002))
    assert events[0].bits == H26[:-3]
    assert LIBRARY.decode(events[0].bits).reason == "no format of 23 bits"


@pytest.mark.parametrize("bad", [{"k": 1.0}, {"floor": 0.0}, {"floor": 0.2, "ceiling": 0.1}, {"min_bits": 0}])
def test_timing_validated(bad):
    with pytest.raises(ValueError):
        Timing(**bad)


def test_bad_line_rejected():
    with pytest.raises(ValueError, match="D0"):
        EdgeDecoder().falling(2, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(st.text(alphabet="01", min_size=4, max_size=64), min_size=1, max_size=4),
    interval=st.floats(min_value=200e-6, max_value=0.020),
    jitter=st.floats(min_value=0.0, max_value=0.15),
    pulse=st.floats(min_value=20e-6, max_value=100e-6),
    seed=st.integers(0, 2**32 - 1),
)
def test_jittered_streams_across_sia_ranges(frames, interval, jitter, pulse, seed):
    """Any frames, any SIA interval/pulse, ±15 % jitter, gaps ≥ max(20 ms, 4 intervals): no split, no merge."""
    rng = random.Random(seed)
    edges, t = [], 0.0
    for bits in frames:
        jit = tuple(rng.uniform(-jitter, jitter) * interval for _ in bits)
        edges += edges_for(bits, start=t, interval=interval, pulse=min(pulse, interval / 3), jitter=jit)
        t += (len(bits) - 1) * interval + max(0.020, 4 * interval) * (1 + jitter) + 0.003
    events, decided = run(edges)
    assert [e.bits for e in events] == frames
    for e, d in zip(events, decided, strict=True):
        assert d - e.last <= max(Timing().k * interval * (1 + 2 * jitter), Timing().floor) + 1e-9


@pytest.mark.parametrize("make", [
    lambda: Frame(bits="", first=0.0, last=0.0, interval=None),
    lambda: Frame(bits="012", first=0.0, last=0.0, interval=None),
    lambda: Frame(bits="01", first=1.0, last=0.5, interval=None),
    lambda: Glitch(line=2, time=0.0, reason="short_pulse"),
    lambda: Discarded(bits="1", first=0.0, last=0.0, reason="tired"),
])
def test_events_are_validated_when_built(make):
    with pytest.raises(ValueError):
        make()
