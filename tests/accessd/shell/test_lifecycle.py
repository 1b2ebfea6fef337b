"""Daemon lifecycle under systemd: sd_notify, the watchdog, socket activation, a corrupt log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from accessd.shell.sdnotify import Notifier


def notify_socket(tmp_path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(10)
    return sock


def messages_until(sock: socket.socket, wanted: str, limit: float = 10) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got.extend(sock.recv(4096).decode().split("\n"))
        if wanted in got:
            return got
    raise AssertionError(f"{wanted} not received; got {got}")


def test_ready_watchdog_status_and_stopping(daemon_factory, tmp_path):
    listener = notify_socket(tmp_path)
    d = daemon_factory(start=False, env={})
    d.env.update(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="200000")
    d.start()
    first = messages_until(listener, "READY=1")
    assert any(m.startswith("STATUS=serving on ") for m in first)
    pings = 0
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        pings += listener.recv(4096).decode().split("\n").count("WATCHDOG=1")
    assert pings >= 10  # every 100 ms: half of WATCHDOG_USEC
    assert d.stop() == 0
    assert "STOPPING=1" in messages_until(listener, "STOPPING=1")


def test_watchdog_for_another_pid_is_ignored(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier.watchdog_interval() == 1.0


def test_abstract_notify_socket_address():
    assert Notifier("@/org/freedesktop/systemd1/notify").address == "\0/org/freedesktop/systemd1/notify"
    assert not Notifier("").enabled


ACTIVATE = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.executable, [sys.executable, "-m", "accessd.main", "--config", sys.argv[2]])
"""


def test_socket_activation_uses_the_inherited_socket(daemon_factory, tmp_path):
    d = daemon_factory(start=False)
    activated = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # what systemd's socket unit does
    listener.bind(activated)
    listener.listen(8)
    proc = subprocess.Popen([sys.executable, "-c", ACTIVATE, str(listener.fileno()), str(d.config)], pass_fds=(listener.fileno(),))
    listener.close()
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(activated)  # queued by the kernel even before the daemon runs
        client.settimeout(15)
        f = client.makefile("rb")
        assert json.loads(f.readline())["protocol"] == 1
        client.sendall(b'{"id": 1, "cmd": "status"}\n')
        status = json.loads(f.readline())["result"]
        assert status["daemon"]["pid"] == proc.pid
        assert not os.path.exists(d.socket)  # it did not bind its configured path
        f.close()
        client.close()
    finally:
        proc.terminate()
        proc.wait(15)
    assert os.path.exists(activated)  # the socket unit owns the path: not removed on stop


def test_corrupt_log_is_reported_and_the_daemon_serves(daemon_factory, tmp_path):
    d = daemon_factory(start=False)
    d.state_dir.mkdir()
    (d.state_dir / "events.db").write_bytes(b"garbage " * 1000)
    d.start()
    status = d.result("status")
    kept = status["daemon"]["log"]["corrupt_file_kept"]
    assert kept and open(kept, "rb").read().startswith(b"garbage")
    types = [e["type"] for e in d.result("events")["events"]]
    assert types[0] == "system.log_corrupt" and "system.started" in types
    assert "corrupt" in d.log()


def test_shutdown_locks_the_relay_before_stopping_the_other_components(tmp_path):
    import asyncio
    import tomllib

    from accessd.config import parse_config
    from accessd.shell.daemon import Daemon

    config = parse_config(tomllib.loads(
        f'[daemon]\nsocket = "{tmp_path}/s.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
    ))
    daemon = Daemon(config)
    seen = []

    class SlowToStop:
        async def stop(self):
            seen.append(daemon.door.relay.unlocked)  # what the lock is doing while we dawdle
            await asyncio.sleep(0.2)

    async def main():
        task = asyncio.create_task(daemon.run(signals=False))
        while daemon.server._server is None:
            await asyncio.sleep(0.01)
        daemon.components.append(SlowToStop())  # stops first in reverse order, were it not for the door
        daemon.door.unlock(30)
        assert daemon.door.relay.unlocked
        daemon.request_stop()
        await task

    asyncio.run(main())
    assert seen == [False]


def test_relay_first_holds_the_fan_out_until_the_block_ends(tmp_path):
    import tomllib

    from accessd.config import parse_config
    from accessd.shell.daemon import Daemon

    daemon = Daemon(parse_config(tomllib.loads(f'[daemon]\nstate_dir = "{tmp_path}"\npin_factory = "mock"\n')))
    daemon._logging = True  # as after start: events are numbered and logged
    sent = []
    daemon.server.publish = sent.append
    with daemon.relay_first():
        daemon.publish("credential.read", reader="r1")
        with daemon.relay_first():  # nested: still held
            daemon.publish("access.granted", reader="r1")
        assert sent == []  # nothing reached subscribers while the relay is being moved
        daemon.publish("door.unlocked", reason="granted")
    assert [(e["seq"], e["type"]) for e in sent] == [(1, "credential.read"), (2, "access.granted"), (3, "door.unlocked")]
    daemon.publish("door.locked", reason="timeout")
    assert sent[-1]["type"] == "door.locked"  # outside the block: at once


def test_sighup_during_an_unlock_locks_the_relay_and_keeps_the_last_events(daemon_factory):
    import signal

    d = daemon_factory()
    d.result("door.unlock", seconds=30)
    assert d.stop(signal.SIGHUP) == 0
    d.start()
    types = [e["type"] for e in d.result("events")["events"]]
    # the first run's last events were flushed: it stopped, and the door locked, before the restart
    first_run = types[:types.index("system.started", 1)]
    assert first_run[-2:] == ["system.stopping", "door.locked"] and "door.unlocked" in first_run, types
