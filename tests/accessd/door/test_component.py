"""The door component on gpiozero's MockFactory: relay, inputs, timers, watchdog, commands.

In-process tests use a small stand-in for the daemon (the contract's attributes only)
with a patched clock; the SIGTERM and simulate tests run the real daemon in a subprocess.
"""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from accessd.config import parse_config
from accessd.door import component as doorctl
from accessd.errors import CommandError
from accessd.shell import daemon as daemon_mod
from accessd.shell.scheduler import Scheduler

ROOT = Path(__file__).resolve().parents[3]


class RecordingPin(MockPin):
    def __init__(self, factory, info):
        super().__init__(factory, info)
        self.levels: list[bool] = []

    def _change_state(self, value):
        self.levels.append(bool(value))
        return super()._change_state(value)


class Clock:
    def __init__(self, t: float = 500.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeDaemon:
    """The integration contract's surface, nothing more."""

    def __init__(self, config, clock, loop) -> None:
        self.config = config
        self.mock = config.daemon.pin_factory == "mock"
        self.pin_factory = MockFactory(pin_class=RecordingPin)
        self.loop = loop
        self.events: list[tuple[str, dict]] = []
        self.commands: dict = {}
        self.statuses: dict = {}
        self.door = None
        self.readers: dict = {}
        self._clock = clock
        self.scheduler = Scheduler(clock)  # never attached: the tests tick by hand
        self.tz = UTC
        self.wall = time.time
        self.fail_publish: set[str] = set()

    def clock(self) -> float:
        return self._clock()

    def publish(self, type, **fields):  # noqa: A002
        if type in self.fail_publish:
            raise OSError(f"disk full while logging {type}")
        self.events.append((type, fields))
        return {"type": type, **fields}

    def publish_threadsafe(self, type, **fields):  # noqa: A002
        self.loop.call_soon_threadsafe(lambda: self.publish(type, **fields))

    def register_command(self, name, handler, *, privileged=False, audited=None):
        self.commands[name] = handler

    def register_status(self, name, fn):
        self.statuses[name] = fn

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


BASE = """
[daemon]
pin_factory = "mock"
[door]
relay_pin = 22
access_time = 5
contact_pin = 23
rex_pin = 24
tamper_pin = 25
open_too_long = 20
prealarm = 5
debounce = 0.05
"""


@pytest.fixture
def loop():
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture
def make(loop):
    made = []

    def build(extra: str = "", base: str = BASE, clock: Clock | None = None, **kw):
        import tomllib

        cfg = parse_config(tomllib.loads(base + extra))
        d = FakeDaemon(cfg, clock or Clock(), loop)
        ctl = doorctl.DoorController(d, **kw) if kw else doorctl.create(d)
        made.append((d, ctl))
        return d, ctl

    yield build
    for d, ctl in made:
        ctl.close()
        d.pin_factory.reset()
        d.pin_factory.close()
    gc.collect()  # see tests/wiring/test_inputs.py: gpiozero's shared SPI cache


def run_ready(loop) -> None:
    """Run the callbacks that input threads queued with call_soon_threadsafe."""
    loop.run_until_complete(asyncio.sleep(0))


def pin(d, n):
    return d.pin_factory.pin(n)


def set_input(d, ctl, name, state, clock):
    """Drive an input's mock pin like the wire would, then let debounce pass."""
    ctl._drive_mock_pin(ctl.inputs[name], state)
    run_ready(ctl.daemon.loop)
    clock.t += ctl.inputs[name].debounce
    ctl._tick()


# --- start-up -------------------------------------------------------------------------------


def test_door_component_is_built_first(tmp_path):
    import tomllib

    from accessd.door.component import DoorController

    cfg = parse_config(tomllib.loads(f'[daemon]\npin_factory = "mock"\nstate_dir = "{tmp_path}"\n'
                                     f'socket = "{tmp_path}/s"\n[reader]\nprotocol = "wiegand"\n[door]\nrelay_pin = 22\n'))
    d = daemon_mod.Daemon(cfg)
    d.pin_factory = MockFactory()
    d._build()
    try:
        assert isinstance(d.components[0], DoorController) and d.components[0] is d.door
        assert d.access.door is d.door and d.readers["reader1"] in d.components[1].readers
    finally:
        for c in reversed(d.components):
            close = getattr(c, "close", None)
            if close:
                close()
        d.access.store.close()
        d.pin_factory.close()


@pytest.mark.parametrize("normal_state, locked", [("open", False), ("closed", True)])
def test_relay_at_normal_from_construction(make, normal_state, locked):
    d, ctl = make(f'normal_state = "{normal_state}"\n')
    relay_pin = pin(d, 22)
    assert relay_pin.function == "output" and relay_pin.state is locked
    assert (not locked) not in relay_pin.levels  # never showed the unlocked level
    assert set(d.commands) == {"door.unlock", "door.lock", "door.lockdown", "simulate.input"}
    assert d.statuses["relay"]()["state"] == "locked"
    assert set(d.statuses["inputs"]()) == {"contact", "rex", "tamper"}
    assert d.statuses["door"]()["contact"] == "closed"  # mock inputs start at rest


def test_relay_is_locked_and_released_when_inputs_fail(loop, monkeypatch):
    import tomllib

    from accessd.wiring import inputs as wiring_inputs

    def broken(*a, **kw):
        raise RuntimeError("contact wiring")

    monkeypatch.setattr(wiring_inputs, "DigitalInput", broken)
    d = FakeDaemon(parse_config(tomllib.loads(BASE)), Clock(), loop)
    with pytest.raises(RuntimeError, match="contact wiring"):
        doorctl.create(d)
    relay_pin = pin(d, 22)
    assert True not in relay_pin.levels  # locked all along
    assert relay_pin.function == "input" and relay_pin.pull == "down"  # released, held locked
    d.pin_factory.close()


def test_relay_claimed_before_inputs(make, monkeypatch):
    from accessd.wiring import inputs as wiring_inputs

    seen = {}
    real = wiring_inputs.DigitalInput

    def spy(name, pin_no, **kw):
        factory = kw["pin_factory"]
        seen.setdefault("relay", (factory.pin(22).function, factory.pin(22).state))
        return real(name, pin_no, **kw)

    monkeypatch.setattr(wiring_inputs, "DigitalInput", spy)
    make()
    assert seen["relay"] == ("output", False)


# --- grants, timers, contact ---------------------------------------------------------------------


def test_grant_unlocks_and_timer_relocks(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    ctl.grant(seconds=None, holder={"id": 1, "first_name": "Alice", "last_name": None}, reader="reader1")
    assert pin(d, 22).state is True and ctl.relay.unlocked
    assert d.events[-1][0] == "door.unlocked" and d.events[-1][1]["holder"]["first_name"] == "Alice"
    assert ctl.door.next_deadline() == 505.0
    clock.t = 504.9
    ctl._tick()
    assert pin(d, 22).state is True
    clock.t = 505.0
    ctl._tick()
    assert pin(d, 22).state is False
    assert d.events[-1] == ("door.locked", {"reason": "timeout"})


def test_forced_open_and_held_open_through_mock_pins(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    set_input(d, ctl, "contact", "active", clock)  # door opened while locked
    assert d.types() == ["input.changed", "door.opened", "door.forced_open"]
    assert d.events[0][1] == {"name": "contact", "state": "active", "previous": "inactive"}
    clock.t = 500.0 + 15.0
    ctl._tick()
    assert d.events[-1] == ("door.held_open", {"state": "prealarm", "open_for": 15.0, "alarm_in": 5.0})
    clock.t = 520.0
    ctl._tick()
    assert d.events[-1][1]["state"] == "alarm"
    set_input(d, ctl, "contact", "inactive", clock)
    assert d.types()[-4:] == ["input.changed", "door.closed", "door.forced_open", "door.held_open"]
    assert ctl.door_status()["alarms"] == []


def test_bouncing_contact_is_one_change(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    contact = pin(d, 23)
    for i in range(5):
        (contact.drive_high if i % 2 == 0 else contact.drive_low)()
    run_ready(d.loop)
    clock.t += 0.05
    ctl._tick()
    assert d.types() == ["input.changed", "door.opened", "door.forced_open"]


def test_rex_unlocks_and_shunts(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    set_input(d, ctl, "rex", "active", clock)
    assert pin(d, 22).state is True
    assert ("door.unlocked" in d.types()) and d.events[-1][1]["reason"] == "rex"
    set_input(d, ctl, "rex", "inactive", clock)
    set_input(d, ctl, "contact", "active", clock)
    assert "door.forced_open" not in d.types()


def test_relock_on_open(make):
    clock = Clock()
    d, ctl = make("relock_on_open = true\n", clock=clock)
    ctl.grant(seconds=None, holder=None, reader="r")
    set_input(d, ctl, "contact", "active", clock)
    assert pin(d, 22).state is False
    assert d.events[-1] == ("door.locked", {"reason": "opened"})


def test_manual_unlock_lock_commands(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    out = d.commands["door.unlock"]({"seconds": 60})
    assert out["state"] == "unlocked" and out["unlocked_for"] == 60.0 and pin(d, 22).state is True
    out = d.commands["door.lock"]({})
    assert out["state"] == "locked" and pin(d, 22).state is False
    assert d.events[-1] == ("door.locked", {"reason": "manual"})
    d.commands["door.unlock"]({})
    assert ctl.door.unlock_until == clock.t + 5  # access_time
    for bad in ({"seconds": 0}, {"seconds": "ten"}, {"seconds": True}, {"seconds": 1e9}, {"for": 3}):
        with pytest.raises(CommandError) as info:
            d.commands["door.unlock"](bad)
        assert info.value.kind == "invalid" and "door.unlock" in info.value.message


def test_lost_edge_is_caught_by_resampling(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    contact = ctl.inputs["contact"]
    contact.on_edge = None  # the callback is lost
    ctl._drive_mock_pin(contact, "active")
    run_ready(d.loop)
    clock.t += 0.5
    ctl._tick()
    assert d.types() == []  # nobody told us yet
    clock.t = 501.0
    ctl._tick()  # the periodic re-read sees the open door …
    clock.t += 0.05
    ctl._tick()  # … and after debounce it counts
    assert d.types() == ["input.changed", "door.opened", "door.forced_open"]


def test_tamper_input_publishes_tamper(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    set_input(d, ctl, "tamper", "active", clock)
    assert d.events[-1] == ("tamper", {"input": "tamper", "state": "active"})


# --- supervised inputs through the mock ADC --------------------------------------------------------

SUPERVISED = """
[inputs.zone1]
adc = "MCP3208"
channel = 3
normal_state = "closed"
thresholds = [0.2, 0.5, 0.8]
debounce = 0.1
poll_interval = 0.05
"""


def test_supervised_thresholds_and_faults(make):
    clock = Clock()
    d, ctl = make(SUPERVISED, clock=clock)
    zone = ctl.inputs["zone1"]
    chip = ctl._mock_adcs[0]
    assert zone.state == "inactive"

    def feed(ratio: float, seconds: float = 0.2) -> list[tuple[str, dict]]:
        before = len(d.events)
        chip.set_ratio(3, ratio)
        end = clock.t + seconds
        while clock.t < end:
            clock.t = round(clock.t + 0.05, 6)
            ctl._tick()
        return d.events[before:]

    assert feed(0.49) == []                      # still inside the "closed" band
    ev = feed(0.51)                              # just past closed_below: contact open
    assert ev[0][0] == "input.changed" and ev[0][1]["state"] == "active"
    ev = feed(0.81)                              # past open_below: the loop is cut
    assert [t for t, _ in ev] == ["input.changed", "tamper"]
    assert ev[1][1] == {"input": "zone1", "state": "cut"}
    ev = feed(0.19)                              # below short_below: shorted
    assert ev[1][1] == {"input": "zone1", "state": "short"}
    assert feed(0.9, seconds=0.05) == []         # shorter than the debounce: ignored
    assert d.statuses["inputs"]()["zone1"]["state"] == "short"


def test_supervised_contact_drives_the_door(make):
    base = BASE.replace("contact_pin = 23\n", "")
    d, ctl = make(SUPERVISED.replace("zone1", "contact"), base=base, clock=Clock())
    chip = ctl._mock_adcs[0]
    chip.set_ratio(3, 0.65)
    for _ in range(5):
        ctl.daemon._clock.t += 0.05
        ctl._tick()
    assert "door.forced_open" in d.types()
    chip.set_ratio(3, 0.95)  # cut while open: tamper, the door stays "open"
    for _ in range(5):
        ctl.daemon._clock.t += 0.05
        ctl._tick()
    assert d.types()[-1] == "tamper" and ctl.door.contact_open


# --- faults: an exception, a stalled loop -------------------------------------------------------------


def test_exception_while_unlocking_leaves_relay_normal(make):
    clock = Clock()
    d, ctl = make(clock=clock)
    d.fail_publish.add("door.unlocked")  # the relay is driven, then logging fails
    ctl.grant(seconds=None, holder=None, reader="r")
    assert pin(d, 22).state is False and not ctl.relay.unlocked
    assert pin(d, 22).levels[-2:] == [True, False]
    assert d.events[-1][0] == "door.locked" and d.events[-1][1]["reason"] == "fault"
    assert "disk full" in d.events[-1][1]["error"]
    assert not ctl.door.unlocked and ctl.door_status()["state"] == "locked"
    d.fail_publish.clear()
    ctl.grant(seconds=None, holder=None, reader="r")  # and it still works afterwards
    assert pin(d, 22).state is True


def test_exception_in_door_logic_leaves_relay_normal(make, monkeypatch):
    clock = Clock()
    d, ctl = make(clock=clock)
    ctl.unlock(30)
    assert pin(d, 22).state is True

    def broken(event, now):
        raise RuntimeError("door logic bug")

    monkeypatch.setattr(ctl.door, "handle", broken)
    clock.t += 1
    ctl._tick()
    assert pin(d, 22).state is False
    assert d.events[-1][1]["error"] == "RuntimeError: door logic bug"


def test_watchdog_check_with_patched_clock(make):
    clock = Clock()
    d, ctl = make("watchdog_grace = 2\n", clock=clock)
    ctl.unlock(5)
    clock.t += 6.9  # 1.9 s late: within grace
    assert ctl.watchdog_check() is False and pin(d, 22).state is True
    clock.t += 0.2
    assert ctl.watchdog_check() is True and pin(d, 22).state is False
    assert ctl.watchdog_trips == 1
    run_ready(d.loop)
    assert d.events[-1][0] == "system.watchdog" and d.events[-1][1]["late"] == pytest.approx(2.1)
    ctl._tick()  # the loop catches up: the door relocks without touching the line again
    assert d.events[-1] == ("door.locked", {"reason": "timeout"})
    assert pin(d, 22).levels.count(False) == pin(d, 22).levels.count(True) + 1


def test_stalled_loop_watchdog_thread_restores_normal(make):
    """The real thread, the real clock: the loop blocks while the relay is unlocked."""
    d, ctl = make("watchdog_grace = 0.5\n", clock=time.monotonic, watchdog_period=0.02)
    loop = d.loop
    seen = {}

    def stall():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0 and ctl.relay.unlocked:
            time.sleep(0.01)  # the loop is stuck here: no timer can run
        seen["stalled_for"] = time.monotonic() - t0
        seen["pin"] = pin(d, 22).state
        seen["trips"] = ctl.watchdog_trips

    async def scenario():
        d.scheduler.attach(loop)  # real timers on this loop
        await ctl.start()
        ctl.unlock(0.2)
        loop.call_soon(stall)
        await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)

    loop.run_until_complete(scenario())
    assert seen["pin"] is False and seen["trips"] == 1
    assert 0.6 < seen["stalled_for"] < 2.0  # deadline 0.2 s + grace 0.5 s (+ polling)
    assert "system.watchdog" in d.types()
    assert d.types()[-1] == "door.locked"


# --- the real daemon in a subprocess ---------------------------------------------------------------------

DAEMON_TOML = """
[door]
relay_pin = 22
normal_state = "{normal}"
access_time = 3
contact_pin = 23
rex_pin = 24
open_too_long = 30
[inputs.zone1]
adc = "MCP3008"
channel = 0
normal_state = "closed"
"""

TRACE = textwrap.dedent("""
    import sys
    from gpiozero.pins.mock import MockPin
    trace = open(sys.argv[1], "a", buffering=1)
    real = MockPin._change_state
    def traced(self, value):
        if self.info.name == "GPIO22":
            trace.write(f"{int(bool(value))}\\n")
        return real(self, value)
    MockPin._change_state = traced
    import socket
    real_bind = socket.socket.bind
    def bind(self, address):
        if self.family == socket.AF_UNIX:
            trace.write("bind\\n")
        return real_bind(self, address)
    socket.socket.bind = bind
    from accessd.main import main
    sys.exit(main(["--config", sys.argv[2]]))
""")


@pytest.mark.parametrize("normal, locked, sig, code", [
    ("open", "0", signal.SIGTERM, 0),
    ("closed", "1", signal.SIGTERM, 0),
    ("open", "0", signal.SIGHUP, 0),  # handled like SIGTERM (issue 9 finding 11)
    ("open", "0", signal.SIGUSR1, -signal.SIGUSR1),  # not handled by the loop: the relay's guard
])
def test_signal_real_daemon_relocks(daemon_factory, tmp_path, normal, locked, sig, code):
    """The real daemon's main() with GPIO22's mock level changes traced to a file."""
    trace = tmp_path / "relay.trace"
    d = daemon_factory(DAEMON_TOML.format(normal=normal), start=False)
    d.stderr = open(d.dir / "stderr.log", "ab")  # noqa: SIM115 - closed by d.stop()
    d.proc = subprocess.Popen([sys.executable, "-c", TRACE, str(trace), str(d.config)],
                              cwd=ROOT, env=d.env, stdout=subprocess.DEVNULL, stderr=d.stderr)
    end = time.monotonic() + 20
    while True:
        try:
            d.request("status")
            break
        except OSError:
            assert time.monotonic() < end and d.proc.poll() is None, d.log()
            time.sleep(0.05)
    lines = trace.read_text().split()
    assert lines.index("bind") > 0 and lines[0] == locked  # the relay was locked before the socket existed
    levels = [x for x in lines if x != "bind"]
    assert set(levels) == {locked}  # at the locked level from the first write on
    assert d.result("door.unlock", seconds=600)["state"] == "unlocked"
    assert trace.read_text().split()[-1] != locked
    assert d.stop(sig) == code, d.log()
    assert trace.read_text().split()[-1] == locked


def test_real_daemon_simulate_and_status(daemon_factory):
    d = daemon_factory(DAEMON_TOML.format(normal="open"))
    st = d.result("status")
    assert st["relay"]["state"] == "locked" and st["door"]["contact"] == "closed"
    assert set(st["inputs"]) == {"contact", "rex", "zone1"}
    out = d.result("simulate.input", name="contact", state="active")
    assert out["state"] == "active" and out["door"]["alarms"] == ["forced_open"]
    out = d.result("simulate.input", name="zone1", state="short")
    assert out["state"] == "short"
    bad = d.request("simulate.input", name="contact", state="cut")
    assert not bad["ok"] and bad["error"]["kind"] == "invalid" and "digital" in bad["error"]["message"]
    bad = d.request("simulate.input", name="window", state="active")
    assert not bad["ok"] and bad["error"]["kind"] == "not_found" and "contact, rex, zone1" in bad["error"]["message"]
    done = d.cli("door", "unlock", "--for", "30", "--json", check=0)
    assert json.loads(done.stdout)["state"] == "unlocked"
    done = d.cli("door", "lock", check=0)
    assert done.stdout.startswith("door locked")
    events = d.result("events", type="*")["events"]
    types = [e["type"] for e in events]
    for expected in ("input.changed", "door.opened", "door.forced_open", "tamper", "door.unlocked", "door.locked"):
        assert expected in types
    tamper = next(e for e in events if e["type"] == "tamper")
    assert tamper["input"] == "zone1" and tamper["state"] == "short"


def test_simulate_refused_on_real_gpio(make, loop):
    d, ctl = make(base=BASE.replace('pin_factory = "mock"', 'pin_factory = "lgpio"'))
    with pytest.raises(CommandError) as info:
        loop.run_until_complete(d.commands["simulate.input"]({"name": "contact", "state": "active"}))
    assert info.value.kind == "invalid" and "'lgpio'" in info.value.message


def test_watchdog_thread_exits_on_stop(make, loop):
    d, ctl = make()
    loop.run_until_complete(ctl.start())
    thread = ctl._thread
    assert thread.is_alive()
    loop.run_until_complete(ctl.stop())
    thread.join(2)
    assert not thread.is_alive()
    assert ctl.relay.closed and pin(d, 22).pull == "down"
    ctl.grant(seconds=None, holder=None, reader="r")  # a late grant is ignored, not raised
    assert not ctl.relay.unlocked and pin(d, 22).pull == "down"
    with pytest.raises(CommandError, match="door.unlock: the door is stopping") as info:
        d.commands["door.unlock"]({})
    assert info.value.kind == "unavailable"


# --- config validation of the door's keys ----------------------------------------------------------


@pytest.mark.parametrize("toml, message", [
    ('[door]\ncontact_pin = 22\n', "door.contact_pin: GPIO 22 is already used by door.relay_pin"),
    ('[reader]\nprotocol = "wiegand"\n[door]\nrex_pin = 27\n', "reader.wiegand.d1: GPIO 27 is already used by door.rex_pin"),
    ('[reader]\nprotocol = "wiegand"\n[reader.wiegand]\nbeeper_pin = 25\n[door]\ntamper_pin = 25\n',
     "reader.wiegand.beeper_pin: GPIO 25 is already used by door.tamper_pin"),
    ('[door]\nrex_pin = 10\n[inputs.z]\nadc = "MCP3008"\nnormal_state = "closed"\n',
     "door.rex_pin: GPIO 10 is already used by SPI0 MOSI"),
    ('[inputs.z]\npin = 5\n', 'inputs.z.normal_state: required key is missing ("open" or "closed"'),
    ('[inputs.z]\nnormal_state = "closed"\n', "inputs.z: an input needs either pin"),
    ('[inputs.z]\npin = 5\nadc = "MCP3008"\nnormal_state = "open"\n', "inputs.z: an input needs either pin"),
    ('[inputs.z]\nadc = "MCP3008"\nnormal_state = "open"\nthresholds = [0.6, 0.5, 0.9]\n',
     "inputs.z.thresholds: expected three increasing ratios"),
    ('[inputs.a]\nadc = "MCP3008"\nnormal_state = "open"\n[inputs.b]\nadc = "MCP3008"\nnormal_state = "open"\n',
     "inputs.a.channel: ADC channel 0 on CE0 is used by two inputs"),
    ('[door]\ncontact_pin = 5\n[inputs.contact]\npin = 6\nnormal_state = "closed"\n',
     "inputs.contact: the door's contact is set twice"),
    ('[door]\naccess_time = "seven"\n', 'door.access_time: expected a number of seconds 1–3600, got "seven"'),
    ('[door]\nprealarm = 30\n', "door.prealarm: expected fewer seconds than open_too_long (30), got 30"),
    ('[door]\ndebounce = 2\n', "door.debounce: expected a number of seconds 0–1, got 2"),
    ('[door]\ncontact_normal_state = "NC"\n', 'door.contact_normal_state: expected one of "open", "closed", got "NC"'),
    ('[door]\nwatchdog_grace = 0.1\n', "door.watchdog_grace: expected a number of seconds 0.5–60, got 0.1"),
])
def test_door_config_validation(toml, message):
    import tomllib

    from accessd.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(toml))
    assert message in str(info.value)


def test_door_config_accepts_a_full_setup():
    import tomllib

    cfg = parse_config(tomllib.loads(
        '[reader]\nprotocol = "wiegand"\n[door]\ncontact_pin = 23\nrex_pin = 24\ntamper_pin = 25\nprealarm = 10\n'
        '[inputs.contact2]\nadc = "MCP3208"\nchannel = 1\nspi_device = 1\nnormal_state = "closed"\n'
        '[inputs.aux]\npin = 5\nnormal_state = "open"\n'))
    assert cfg.inputs["contact2"].spi_device == 1 and cfg.door.prealarm == 10


def test_relay_status_warns_about_a_line_pulled_unlocked_at_boot(make, caplog):
    d, ctl = make(base=BASE.replace("relay_pin = 22", "relay_pin = 4"))  # mock board: a Pi 3B
    st = d.statuses["relay"]()
    assert st["boot_pull"] == "up" and st["boot_safe"] is False
    assert "GPIO4 is pulled up while the board boots" in caplog.text
    d2, _ = make(base=BASE.replace("relay_pin = 22", "relay_pin = 5").replace('normal_state = "open"', "")
                 + 'relay_active_high = false\n')
    assert d2.statuses["relay"]()["boot_safe"] is True  # active-low relay, locked high, pulled up


def test_free_egress_rex_only_shunts(make):
    clock = Clock()
    d, ctl = make("rex_unlocks = false\nrex_shunt = 3\n", clock=clock)
    set_input(d, ctl, "rex", "active", clock)
    assert pin(d, 22).state is False and "door.unlocked" not in d.types()
    set_input(d, ctl, "contact", "active", clock)
    assert ("door.opened", {"authorized": True, "by": "rex"}) in d.events
    assert "door.forced_open" not in d.types()


def test_holder_extended_time_and_setup_failure_after_inputs(make, loop, monkeypatch):
    clock = Clock()
    d, ctl = make(clock=clock)
    ctl.grant(seconds=30.0, holder={"id": 7}, reader="r")
    assert ctl.door.next_deadline() == clock.t + 30
    ctl.lock()
    ctl.grant(seconds=-4, holder={"id": 7}, reader="r")  # broken: the door's access_time instead
    assert ctl.door.next_deadline() == clock.t + 5 and pin(d, 22).state is True
    # a failure after the inputs exist still leaves the relay locked and everything released
    import tomllib

    monkeypatch.setattr(doorctl, "DoorPolicy", lambda **kw: (_ for _ in ()).throw(ValueError("policy")))
    d2 = FakeDaemon(parse_config(tomllib.loads(BASE)), Clock(), loop)
    with pytest.raises(ValueError, match="policy"):
        doorctl.create(d2)
    assert pin(d2, 22).pull == "down" and True not in pin(d2, 22).levels
    assert pin(d2, 23).function == "input"
    d2.pin_factory.close()


def test_relay_write_failure_is_contained(make, monkeypatch, caplog):
    clock = Clock()
    d, ctl = make(clock=clock)

    def dead_line(unlocked):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ctl.relay, "set_unlocked", dead_line)
    ctl.grant(seconds=None, holder=None, reader="r")  # does not raise into the access path
    assert d.events[-1][0] == "door.locked" and "Input/output error" in d.events[-1][1]["error"]
    assert pin(d, 22).state is False and not ctl.door.unlocked


def test_lockdown_input_sets_and_lifts_lockdown(make):
    clock = Clock()
    d, ctl = make('[inputs.panic]\npin = 5\nnormal_state = "open"\n[modes]\nlockdown_input = "panic"\n', clock=clock)
    set_input(d, ctl, "panic", "active", clock)
    modes = [f for t, f in d.events if t == "door.mode"]
    assert modes[-1]["mode"] == "lockdown" and modes[-1]["source"] == "command"
    set_input(d, ctl, "panic", "inactive", clock)
    modes = [f for t, f in d.events if t == "door.mode"]
    assert modes[-1]["mode"] == "locked" and ctl.door_status()["mode"]["lockdown"] is False
