"""`accessd --demo` (what `make demo` runs) plays its scenario through the real code paths."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_plays_the_scenario_and_answers_status():
    proc = subprocess.Popen([sys.executable, "-m", "accessd.main", "--demo"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "scenario done" in line:
                break
        out = "".join(lines)
        assert "skipped" not in out, out
        sock_path = next(x.split(": ", 1)[1].strip() for x in lines if x.startswith("socket: "))
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(sock_path)
        f = client.makefile("rb")
        f.readline()
        client.sendall(b'{"id":1,"cmd":"events","params":{"limit":1000}}\n')
        events = json.loads(f.readline())["result"]["events"]
        client.sendall(b'{"id":2,"cmd":"status"}\n')
        status = json.loads(f.readline())["result"]
        f.close()
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)

    def who(e):
        return (e.get("holder") or {}).get("first_name")

    decisions = [(e["type"], who(e), e.get("reason")) for e in events if e["type"].startswith("access.")]
    assert decisions == [
        ("access.granted", "Alice", None),
        ("access.denied", None, "unknown_credential"),
        ("access.granted", "Bob", None),
        ("access.granted", "Carol", None),
        ("access.denied", "Dave", "expired"),
    ]
    types = [e["type"] for e in events]
    assert types.count("door.forced_open") == 2  # raised, then cleared when the door closed
    assert "door.held_open" in types and "door.unlocked" in types and "door.locked" in types
    assert status["readers"]["reader1"]["state"] == "connected"
    assert status["relay"]["energized"] is False
    assert not os.path.exists(sock_path)  # removed on the way out
    assert not os.path.exists(os.path.dirname(sock_path))  # the temporary state directory too
    assert ".venv/bin/accessd-cli" not in out or (ROOT / ".venv/bin/accessd-cli").exists()


def test_demo_hints_name_the_cli_as_installed(monkeypatch, tmp_path):
    from accessd import demo

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "accessd-cli").write_text("#!/bin/sh\n")
    (bindir / "accessd-cli").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bindir / "python3"))
    monkeypatch.setenv("PATH", str(bindir))
    assert demo.cli_command() == "accessd-cli"  # installed (e.g. /usr/bin): by name
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.chdir(tmp_path)
    assert demo.cli_command() == "bin/accessd-cli"  # a venv in this directory, not on PATH
    monkeypatch.chdir("/")
    assert demo.cli_command() == str(bindir / "accessd-cli")
