"""The event socket under load: 1 fast and 20 stuck subscribers while events are
published as fast as the loop can; events/s, status latency during the load, and
``accessd-cli status`` start-up time.  Prints a table (medians and p99)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accessd.config import parse_config  # noqa: E402
from accessd.shell.daemon import Daemon  # noqa: E402

SECONDS = 5.0
STUCK = 20


def connect(path: str) -> tuple[socket.socket, object]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rb")
    f.readline()
    return s, f


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def serve(tmp: str) -> None:
    """The daemon side, in its own process: publish as fast as possible once all subscribed."""
    config = parse_config(tomllib.loads(f'[daemon]\nsocket = "{tmp}/s.sock"\nstate_dir = "{tmp}/state"\npin_factory = "mock"\n'))
    daemon = Daemon(config)

    async def publisher() -> None:
        while len(daemon.server.subscribers) < STUCK + 1:
            await asyncio.sleep(0.01)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < SECONDS:
            for _ in range(50):
                daemon.publish("door.opened", bench=n)
                n += 1
            await asyncio.sleep(0)  # let requests and writers in, as the reader path would
        elapsed = time.perf_counter() - t0
        daemon.log.flush()
        print(json.dumps({"published": n, "elapsed": elapsed}), flush=True)

    async def run() -> None:
        task = asyncio.create_task(daemon.run())
        while daemon.server._server is None:
            await asyncio.sleep(0.01)
        await publisher()
        await task

    asyncio.run(run())


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="accessd-bench-")
    path = f"{tmp}/s.sock"
    child = subprocess.Popen([sys.executable, __file__, "--serve", tmp], stdout=subprocess.PIPE, text=True)
    while not os.path.exists(path):
        time.sleep(0.02)
    time.sleep(0.2)

    stuck = []
    for _ in range(STUCK):
        s, f = connect(path)
        s.sendall(b'{"id":1,"cmd":"subscribe"}\n')
        stuck.append((s, f))  # never read again
    fast_s, fast_f = connect(path)
    received = [0, 0]  # events, missed

    def read_fast() -> None:
        for line in fast_f:
            msg = json.loads(line)
            if "notice" in msg:
                received[1] += msg["missed"]
            elif "seq" in msg:
                received[0] += 1

    threading.Thread(target=read_fast, daemon=True).start()
    latencies = []
    s, f = connect(path)
    fast_s.sendall(b'{"id":1,"cmd":"subscribe","params":{"types":["door.*"]}}\n')
    t_end = time.monotonic() + SECONDS
    while time.monotonic() < t_end:
        t0 = time.perf_counter()
        s.sendall(b'{"id":2,"cmd":"status"}\n')
        f.readline()
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.01)
    stats = json.loads(child.stdout.readline())
    rss_kb = int(next(line for line in open(f"/proc/{child.pid}/status") if line.startswith("VmRSS")).split()[1])

    env = {**os.environ, "ACCESSD_SOCKET": path}
    cli = Path(sys.executable).with_name("accessd-cli")
    startup = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([str(cli), "status"], env=env, stdout=subprocess.DEVNULL, check=True)
        startup.append(time.perf_counter() - t0)
    baseline = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - t0)
    child.terminate()
    child.wait(10)

    rate = stats["published"] / stats["elapsed"]
    print(f"accessd socket benchmark: 1 fast + {STUCK} stuck subscribers, {SECONDS:.0f} s of publishing\n")
    print(f"| {'measure':<48} | {'value':>14} |")
    print(f"|{'-' * 50}|{'-' * 16}|")
    rows = [
        ("events published per second (incl. log append)", f"{rate:,.0f}"),
        ("events received by the fast subscriber", f"{received[0]:,}"),
        ("events it was told it missed", f"{received[1]:,}"),
        ("status request latency p50 during load (ms)", f"{statistics.median(latencies) * 1e3:.2f}"),
        ("status request latency p99 during load (ms)", f"{pct(latencies, 0.99) * 1e3:.2f}"),
        ("status requests answered", f"{len(latencies)}"),
        ("daemon RSS after the run (MB)", f"{rss_kb / 1024:.1f}"),
        ("accessd-cli status start-up, median (ms)", f"{statistics.median(startup) * 1e3:.1f}"),
        ("python -c pass, median (ms), for scale", f"{statistics.median(baseline) * 1e3:.1f}"),
    ]
    for name, value in rows:
        print(f"| {name:<48} | {value:>14} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        main()
