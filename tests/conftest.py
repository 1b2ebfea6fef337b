"""Shared fixtures: a real accessd daemon in a subprocess, on mock GPIO, in a temp dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import settings

# CI explores a fixed set of examples (reproducible); developers' runs explore new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Fuzz and soak runs (marked ``fuzz`` / ``soak``): brief in ``make test``, long in
# ``make fuzz`` / ``make soak``, which set ACCESSD_FUZZ_EXAMPLES / ACCESSD_SOAK_SECONDS.
FUZZ_EXAMPLES = int(os.environ.get("ACCESSD_FUZZ_EXAMPLES", "2000"))
SOAK_SECONDS = float(os.environ.get("ACCESSD_SOAK_SECONDS", "5"))

ROOT = Path(__file__).resolve().parent.parent


class DaemonProcess:
    """``accessd --config`` in a subprocess; ``request()`` talks JSON Lines to its socket."""

    def __init__(self, directory: Path, extra: str = "", env: dict | None = None) -> None:
        self.dir = directory
        self.socket = str(directory / "accessd.sock")
        self.state_dir = directory / "state"
        self.config = directory / "accessd.toml"
        self.config.write_text(
            f'[daemon]\nsocket = "{self.socket}"\nstate_dir = "{self.state_dir}"\npin_factory = "mock"\n'
            f"flush_interval = 0.2\n{extra}"
        )
        self.env = {**os.environ, **(env or {})}
        self.env.pop("NOTIFY_SOCKET", None)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> DaemonProcess:
        self.stderr = open(self.dir / "stderr.log", "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "accessd.main", "--config", str(self.config)],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"accessd exited with {self.proc.returncode}: {self.log()}")
            try:
                self.request("status")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"accessd did not come up in {timeout} s: {self.log()}")

    def log(self) -> str:
        return (self.dir / "stderr.log").read_text(errors="replace")

    def connect(self) -> tuple[socket.socket, object]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.socket)
        f = sock.makefile("rb")
        greeting = json.loads(f.readline())
        assert greeting["protocol"] == 1
        return sock, f

    def request(self, cmd: str, **params) -> dict:
        """Send one request on a new connection; return the whole response object."""
        sock, f = self.connect()
        try:
            sock.sendall(json.dumps({"id": 1, "cmd": cmd, "params": params}).encode() + b"\n")
            return json.loads(f.readline())
        finally:
            sock.close()

    def result(self, cmd: str, **params) -> dict:
        response = self.request(cmd, **params)
        assert response["ok"], response
        return response["result"]

    def cli(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from accessd.cli import main; sys.exit(main())", "--socket", self.socket, *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60,
        )
        if check is not None:
            assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
        return done

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.stderr.close()
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def daemon_factory(tmp_path):
    """Make daemons: ``daemon_factory(extra_toml)`` returns a started DaemonProcess."""
    started: list[DaemonProcess] = []

    def make(extra: str = "", *, start: bool = True, env: dict | None = None,
             directory: Path | None = None) -> DaemonProcess:
        d = DaemonProcess(directory or tmp_path, extra, env)
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.kill()


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()
