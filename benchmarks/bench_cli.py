"""``accessd-cli`` start-up and the daemon's idle memory, in one run.

Start-up medians (wall time of a whole process, N runs each) of ``--help``, ``status``
(against a running daemon) and ``wiegand formats``, with ``python -c pass`` as the floor
(the interpreter alone); then the idle RSS of a daemon on the demo configuration (mock
GPIO, simulated Wiegand reader, no holders) a few seconds after start.  Prints a table.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = int(os.environ.get("BENCH_CLI_RUNS", "21"))
CLI = Path(sys.executable).with_name("accessd-cli")
DAEMON = Path(sys.executable).with_name("accessd")


def median_ms(argv: list[str], env: dict) -> tuple[float, float]:
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm the caches
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    from accessd.demo import DEMO_CONFIG

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as d:
        config = Path(d) / "accessd.toml"
        config.write_text(DEMO_CONFIG.format(dir=d))
        sock = Path(d) / "accessd.sock"
        env = {**os.environ, "ACCESSD_SOCKET": str(sock)}
        env.pop("NOTIFY_SOCKET", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-code cached, as the package's postinst does
        daemon = subprocess.Popen([str(DAEMON), "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(str(sock))
                    break
                except OSError:
                    time.sleep(0.05)
            rows = [("python -c pass (floor)", median_ms([sys.executable, "-c", "pass"], env))]
            for args in (["--help"], ["status"], ["wiegand", "formats"]):
                rows.append((f"accessd-cli {' '.join(args)}", median_ms([str(CLI), *args], env)))
            time.sleep(max(0.0, 3 - (time.monotonic() - deadline + 20)))
            rss = rss_kib(daemon.pid)
        finally:
            daemon.terminate()
            daemon.wait(10)
    print(f"accessd-cli start-up, {RUNS} runs each ({sys.executable}, Python {sys.version.split()[0]})")
    print(f"{'command':<28} {'median ms':>10} {'p90 ms':>8}")
    for name, (med, p90) in rows:
        print(f"{name:<28} {med:>10.1f} {p90:>8.1f}")
    print(f"daemon idle RSS (demo config, no holders): {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
