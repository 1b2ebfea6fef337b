"""A real mosquitto broker on a free loopback port, and a persistent test subscriber."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, directory: Path) -> None:
        exe = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None)
        if exe is None:
            pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (.ci/run does this)")
        self.exe, self.dir, self.port = exe, directory, free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\nuser {getpass.getuser()}\n"
                             f"persistence_location {directory}/\nmax_queued_messages 0\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "broker.log", "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen: {(self.dir / 'broker.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # saves the persistent sessions
            self.proc.wait(10)


class Subscriber:
    """A persistent session (clean_session off): messages queued while it is away arrive later."""

    def __init__(self, port: int, topics: list[str], client_id: str = "test-sub") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list = []
        self.cond = threading.Condition()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.on_connect = lambda cl, u, f, rc, p: [cl.subscribe(t, qos=1) for t in topics]
        c.on_message = self._on_message
        c.reconnect_delay_set(0.1, 1)
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.client = c

    def _on_message(self, client, userdata, msg) -> None:
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait_for(self, pred, timeout: float = 15.0):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.messages), timeout):
                raise AssertionError(f"timed out; got {[(m.topic, m.payload[:80]) for m in self.messages]}")

    def events(self) -> list[dict]:
        with self.cond:
            return [json.loads(m.payload) for m in self.messages if "/event/" in m.topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def subscriber_factory():
    made: list[Subscriber] = []

    def make(port: int, topics: list[str], client_id: str = "test-sub") -> Subscriber:
        s = Subscriber(port, topics, client_id)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
