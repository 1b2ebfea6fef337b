"""``accessd --demo``: the real daemon on mock GPIO with demo holders and a scripted scenario.

Everything runs through the same code as on a board: the scenario drives the mock pins
with the simulators (``simulate card|keys|input``), so the Wiegand decoder, the entry list,
the door state machine and the relay pin all do their real work.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from .config import parse_config
from .errors import CommandError

log = logging.getLogger("accessd.demo")

DEMO_CONFIG = """
[daemon]
socket = "{dir}/accessd.sock"
state_dir = "{dir}/state"
pin_factory = "mock"

[reader]
protocol = "wiegand"

[reader.wiegand]
d0 = 17
d1 = 27

[door]
relay_pin = 22
normal_state = "open"
access_time = 3
contact_pin = 23
rex_pin = 24
open_too_long = 8
"""

# (first name, extra holders.add parameters)
HOLDERS = [
    ("Alice", {"last_name": "Card", "format": "H10301", "fc": 12, "cn": 3456}),
    ("Bob", {"last_name": "Pin", "pin": "1234"}),
    ("Carol", {"last_name": "CardAndPin", "format": "H10301", "fc": 12, "cn": 777, "pin": "4321"}),
    ("Dave", {"last_name": "Expired", "format": "H10301", "fc": 12, "cn": 1000, "valid_to": "2020-01-01"}),
    ("Erin", {"last_name": "ThreeUses", "format": "H10301", "fc": 12, "cn": 2024, "uses": 3}),
]

# (pause before, what it shows, command, params)
SCENARIO = [
    (4, "a granted card (Alice, H10301 12/3456)", "simulate.card", {"format": "H10301", "fc": 12, "cn": 3456}),
    (1, "the door opens and closes within the access time", "simulate.input", {"name": "contact", "state": "active"}),
    (1, "", "simulate.input", {"name": "contact", "state": "inactive"}),
    (3, "an unknown card", "simulate.card", {"format": "H10301", "fc": 99, "cn": 1}),
    (3, "a PIN at the keypad (Bob, 1234#)", "simulate.keys", {"digits": "1234#"}),
    (3, "card + PIN (Carol): the card, then 4321# at the keypad", "simulate.card", {"format": "H10301", "fc": 12, "cn": 777}),
    (1, "", "simulate.keys", {"digits": "4321#"}),
    (4, "an expired card (Dave)", "simulate.card", {"format": "H10301", "fc": 12, "cn": 1000}),
    (3, "a forced door: opened while locked", "simulate.input", {"name": "contact", "state": "active"}),
    (2, "", "simulate.input", {"name": "contact", "state": "inactive"}),
    (3, "the exit button, then the door held open too long (8 s)", "simulate.input", {"name": "rex", "state": "active"}),
    (0.3, "", "simulate.input", {"name": "rex", "state": "inactive"}),
    (0.5, "", "simulate.input", {"name": "contact", "state": "active"}),
    (10, "", "simulate.input", {"name": "contact", "state": "inactive"}),
]


def demo_config(directory: str):
    return parse_config(tomllib.loads(DEMO_CONFIG.format(dir=directory)))


async def call(daemon, cmd: str, params: dict) -> dict | None:
    command = daemon.server.commands.get(cmd)
    if command is None:
        print(f"  (skipped: this build has no {cmd} command)", flush=True)
        return None
    try:
        result = command.handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        return result
    except CommandError as exc:
        print(f"  {cmd}: {exc.message}", flush=True)
        return None


async def scenario(daemon, ready: asyncio.Event) -> None:
    await ready.wait()
    for first, extra in HOLDERS:
        await call(daemon, "holders.add", {"first_name": first, **extra})
    for pause, text, cmd, params in SCENARIO:
        await asyncio.sleep(pause)
        if text:
            print(f"demo: {text}", flush=True)
        await call(daemon, cmd, params)
    print("demo: scenario done; the daemon keeps running (Ctrl-C stops it)", flush=True)


def cli_command() -> str:
    """How to run accessd-cli from here: by name when PATH finds this installation's."""
    here = Path(sys.executable).with_name("accessd-cli")
    found = shutil.which("accessd-cli")
    if found and (not here.exists() or Path(found).resolve() == here.resolve()):
        return "accessd-cli"
    if here.exists():
        cwd = Path.cwd()
        if cwd != Path("/") and here.is_relative_to(cwd):
            return str(here.relative_to(cwd))  # .venv/bin/accessd-cli in a checkout
        return str(here)
    return f"{sys.executable} -m accessd.cli"


def run_demo(directory: str | None = None) -> int:
    from .shell.daemon import Daemon

    temporary = directory is None
    directory = directory or tempfile.mkdtemp(prefix="accessd-demo-")
    try:
        return _run(Daemon, directory)
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


def _run(Daemon, directory: str) -> int:  # noqa: N803 - the class, imported late
    daemon = Daemon(demo_config(directory))
    sock = Path(directory) / "accessd.sock"
    cli = cli_command()
    print(
        f"accessd demo: mock GPIO, simulated Wiegand reader, state in {directory}/state (removed on exit)\n"
        f"socket: {sock}\n"
        f"try, in another shell{' (from this directory)' if not Path(cli).is_absolute() and '/' in cli else ''}:\n"
        f"  export ACCESSD_SOCKET={sock}\n"
        f"  {cli} events --follow\n"
        f"  {cli} status\n"
        f"  {cli} simulate card --hex 0181B01 --bit-length 26   # Alice's card\n"
        f"  {cli} check-credential --pin 1234 --json             # Bob, dry run\n"
        f"  {cli} door unlock --for 5",
        flush=True,
    )

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(daemon.run())
        while daemon.server.path is None or daemon.server._server is None:
            if task.done():
                return await task
            await asyncio.sleep(0.05)
        ready.set()
        play = asyncio.create_task(scenario(daemon, ready))
        await task
        play.cancel()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except (OSError, RuntimeError) as exc:
        print(f"accessd: {exc}", file=sys.stderr)
        return 1
    return 0
