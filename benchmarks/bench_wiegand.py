"""Wiegand: end-of-frame decision latency and split/merge errors; decode/encode throughput.

Recorded edge streams (seeded, reproducible): readers with 1 ms, 2 ms and 20 ms
bit intervals, each bit jittered uniformly by ±10 % of the interval, 50 µs
pulses, frames of 26/34/35/37/48 bits (random valid cards).  The silence after a
frame is 20–60 ms for the 1 ms and 2 ms readers (the SIA minimum between frames
is 20 ms) and 100–300 ms for the 20 ms reader (a frame lasts 0.5–1 s there).

Every decoder sees the same falling edges:

* ``adaptive``: protocols.wiegand.decoder.EdgeDecoder with its defaults
  (k = 2.5 × the frame's largest bit interval, floor 1 ms, ceiling 60 ms);
  its timer fires exactly at ``next_deadline()``;
* ``fixed 5 ms`` (the pigpio example), ``fixed 25 ms`` and ``fixed 100 ms``
  (ESPHome / Tasmota style): a frame ends after that much silence.

Latency is from the frame's last bit to the decision (simulated time, so the
table shows the algorithm, not this machine's scheduler).  *splits* counts
sent frames decided as more than one frame; *merged* counts sent frames that
ended up inside a decided frame holding more than one sent frame.

Run: ``.venv/bin/python benchmarks/bench_wiegand.py``
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accessd.protocols.wiegand.decoder import EdgeDecoder, Timing, edges_for  # noqa: E402
from accessd.protocols.wiegand.formats import LIBRARY  # noqa: E402
from accessd.protocols.wiegand.keypress import KeypressFormat  # noqa: E402

FORMATS = ("H10301", "H10306", "C1k35s", "H10304", "C1k48s")
FRAMES = 300
JITTER = 0.10


def stream(interval: float, gap: tuple[float, float], seed: int):
    """[(frame_bits, [falling edge times])] with the edges of all frames on one time line."""
    rng = random.Random(seed)
    t = 1.0
    out = []
    for _ in range(FRAMES):
        fmt = LIBRARY.get(rng.choice(FORMATS))
        values = {f.name: rng.randint(0, f.maximum) for f in fmt.fields}
        bits = fmt.encode(**values)
        jit = [rng.uniform(-JITTER, JITTER) * interval for _ in bits]
        edges = edges_for(bits, start=t, interval=interval, jitter=tuple(jit))
        out.append((bits, edges))
        t = edges[-1][2] + rng.uniform(*gap)
    return out


def run_adaptive(frames, timing=None):
    dec = EdgeDecoder(timing)
    decided = []  # (bits, first, last, decided_at)
    for _, edges in frames:
        for line, level, t in edges:
            d = dec.next_deadline()
            if d is not None and d <= t:
                for f in dec.tick(d):
                    decided.append((f.bits, f.first, f.last, d))
            for f in dec.edge(line, level, t):  # a late edge closes the frame itself
                decided.append((f.bits, f.first, f.last, t))
    d = dec.next_deadline()
    if d is not None:
        for f in dec.tick(d):
            decided.append((f.bits, f.first, f.last, d))
    return decided


def run_fixed(frames, timeout: float):
    decided = []
    bits, times = [], []
    for _, edges in frames:
        for line, level, t in edges:
            if level != 0:
                continue
            if times and t - times[-1] >= timeout:
                decided.append(("".join(bits), times[0], times[-1], times[-1] + timeout))
                bits, times = [], []
            bits.append("1" if line else "0")
            times.append(t)
    if times:
        decided.append(("".join(bits), times[0], times[-1], times[-1] + timeout))
    return decided


def score(frames, decided, interval):
    sent = [(edges[0][2], edges[-2][2], bits) for bits, edges in frames]  # first/last falling edge
    correct = 0
    latencies = []
    pieces_of = [0] * len(sent)
    merged = set()
    for bits, first, last, at in decided:
        inside = [i for i, (a, b, _) in enumerate(sent) if first <= b and last >= a]
        if len(inside) > 1:
            merged.update(inside)
        for i in inside:
            pieces_of[i] += 1
        if len(inside) == 1 and sent[inside[0]][2] == bits:
            correct += 1
            latencies.append(at - last)
    splits = sum(1 for n in pieces_of if n > 1)
    if latencies:
        med = statistics.median(latencies)
        p99 = sorted(latencies)[int(0.99 * (len(latencies) - 1))]
    else:
        med = p99 = float("nan")
    return {"correct": correct, "splits": splits, "merges": len(merged), "median_ms": med * 1e3,
            "p99_ms": p99 * 1e3, "median_bits": med / interval}


def bench_latency() -> None:
    cases = [(0.001, (0.020, 0.060), 1), (0.002, (0.020, 0.060), 2), (0.020, (0.100, 0.300), 3)]
    print(f"## End of frame: {FRAMES} frames per reader, ±{JITTER:.0%} jitter\n")
    print("| reader interval | decoder | correct | split | merged | median ms | p99 ms | median / interval |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for interval, gap, seed in cases:
        frames = stream(interval, gap, seed)
        rows = [("adaptive (ours)", run_adaptive(frames))]
        for timeout in (0.005, 0.025, 0.100):
            rows.append((f"fixed {timeout * 1000:g} ms", run_fixed(frames, timeout)))
        for name, decided in rows:
            s = score(frames, decided, interval)
            def num(x):
                return "—" if x != x else f"{x:.2f}"  # nan: no frame decided correctly

            print(f"| {interval * 1000:g} ms | {name} | {s['correct']}/{FRAMES} | {s['splits']} | {s['merges']} | "
                  f"{num(s['median_ms'])} | {num(s['p99_ms'])} | {num(s['median_bits'])} |")
    print()


def per_second(fn, n: int) -> tuple[float, float]:
    """(median µs per call over 5 runs, calls per second)."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n)
    med = statistics.median(runs)
    return med * 1e6, 1 / med


def bench_throughput() -> None:
    h26 = LIBRARY.encode("H10301", facility_code=90, card_number=324)
    c48 = LIBRARY.encode("C1k48s", facility_code=12345, card_number=678901)
    fmt26 = LIBRARY.get("H10301")
    kp = KeypressFormat(name="EightBitInvertPadded")
    edges26 = edges_for(h26, interval=0.001)

    def edges_through_decoder():
        dec = EdgeDecoder(Timing())
        for line, level, t in edges26:
            dec.edge(line, level, t)
        dec.flush()

    cases = [
        ("decode auto, H10301 (26 bits, every 26-bit format tried)", lambda: LIBRARY.decode(h26), 20000),
        ("decode auto, C1k48s (48 bits)", lambda: LIBRARY.decode(c48), 20000),
        ("read one format (H10301)", lambda: fmt26.read(h26), 20000),
        ("encode H10301", lambda: LIBRARY.encode("H10301", facility_code=90, card_number=324), 20000),
        ("encode C1k48s", lambda: LIBRARY.encode("C1k48s", facility_code=12345, card_number=678901), 20000),
        ("keypress decode, 1 frame (8 bits)", lambda: kp.decode_frame("11100001"), 20000),
        ("edge decoder, one 26-bit frame (52 edges)", edges_through_decoder, 5000),
    ]
    print("## Throughput (median of 5 runs, this machine)\n")
    print("| operation | µs per call | calls per second |")
    print("|---|---:|---:|")
    for name, fn, n in cases:
        us, rate = per_second(fn, n)
        print(f"| {name} | {us:.1f} | {rate:,.0f} |")
    print()


if __name__ == "__main__":
    bench_latency()
    bench_throughput()
