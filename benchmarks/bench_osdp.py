"""OSDP control panels against the same libosdp reader: card-to-decision latency and idle CPU.

One run measures, one after the other, against a libosdp ``PeripheralDevice``
(PyPI ``libosdp``, run in this process on a fresh pty for each peer):

* ``accessd thread``: our CP (protocols/osdp/cp.py) on its bus thread
  (accessd/readers/osdp.BusThread), cards handed to an asyncio loop — the daemon's path;
* ``accessd loop``: the same CP driven from the asyncio loop (readers/osdp.BusLoop);
* ``… +busy loop``: both again while the loop is busy 2 ms of every 10 ms
  (socket clients, event log): what the daemon's loop looks like under load;
* ``libosdp CP``: libosdp's ``ControlPanel`` with its defaults (20 ms refresh);
* ``osdp (pure Python)``: PyPI ``osdp`` 1.6's ``ControlPanel``.

Each CP runs in its own process; the two peers that import as ``osdp`` each get a
venv under benchmarks/.venvs/ (created on first run, gitignored).  Plaintext for
all (the pure-Python package derives its SCBK from a master key, not a fixed one),
then our CP and libosdp's again with the secure channel on a configured SCBK.
115200 baud (a pty ignores it; the pure-Python package waits 16 character times
per poll, 14 ms at this speed).

Latency: from ``submit_event`` of a card on the reader to the CP's application
code seeing its bits (CLOCK_MONOTONIC in both processes), CARDS cards per peer at
random phases.  Idle CPU: the CP process's user+system time over IDLE (10) seconds,
online and polling, no cards, in % of one core.

Run: ``.venv/bin/python benchmarks/bench_osdp.py --classic`` (about 4.5 minutes).

Without ``--classic`` (the default) it measures the multi-drop bus on a paced line
(benchmarks/paced_line.py: each byte 10 bits / baud on a half-duplex wire, a PD
turnaround, libosdp PDs serviced every 1 ms): 1, 3 and 8 PDs and 3 PDs with one
silent, at 9600 and 115200 baud, our CP (on its bus thread) against libosdp's CP, each
next to the wire limit an ideal CP reaches (paced_line.wire_limit), per-PD medians,
p99, lost cards and lost replies (timeouts of live PDs), in one run of about 4 minutes.
"""

from __future__ import annotations

import os
import pty
import random
import statistics
import subprocess
import sys
import threading
import time
import tty
import venv
from pathlib import Path

import osdp

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(__file__).resolve().parent / ".venvs"
CARDS = 100
IDLE = 10.0
KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
BAUD = 115200

PEERS = {"libosdp": ["libosdp==3.2.9", "pyserial>=3.5"], "pyosdp": ["osdp==1.6"]}

# ----------------------------------------------------------------------------- CP programs (run as -c)
OURS = r'''
import asyncio, os, sys, time
sys.path.insert(0, sys.argv[1])
from accessd.readers.osdp import BusThread, BusLoop
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from accessd.wiring.serial_port import SerialPort
port_name, mode, key, busy = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "busy"
scbk = bytes.fromhex(key) if key != "-" else None

async def main():
    loop = asyncio.get_running_loop()
    cp = ControlPanel([PdConfig(address=1, scbk=scbk)], random=os.urandom, now=time.monotonic(), baud=115200)
    port = SerialPort(port_name, baud=115200).open()
    def on_events(events):
        now = time.monotonic()
        for e in events:
            if isinstance(e, ev.CardRead):
                print("CARD", e.bits, repr(now), flush=True)
            elif isinstance(e, ev.Online):
                print("ONLINE", flush=True)
    if mode == "thread":
        bus = BusThread(cp, port, lambda evs: loop.call_soon_threadsafe(on_events, evs))
    else:
        bus = BusLoop(cp, port, on_events, loop)
    bus.start()
    if busy:
        async def load():
            while True:
                end = time.monotonic() + 0.002
                while time.monotonic() < end:
                    pass
                await asyncio.sleep(0.008)
        loop.create_task(load())
    await loop.run_in_executor(None, sys.stdin.readline)
    bus.stop()

asyncio.run(main())
'''

LIBOSDP = r'''
import os, sys, time, serial, osdp
port_name, key = sys.argv[2], sys.argv[4]

class Chan(osdp.Channel):
    def __init__(self, s):
        super().__init__(); self.s = s
    def read(self, n):
        return self.s.read(min(n, self.s.in_waiting)) if self.s.in_waiting else b""
    def write(self, b):
        return self.s.write(b)
    def flush(self):
        pass

s = serial.Serial(port_name, 115200, timeout=0)
def handler(pd, event):
    if event.get("event") == osdp.Event.CardRead:
        now = time.monotonic()
        data, n = event["data"], event["length"]
        bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")[:n]
        print("CARD", bits, repr(now), flush=True)
    return 0
info = osdp.PDInfo(1, Chan(s), scbk=bytes.fromhex(key) if key != "-" else None)
cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Emergency, event_handler=handler)
cp.start()
while not cp.is_online(1):
    time.sleep(0.01)
print("ONLINE", flush=True)
sys.stdin.readline()
cp.stop()
'''

PYOSDP = r'''
import logging, sys, time, threading
import osdp
logging.getLogger("osdp").setLevel(logging.CRITICAL)
port_name = sys.argv[2]

class Cp(osdp.ControlPanel):
    def on_raw_card_data_reply_received(self, address, raw):
        now = time.monotonic()
        n = raw.bit_count
        bits = format(int.from_bytes(raw.data, "big"), f"0{len(raw.data) * 8}b")[:n]
        print("CARD", bits, repr(now), flush=True)

cp = Cp()
conn = osdp.SerialPortOsdpConnection(port_name, 115200)
cid = cp.start_connection(conn)
cp.add_device(cid, 1, True, False)
while not cp.is_online(cid, 1):
    time.sleep(0.01)
print("ONLINE", flush=True)
sys.stdin.readline()
cp.shutdown()
import os; os._exit(0)
'''


def peer_python(name: str) -> str:
    """The python of the venv for peer ``name``, created (and installed) on first use."""
    d = VENVS / name
    py = d / "bin" / "python"
    if not py.exists():
        print(f"creating {d} with {' '.join(PEERS[name])} …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(d)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PEERS[name]], check=True)
    return str(py)


# ----------------------------------------------------------------------------- the reader side
class Channel(osdp.Channel):
    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        os.set_blocking(fd, False)

    def read(self, n: int) -> bytes:
        try:
            return os.read(self.fd, n)
        except (BlockingIOError, OSError):
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, bytes(buf))
        except OSError:
            return 0

    def flush(self) -> None:
        pass


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_peer(label: str, argv: list[str], *, scbk: bytes | None) -> dict:
    master, slave = pty.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    info = osdp.PDInfo(1, Channel(master), scbk=scbk, flags=[osdp.LibFlag.EnforceSecure] if scbk else [])
    caps = osdp.PDCapabilities([(osdp.Capability.CommunicationSecurity, 1, 1), (osdp.Capability.CheckCharacter, 1, 0),
                                (osdp.Capability.LEDControl, 1, 1)])
    pd = osdp.PeripheralDevice(info, caps, log_level=osdp.LogLevel.Emergency)
    pd.start()
    proc = subprocess.Popen(argv[:3] + [str(ROOT), port] + argv[3:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    lines: list[str] = []
    got = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line.strip())
            got.set()

    threading.Thread(target=reader, daemon=True).start()
    end = time.monotonic() + 15
    while "ONLINE" not in lines and time.monotonic() < end:
        got.wait(0.1)
        got.clear()
    result = {"label": label, "online": "ONLINE" in lines}
    if result["online"]:
        time.sleep(1.0)  # settle
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(IDLE)
        result["idle_cpu"] = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        rng = random.Random(7)
        sent: dict[str, float] = {}
        for i in range(CARDS):
            bits = format(i | 0x200000, "026b")
            data = int(bits + "000000", 2).to_bytes(4, "big")
            t = time.monotonic()
            pd.submit_event({"event": osdp.Event.CardRead, "reader_no": 0, "format": osdp.CardFormat.Wiegand,
                             "direction": 0, "data": data, "length": 26})
            sent[bits] = t
            time.sleep(0.12 + rng.random() * 0.1)
        time.sleep(0.5)
        lat = []
        for line in lines:
            if line.startswith("CARD "):
                _, bits, when = line.split()
                if bits in sent:
                    lat.append((float(when) - sent.pop(bits)) * 1000)
        result["lost"] = len(sent)
        if lat:
            lat.sort()
            result["median"] = statistics.median(lat)
            result["p99"] = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
            result["n"] = len(lat)
    try:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
    pd.stop()
    os.close(master)
    os.close(slave)
    return result


def classic() -> None:
    ours = [sys.executable, "-c", OURS]
    lib = [peer_python("libosdp"), "-c", LIBOSDP]
    pure = [peer_python("pyosdp"), "-c", PYOSDP]
    key = KEY.hex()
    runs = [
        ("accessd thread", ours + ["thread", "-", "idle"], None),
        ("accessd loop", ours + ["loop", "-", "idle"], None),
        ("accessd thread +busy loop", ours + ["thread", "-", "busy"], None),
        ("accessd loop +busy loop", ours + ["loop", "-", "busy"], None),
        ("libosdp CP", lib + ["-", "-"], None),
        ("osdp (pure Python) CP", pure + ["-", "-"], None),
        ("accessd thread, SC", ours + ["thread", key, "idle"], KEY),
        ("libosdp CP, SC", lib + ["-", key], KEY),
    ]
    results = []
    for label, argv, scbk in runs:
        print(f"… {label}", file=sys.stderr, flush=True)
        results.append(run_peer(label, argv, scbk=scbk))
    base = {r["label"]: r for r in results}
    print(f"\nOSDP card-to-decision latency ({CARDS} cards each) and idle CPU; a libosdp PD on a pty;"
          f" {os.cpu_count()} cores; '+busy loop' CPU includes the loop's synthetic 20 % load")
    print(f"{'control panel':28} {'median ms':>9} {'p99 ms':>8} {'lost':>5} {'idle CPU %':>10} {'median vs libosdp':>18}")
    for r in results:
        if not r["online"] or "median" not in r:
            print(f"{r['label']:28} {'never online' if not r['online'] else 'no cards':>9}")
            continue
        peer = base["libosdp CP, SC"] if "SC" in r["label"] else base["libosdp CP"]
        ratio = r["median"] / peer["median"] if peer.get("median") else float("nan")
        print(f"{r['label']:28} {r['median']:9.1f} {r['p99']:8.1f} {r['lost']:5d} {r['idle_cpu']:10.2f} {ratio:17.2f}x")


# ----------------------------------------------------------------------------- the paced multi-drop line
OURS_MULTI = r'''
import json, os, sys, time, threading
sys.path.insert(0, sys.argv[1])
from accessd.readers.osdp import BusThread
from accessd.protocols.osdp import events as ev
from accessd.protocols.osdp.cp import ControlPanel, PdConfig
from accessd.wiring.serial_port import SerialPort
port_name, baud, addrs, live, gap = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], float(sys.argv[6])
addrs = [int(a) for a in addrs.split(",")]
live = [int(a) for a in live.split(",")]
cp = ControlPanel([PdConfig(address=a) for a in addrs], random=os.urandom, now=time.monotonic(), baud=baud,
                  switch_gap=gap)
port = SerialPort(port_name, baud=baud).open()
def deliver(events):
    now = time.monotonic()
    for e in events:
        if isinstance(e, ev.CardRead):
            print("CARD", e.bits, repr(now), flush=True)
bus = BusThread(cp, port, deliver)
bus.start()
while not all(bus.info(a)["state"] == "online" for a in live):
    time.sleep(0.01)
print("ONLINE", flush=True)
sys.stdin.readline()
print("STATS", json.dumps({a: bus.info(a) for a in addrs}), flush=True)
bus.stop()
'''

LIBOSDP_MULTI = r'''
import sys, time, serial, osdp
port_name, baud, addrs, live = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
addrs = [int(a) for a in addrs.split(",")]
live = [int(a) for a in live.split(",")]

class Chan(osdp.Channel):
    def __init__(self, s):
        super().__init__(); self.s = s
    def read(self, n):
        return self.s.read(min(n, self.s.in_waiting)) if self.s.in_waiting else b""
    def write(self, b):
        return self.s.write(b)
    def flush(self):
        pass

s = serial.Serial(port_name, baud, timeout=0)
ch = Chan(s)
def handler(pd, event):
    if event.get("event") == osdp.Event.CardRead:
        now = time.monotonic()
        data, n = event["data"], event["length"]
        bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")[:n]
        print("CARD", bits, repr(now), flush=True)
    return 0
cp = osdp.ControlPanel([osdp.PDInfo(a, ch) for a in addrs], log_level=osdp.LogLevel.Emergency,
                       event_handler=handler)
cp.start()
while not all(cp.is_online(a) for a in live):
    time.sleep(0.01)
print("ONLINE", flush=True)
sys.stdin.readline()
print("STATS {}", flush=True)
cp.stop()
'''

PACED_CAPS = [(osdp.Capability.CheckCharacter, 1, 0), (osdp.Capability.LEDControl, 1, 1),
              (osdp.Capability.AudibleControl, 1, 1)]


def run_paced(label: str, argv: list[str], *, baud: int, live: list[int], silent: list[int], cards: int,
              turnaround: float) -> dict:
    import json

    from paced_line import PacedLine

    line = PacedLine(baud, turnaround=turnaround)
    pds = {a: line.add_pd(a, PACED_CAPS) for a in live}
    addrs = ",".join(str(a) for a in [*live, *silent])
    proc = subprocess.Popen(argv[:3] + [str(ROOT), line.port, str(baud), addrs, ",".join(map(str, live))]
                            + argv[3:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, bufsize=1)
    lines: list[str] = []
    got = threading.Event()

    def reader():
        for text in proc.stdout:
            lines.append(text.strip())
            got.set()

    threading.Thread(target=reader, daemon=True).start()
    end = time.monotonic() + 30
    while "ONLINE" not in lines and time.monotonic() < end:
        got.wait(0.1)
        got.clear()
    result = {"label": label, "online": "ONLINE" in lines, "per_pd": {}}
    if result["online"]:
        time.sleep(1.0 + (2.0 if silent else 0.0))  # settle; a silent PD goes offline first (probe regime)
        rng = random.Random(11)
        sent: dict[str, tuple[int, float]] = {}
        for i in range(cards):
            a = live[i % len(live)] if len(live) > 1 else live[0]
            bits = format(a, "06b") + format(i, "020b")
            data = int(bits + "000000", 2).to_bytes(4, "big")
            t = time.monotonic()
            with pds[a].lock:
                pds[a].ctx.submit_event({"event": osdp.Event.CardRead, "reader_no": 0,
                                         "format": osdp.CardFormat.Wiegand, "direction": 0, "data": data,
                                         "length": 26})
            sent[bits] = (a, t)
            time.sleep(0.05 + rng.random() * 0.15)
        time.sleep(2.0)
        lat: dict[int, list[float]] = {a: [] for a in live}
        for text in list(lines):
            if text.startswith("CARD "):
                _, bits, when = text.split()
                if bits in sent:
                    a, t = sent.pop(bits)
                    lat[a].append((float(when) - t) * 1000)
        result["lost_cards"] = len(sent)
        for a, v in lat.items():
            if v:
                v.sort()
                result["per_pd"][a] = (statistics.median(v), v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))])
        every = sorted(x for v in lat.values() for x in v)
        if every:
            result["median"] = statistics.median(every)
            result["p99"] = every[min(len(every) - 1, int(round(0.99 * (len(every) - 1))))]
    try:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
    for text in lines:
        if text.startswith("STATS "):
            stats = json.loads(text[6:])
            if stats:
                result["lost_replies"] = sum(stats[str(a)]["timeouts"] for a in live)
                result["commands"] = sum(stats[str(a)]["sent"] for a in live)
    line.close()
    return result


def paced(bauds=(9600, 115200), counts=(1, 3, 8), turnaround=0.002, gap=0.002) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from paced_line import wire_limit

    ours = [sys.executable, "-c", OURS_MULTI]
    lib = [peer_python("libosdp"), "-c", LIBOSDP_MULTI]
    setups = [(f"{n} PD{'s' if n > 1 else ''}", list(range(n)), []) for n in counts]
    setups.append(("3 PDs, one silent", [0, 2], [1]))
    rows = []
    for baud in bauds:
        for name, live, silent in setups:
            cards = 24 * len(live) if len(live) < 8 else 96
            # the PD's reply delay on this line: its turnaround, the idle-line character, half a service period
            limit = wire_limit(len(live), baud, turnaround + 10 / baud + 0.0005, silent=len(silent))
            for who, argv in (("accessd", ours + [str(gap)]), ("libosdp CP", lib)):
                print(f"… {baud} baud, {name}, {who}", file=sys.stderr, flush=True)
                r = run_paced(who, argv, baud=baud, live=live, silent=silent, cards=cards, turnaround=turnaround)
                rows.append((baud, name, who, r, limit))
    print(f"\nOSDP on a paced line (10 bits/baud, PD turnaround {turnaround * 1000:g} ms, libosdp PDs serviced every"
          f" 1 ms); card-to-decision ms; accessd switch_gap {gap * 1000:g} ms; {os.cpu_count()} cores")
    for baud in bauds:
        print(f"wire limit at {baud}: " + ", ".join(
            f"{n} PDs {wire_limit(n, baud, turnaround + 10 / baud + 0.0005)['median'] * 1000:.1f}"
            f" / {wire_limit(n, baud, turnaround + 10 / baud + 0.0005)['p99'] * 1000:.1f} ms" for n in (1, 3, 8)))
    print("| baud | PDs | CP | median | p99 | per-PD medians | lost cards | lost replies | wire limit median / p99 |"
          " vs limit | vs libosdp |")
    print("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|")
    by = {(b, n, w): r for b, n, w, r, _ in rows}
    for baud, name, who, r, limit in rows:
        if "median" not in r:
            print(f"| {baud} | {name} | {who} | {'never online' if not r['online'] else 'no cards'} |")
            continue
        per = ", ".join(f"{m:.1f}" for m, _ in r["per_pd"].values())
        lib_r = by.get((baud, name, "libosdp CP"), {})
        vs_lib = f"{r['median'] / lib_r['median']:.2f}×" if who == "accessd" and lib_r.get("median") else ""
        lost_rep = f"{r['lost_replies']} / {r['commands']}" if "lost_replies" in r else "–"
        print(f"| {baud} | {name} | {who} | {r['median']:.1f} | {r['p99']:.1f} | {per} | {r['lost_cards']} |"
              f" {lost_rep} | {limit['median'] * 1000:.1f} / {limit['p99'] * 1000:.1f} |"
              f" {r['median'] / (limit['median'] * 1000):.2f}× | {vs_lib} |")


if __name__ == "__main__":
    if "--classic" in sys.argv:
        classic()
    else:
        paced()
