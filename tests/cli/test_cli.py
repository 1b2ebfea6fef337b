"""accessd-cli against a real daemon: output, exit codes, events export and follow."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import select
import subprocess
import sys
import time

from accessd.cli import build_parser


def test_status_human_and_json(daemon):
    human = daemon.cli("status", check=0).stdout
    assert f"pid {daemon.proc.pid}" in human and "pins mock" in human
    data = json.loads(daemon.cli("status", "--json", check=0).stdout)
    assert data["daemon"]["pin_factory"] == "mock" and data["daemon"]["socket"] == daemon.socket


def test_unreachable_daemon_exits_3_naming_the_socket(tmp_path):
    missing = str(tmp_path / "nobody-home.sock")
    done = subprocess.run([sys.executable, "-m", "accessd.cli", "--socket", missing, "status"], capture_output=True, text=True)
    assert done.returncode == 3
    assert missing in done.stderr


def test_environment_variable_names_the_socket(daemon):
    done = subprocess.run(
        [sys.executable, "-m", "accessd.cli", "status", "--json"], capture_output=True, text=True,
        env={**daemon.env, "ACCESSD_SOCKET": daemon.socket},
    )
    assert done.returncode == 0 and json.loads(done.stdout)["daemon"]["pid"] == daemon.proc.pid


def test_usage_errors_exit_2(daemon):
    assert daemon.cli("events", "--since", "last tuesday").returncode == 2
    assert daemon.cli("no-such-command").returncode == 2
    assert daemon.cli("events", "--follow", "--until", "2026-01-01").returncode == 2


def test_events_csv_is_rfc_4180(daemon):
    raw = subprocess.run([sys.executable, "-m", "accessd.cli", "--socket", daemon.socket, "events", "--csv"], capture_output=True, check=True).stdout
    assert raw.count(b"\r\n") == 2 and b"\n" not in raw.replace(b"\r\n", b"")
    rows = list(csv.reader(io.StringIO(raw.decode(), newline="")))
    assert rows[0] == ["seq", "time", "type", "reader", "reason", "holder", "credential", "details"]
    assert rows[1][2] == "system.started"
    assert json.loads(rows[1][7])["pid"] == daemon.proc.pid  # quotes inside a field survive


def test_events_json_lines_and_filters(daemon):
    lines = daemon.cli("events", "--json", check=0).stdout.splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["system.started"]
    assert daemon.cli("events", "--json", "--since", "2999-01-01", check=0).stdout == ""
    assert daemon.cli("events", "--json", "--type", "door.*", check=0).stdout == ""
    assert daemon.cli("events", "--json", "--search", str(daemon.proc.pid), check=0).stdout.strip()


class _Lines:
    """Lines of a pipe with a timeout (select on the raw fd, our own buffer)."""

    def __init__(self, pipe) -> None:
        self.fd = pipe.fileno()
        self.buffer = b""

    def __call__(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no line within {timeout} s"
            chunk = os.read(self.fd, 65536)
            assert chunk, "the command exited"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def test_events_follow_starts_from_now_or_n_and_reconnects_across_a_restart(daemon_factory):
    d = daemon_factory()
    d.result("door.unlock", seconds=1)
    time.sleep(0.3)
    logged = [json.loads(x) for x in d.cli("events", "--json", check=0).stdout.splitlines()]
    follow = subprocess.Popen(
        [sys.executable, "-m", "accessd.cli", "--socket", d.socket, "events", "--follow", "-n", "1", "--json"],
        stdout=subprocess.PIPE,
    )
    readline = _Lines(follow.stdout)
    try:
        first = json.loads(readline())
        assert first["seq"] == logged[-1]["seq"]  # -n 1: the newest only, not the whole log
        time.sleep(0.5)
        d.stop()  # system.stopping reaches the subscriber; then the connection closes
        d.start()  # same state dir: the log and its seqs go on
        d.result("door.unlock", seconds=1)
        seen = [first]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(e["type"] == "door.unlocked" and e["seq"] > first["seq"] + 2 for e in seen):
            seen.append(json.loads(readline()))
        seqs = [e["seq"] for e in seen]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no repeat
        types = [e["type"] for e in seen]
        assert "system.stopping" in types and "system.started" in types and types[-1] == "door.unlocked"
    finally:
        follow.kill()
        follow.wait()


def test_events_n_and_relative_since(daemon):
    daemon.result("door.unlock", seconds=1)
    time.sleep(0.3)
    everything = [json.loads(x) for x in daemon.cli("events", "--json", check=0).stdout.splitlines()]
    newest = [json.loads(x) for x in daemon.cli("events", "--json", "-n", "2", check=0).stdout.splitlines()]
    assert newest == everything[-2:]
    assert daemon.cli("events", "--json", "-n", "0", check=0).stdout == ""
    assert [json.loads(x) for x in daemon.cli("events", "--json", "--since", "-1h", check=0).stdout.splitlines()] == everything
    assert [json.loads(x) for x in daemon.cli("events", "--json", "--since", "today", check=0).stdout.splitlines()] == everything
    assert daemon.cli("events", "--json", "--until", "yesterday", check=0).stdout == ""
    human = daemon.cli("events", check=0).stdout.splitlines()
    assert len(human) == len(everything) and "\033" not in "".join(human)  # no colour when not a terminal


def leaf_parsers(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from leaf_parsers(child, (*path, name))
            return
    yield path, parser


def test_every_command_takes_json():
    leaves = list(leaf_parsers(build_parser()))
    assert len(leaves) >= 6
    for path, parser in leaves:
        assert "--json" in parser._option_string_actions, " ".join(path)
