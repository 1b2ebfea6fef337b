"""The MQTT component: the reader path with it on, and how fast a backlog drains.

The real daemon runs in this process on gpiozero's MockFactory (as bench_door.py) with
a real mosquitto on a loopback port (``tests/fleet/conftest.py``'s broker).

* ``present → relay`` (µs, to the moment GPIO22 changes): without ``[mqtt]``, with it
  publishing to a live broker (every grant's events go out while measuring), and with
  the broker unreachable (nothing listens on the port);
* drain: N events logged while the broker is down, then the broker starts: events/s
  until the cursor (PUBACKs, QoS 1) reaches the last seq.

    .venv/bin/python benchmarks/bench_mqtt.py [--n 1000] [--backlog 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accessd.protocols.credential import Credential  # noqa: E402
from gpiozero.pins.mock import MockPin  # noqa: E402

from accessd.config import parse_config  # noqa: E402
from accessd.shell.daemon import Daemon  # noqa: E402
from tests.fleet.conftest import Broker, free_port  # noqa: E402

CONFIG = """
[daemon]
socket = "{dir}/accessd.sock"
state_dir = "{dir}/state"
pin_factory = "mock"
flush_interval = 0.1
event_capacity = 1000000

[door]
relay_pin = 22
access_time = 7
{mqtt}
"""
MQTT = '[mqtt]\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "bench"\nhomeassistant = false\n'

PIN_CHANGES: list[int] = []
_real_change = MockPin._change_state


def _traced(self, value):
    changed = _real_change(self, value)
    if changed and self.info.name == "GPIO22":
        PIN_CHANGES.append(time.perf_counter_ns())
    return changed


MockPin._change_state = _traced


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def started(tmp: str, mqtt: str) -> tuple[Daemon, asyncio.Task]:
    cfg = parse_config(tomllib.loads(CONFIG.format(dir=tmp, mqtt=mqtt)))
    daemon = Daemon(cfg)
    task = asyncio.create_task(daemon.run(signals=False))
    for _ in range(500):
        if daemon.door is not None and daemon._logging and os.path.exists(cfg.daemon.socket):
            break
        await asyncio.sleep(0.01)
    return daemon, task


async def reader_path(tmp: str, mqtt: str, n: int, warmup: int, connected: bool) -> list[float]:
    daemon, task = await started(tmp, mqtt)
    fleet = next((c for c in daemon.components if type(c).__name__ == "Mqtt"), None)
    if connected:
        for _ in range(500):
            if fleet.connected:
                break
            await asyncio.sleep(0.01)
    result = daemon.server.commands["holders.add"].handler({"first_name": "Bench", "card": "02FF2C1", "bit_length": 26})
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result
    cred = Credential.card("02FF2C1", 26)
    gc.collect()
    us = []
    for i in range(warmup + n):
        t0 = time.perf_counter_ns()
        assert daemon.access.present(cred, "reader1").granted
        if i >= warmup:
            us.append((PIN_CHANGES[-1] - t0) / 1000)
        daemon.door.lock()
        await asyncio.sleep(0.002)  # the log commits, the sender publishes meanwhile
    sent = fleet.sent if fleet else 0
    daemon.request_stop()
    await task
    return us, sent


async def drain(tmp: str, backlog: int) -> tuple[float, int]:
    broker = Broker(Path(tmp) / "broker")
    daemon, task = await started(tmp, MQTT.format(port=broker.port))
    fleet = next(c for c in daemon.components if type(c).__name__ == "Mqtt")
    for i in range(backlog):
        daemon.publish("input.changed", name="bench", state="active" if i % 2 else "inactive", previous="x")
        if i % 1000 == 0:
            await asyncio.sleep(0)
    await asyncio.get_running_loop().run_in_executor(None, daemon.log.flush, 60)
    target = daemon._seq
    broker.start()
    t0 = time.perf_counter()
    while fleet.cursor < target:
        await asyncio.sleep(0.01)
        if time.perf_counter() - t0 > 300:
            break
    elapsed = time.perf_counter() - t0
    drained = fleet.cursor
    daemon.request_stop()
    await task
    broker.stop()
    return elapsed, drained


async def run(n: int, warmup: int, backlog: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("no [mqtt]", *await reader_path(f"{tmp}/a", "", n, warmup, False)))
        broker = Broker(Path(tmp) / "broker").start()
        try:
            rows.append(("broker up (publishing)", *await reader_path(f"{tmp}/b", MQTT.format(port=broker.port), n, warmup, True)))
        finally:
            broker.stop()
        rows.append(("broker unreachable", *await reader_path(f"{tmp}/c", MQTT.format(port=free_port()), n, warmup, False)))
        elapsed, drained = await drain(f"{tmp}/d", backlog)
    print(f"bench_mqtt: {n} grants per row (after {warmup} warm-up), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, paho-mqtt, mosquitto on loopback")
    print()
    print("| present → relay | n | p50 µs | p99 µs | max µs | events sent over MQTT |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, us, sent in rows:
        print(f"| {name} | {len(us)} | {statistics.median(us):.1f} | {pct(us, 0.99):.1f} | {max(us):.1f} | {sent} |")
    print()
    print(f"backlog drain (QoS 1, max_inflight 200, batch 500): {drained} events in {elapsed:.2f} s "
          f"= {drained / elapsed:,.0f} events/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--backlog", type=int, default=20000)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    asyncio.run(run(args.n, args.warmup, args.backlog))


if __name__ == "__main__":
    main()
