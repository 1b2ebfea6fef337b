"""The clock: adjtimex read as timedatectl does, and wall-clock steps in virtual time."""

from __future__ import annotations

import asyncio
import ctypes
import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

from accessd.protocols.credential import Credential

from accessd.config import parse_config
from accessd.shell.clock import STA_UNSYNC, TIME_ERROR, Timex, clock_status
from accessd.shell.daemon import Daemon
from accessd.shell.scheduler import VirtualClock

TZ = ZoneInfo("Europe/Berlin")


def fake(rc, maxerror, status=0):
    def adjtimex(ref):
        tx = ctypes.cast(ref, ctypes.POINTER(Timex)).contents
        assert tx.modes == 0  # read only: nothing is set
        tx.maxerror, tx.esterror, tx.status = maxerror, 12, status
        return rc
    return adjtimex


def test_the_struct_is_the_kernels_size():
    assert ctypes.sizeof(Timex) == 208  # LP64 struct timex


def test_synchronized_as_timedatectl_says():
    assert clock_status(fake(0, 50_000))["synchronized"] is True
    # STA_UNSYNC alone is not trusted (set to keep the kernel off the RTC), as systemd's ntp_synced()
    assert clock_status(fake(0, 50_000, STA_UNSYNC)) == {
        "synchronized": True, "state": "ok", "maxerror_us": 50_000, "esterror_us": 12, "sta_unsync": True,
        "source": "adjtimex"}
    assert clock_status(fake(TIME_ERROR, 50_000))["synchronized"] is False
    assert clock_status(fake(0, 16_000_000))["synchronized"] is False
    assert clock_status(fake(-1, 0))["synchronized"] is None


def test_the_real_kernel_answers():
    out = clock_status()
    assert out["synchronized"] in (True, False, None)


def at(*args) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()


CONFIG = """
[schedules.office]
weekly = ["Mon-Fri 08:00-18:00"]
[[modes.scheduled]]
schedule = "office"
mode = "unlocked"
[access]
lockout_attempts = 2
lockout_duration = 60
"""


def test_wall_steps_never_extend_an_unlock_or_a_lockout_and_modes_follow(tmp_path):
    text = (f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
            f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n{CONFIG}')
    clock = VirtualClock(1000.0)
    offset = [at(2026, 11, 30, 7, 0) - 1000.0]  # Monday 07:00; the wall is the clock plus a step

    def wall():
        return clock.now + offset[0]

    async def present(d, cred):
        out = d.access.present(cred, "r1")
        return await out if isinstance(out, asyncio.Future) else out

    async def main():
        d = Daemon(parse_config(tomllib.loads(text)), clock=clock, virtual_time=True, wall=wall)
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        try:
            d.access.store.add(first_name="Ann", card="1", bit_length=26)
            assert (await present(d, Credential.card("1", 26))).granted  # unlocked for 7 s (monotonic)
            assert d.door.relay.unlocked
            offset[0] -= 3600  # the wall clock steps back an hour
            d.scheduler.advance(clock, 6.9)
            assert d.door.relay.unlocked
            d.scheduler.advance(clock, 0.1)
            assert not d.door.relay.unlocked  # relocked at 7 s all the same
            assert (await present(d, Credential.card("1", 26))).granted
            offset[0] += 2 * 3600  # and forward two hours: 08:00 +
            d.scheduler.advance(clock, 6.9)
            # the forward step is seen within the modes' recheck: the office period holds the door
            d.scheduler.advance(clock, 60)
            assert d.door.door_status()["mode"]["mode"] == "unlocked" and d.door.relay.unlocked
            # a lockout stays its 60 monotonic seconds whatever the wall clock does
            for _ in range(2):
                await present(d, Credential.card("2", 26))
            assert (await present(d, Credential.card("1", 26))).reason == "locked_out"
            offset[0] += 86400
            d.scheduler.advance(clock, 59)
            assert (await present(d, Credential.card("1", 26))).reason == "locked_out"
            offset[0] -= 2 * 86400
            d.scheduler.advance(clock, 1)
            assert (await present(d, Credential.card("1", 26))).granted  # the lockout ended at its 60 s
        finally:
            d.request_stop()
            await task

    asyncio.run(main())


def test_clock_watch_events_steps_and_the_unsynced_policy(tmp_path):
    text = (f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
            f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n{CONFIG}\nunsynced = "deny"\n')
    clock = VirtualClock(1000.0)
    offset = [at(2026, 11, 30, 7, 0) - 1000.0]
    synced = [True]

    def wall():
        return clock.now + offset[0]

    async def main():
        d = Daemon(parse_config(tomllib.loads(text)), clock=clock, virtual_time=True, wall=wall)
        events: list[dict] = []
        publish = d.publish

        def record(type, **fields):  # noqa: A002
            out = publish(type, **fields)
            events.append(out)
            return out

        d.publish = record
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        d.clockwatch.read = lambda: {"synchronized": synced[0]}  # before its first tick (virtual time)
        try:
            s = d.access.store
            s.add(first_name="Ann", card="1", bit_length=26, schedule="office")
            s.add(first_name="Bob", card="2", bit_length=26)
            d.scheduler.advance(clock, 0)
            assert not [e for e in events if e["type"].startswith("system.clock")]  # the start is in status
            offset[0] += 3600  # 08:00: a step forward
            d.scheduler.advance(clock, 10)
            (step,) = [e for e in events if e["type"] == "system.clock_step"]
            assert step["seconds"] == 3600
            assert d.door.door_status()["mode"]["mode"] == "unlocked"  # modes re-read at the step
            present = d.access.present
            ann = present(Credential.card("1", 26), "r1")
            assert (await ann if isinstance(ann, asyncio.Future) else ann).granted
            synced[0] = False
            d.scheduler.advance(clock, 10)
            assert [e["type"] for e in events if e["type"].startswith("system.clock_")][-1] == "system.clock_unsynced"
            ann = present(Credential.card("1", 26), "r1")
            assert (await ann if isinstance(ann, asyncio.Future) else ann).reason == "outside_schedule"
            bob = present(Credential.card("2", 26), "r1")
            assert (await bob if isinstance(bob, asyncio.Future) else bob).granted  # no schedule: not limited
            synced[0] = True
            d.scheduler.advance(clock, 10)
            assert [e["type"] for e in events if e["type"].startswith("system.clock_")][-1] == "system.clock_synced"
            ann = present(Credential.card("1", 26), "r1")
            assert (await ann if isinstance(ann, asyncio.Future) else ann).granted
        finally:
            d.request_stop()
            await task

    asyncio.run(main())
