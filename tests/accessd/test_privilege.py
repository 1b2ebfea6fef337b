"""Who may act: a real daemon, a real unprivileged uid (setpriv), the real CLI.

"Unprivileged" is uid 65534 in the socket's group: it may connect, read status and
events, and nothing else.  Every way to open the door, to learn whether a credential
is good, or to read the card numbers of the list is privileged, and each privileged
command leaves an ``admin.*`` event (a refused one ``security.forbidden``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.getuid() != 0 or shutil.which("setpriv") is None,
    reason="acting as another user needs root and setpriv (CI runs as root)",
)

NOBODY = ("--reuid", "65534", "--regid", "65534", "--clear-groups")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def public_daemon(daemon_factory):
    """A daemon whose socket uid 65534 may connect to (socket_group = nogroup)."""
    directory = Path(tempfile.mkdtemp(prefix="accessd-priv-"))
    os.chmod(directory, 0o755)  # pytest's own tmp_path is root's alone
    yield daemon_factory('socket_group = "nogroup"\n[reader]\nprotocol = "wiegand"\n'
                         '[door]\nrelay_pin = 22\n[access]\nlockout_attempts = 3\n', directory=directory)
    shutil.rmtree(directory, ignore_errors=True)


def as_nobody(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", *NOBODY, sys.executable, "-c", "import sys; from accessd.cli import main; sys.exit(main())",
         "--socket", d.socket, *args],
        cwd=ROOT, env=d.env, capture_output=True, text=True, timeout=60,
    )


def events(d, glob: str) -> list[dict]:
    time.sleep(0.5)  # the log commits every flush_interval (0.2 s here)
    out = d.cli("events", "--type", glob, "--json", check=0).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_present_and_dry_run_are_forbidden_to_an_unprivileged_user(public_daemon):
    d = public_daemon
    d.cli("holders", "add", "--first-name", "Ann", "--card", "0318601", "--bit-length", "26", "--uses", "3", check=0)
    d.cli("holders", "add", "--first-name", "Pat", "--pin", "4711", check=0)
    for args in (("--card", "0318601", "--bit-length", "26", "--present"),
                 ("--card", "0318601", "--bit-length", "26"),
                 ("--pin", "4711"), ("--pin", "4711", "--present")):
        done = as_nobody(d, "check-credential", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "privileged" in done.stderr and "uid 65534" in done.stderr
        assert "granted" not in done.stdout and "Pat" not in done.stdout
    status = d.result("status")
    assert status["door"]["state"] == "locked"
    assert not events(d, "door.unlocked") and not events(d, "access.*")
    shown = d.result("holders.show", holder="Ann")
    assert shown["uses"] == 3  # no use was taken
    refused = events(d, "security.forbidden")
    assert len(refused) == 4 and {e["uid"] for e in refused} == {65534}
    assert {e["command"] for e in refused} == {"check-credential"}


def test_the_list_and_the_latest_reads_are_privileged(public_daemon):
    d = public_daemon
    for args in (("holders", "list"), ("holders", "export"), ("holders", "show", "1"), ("latest",)):
        done = as_nobody(d, *args)
        assert done.returncode == 2 and "privileged" in done.stderr, (args, done.stderr)
    ok = as_nobody(d, "status", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["door"]["state"] == "locked"
    assert as_nobody(d, "events").returncode == 0


def test_an_unknown_reader_id_is_refused(public_daemon):
    d = public_daemon
    d.cli("holders", "add", "--first-name", "Ann", "--card", "0318601", "--bit-length", "26", check=0)
    for extra in ((), ("--present",)):
        done = d.cli("check-credential", "--card", "0318601", "--bit-length", "26", "--reader", "door-9", *extra)
        assert done.returncode == 2 and "reader1" in done.stderr and "door-9" in done.stderr, done.stderr
    assert d.result("status")["door"]["state"] == "locked"
    granted = d.cli("check-credential", "--card", "0318601", "--bit-length", "26", "--reader", "reader1", "--present")
    assert granted.returncode == 0
    assert d.result("status")["door"]["state"] == "unlocked"


def test_audit_events_name_the_peer_and_never_the_pin(public_daemon):
    d = public_daemon
    d.cli("holders", "add", "--first-name", "Ann", "--pin", "582914", check=0)
    d.cli("holders", "update", "Ann", "--suspended", check=0)
    d.cli("check-credential", "--pin", "582914", check=1)
    d.cli("door", "unlock", "--for", "3", check=0)
    d.cli("door", "lock", check=0)
    d.cli("holders", "remove", "Ann", check=0)
    audit = events(d, "admin.*")
    assert [e["type"] for e in audit] == [
        "admin.holders.add", "admin.holders.update", "admin.check_credential", "admin.door.unlock",
        "admin.door.lock", "admin.holders.remove"]
    for e in audit:
        assert (e["uid"], e["gid"]) == (0, 0) and e["pid"] > 0 and e["ok"] is True
    assert audit[0]["holder"]["first_name"] == "Ann" and audit[0]["params"]["pin"] == "<redacted>"
    assert audit[1]["params"]["suspended"] is True
    assert (audit[2]["decision"], audit[2]["reason"]) == ("denied", "suspended")
    unlocked = events(d, "door.unlocked")[-1]
    assert (unlocked["reason"], unlocked["uid"]) == ("manual", 0)
    assert events(d, "door.locked")[-1]["uid"] == 0
    log = (d.state_dir / "events.db").read_bytes() + Path(d.state_dir / "events.db-wal").read_bytes() \
        if (d.state_dir / "events.db-wal").exists() else (d.state_dir / "events.db").read_bytes()
    assert b"582914" not in log


def test_idle_connections_of_one_user_never_lock_out_root(public_daemon):
    d = public_daemon
    # uid 65534 opens as many connections as it can and holds them
    holder = subprocess.Popen(
        ["setpriv", *NOBODY, sys.executable, "-c",
         "import socket, sys, time\n"
         "held = []\n"
         "for _ in range(300):\n"
         "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); held.append(s)\n"
         "print(sum(1 for s in held if b'accessd' in s.recv(200)), flush=True)\n"
         "time.sleep(60)\n", d.socket],
        stdout=subprocess.PIPE, text=True)
    try:
        greeted = int(holder.stdout.readline())
        assert greeted == 16  # daemon.max_clients_per_uid
        refused = as_nobody(d, "status")
        assert refused.returncode == 3 and "16 per user" in refused.stderr and refused.stdout == ""
        d.cli("door", "unlock", check=0)
        done = d.cli("door", "lock")
        assert done.returncode == 0 and "locked" in done.stdout
    finally:
        holder.kill()
        holder.wait()


def test_admin_slots_are_kept_free(tmp_path):
    """Many unprivileged users together leave ``admin_reserve`` slots to root."""
    from accessd.shell.server import Peer, Server

    server = Server(max_clients=10, max_clients_per_uid=4, admin_reserve=3)

    class Conn:
        def __init__(self, uid):
            self.peer = Peer(1, uid, uid)

    server.connections = {Conn(1000 + i // 4) for i in range(7)}
    assert "kept for administrators" in server._refusal(Peer(1, 2000, 2000), False)
    assert server._refusal(Peer(1, 0, 0), True) is None
    server.connections = {Conn(1000) for _ in range(4)}
    assert "per user" in server._refusal(Peer(1, 1000, 1000), False)
    assert server._refusal(Peer(1, 1001, 1001), False) is None
    server.connections = {Conn(0) for _ in range(10)}
    assert "max 10" in server._refusal(Peer(1, 0, 0), True)


def test_cli_never_exits_0_on_a_refused_or_broken_connection(tmp_path):
    """A listener that answers with a refusal, or closes at once: exit 3, a message."""
    path = str(tmp_path / "fake.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(4)
    refusal = b'{"id":null,"ok":false,"error":{"kind":"unavailable","message":"too many clients (max 1)"}}\n'

    import threading

    def serve():
        for answer in (refusal, b"", b'{"accessd":"x","protocol":1}\n'):
            conn, _ = listener.accept()
            if answer:
                conn.sendall(answer)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # (the last one closes after the greeting: whether the request's send or the read of
    # its answer notices first is the kernel's choice)
    for expect in ("refused the connection: too many clients", "closed the connection", "the daemon at"):
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from accessd.cli import main; sys.exit(main())",
             "--socket", path, "door", "lock"], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 3 and expect in done.stderr and done.stdout == "", (expect, done)
    t.join(5)
    listener.close()


def test_an_unknown_pin_exits_1(public_daemon):
    done = public_daemon.cli("check-credential", "--pin", "13579")
    assert done.returncode == 1 and "unknown_credential" in done.stdout


@pytest.mark.parametrize("extra, key", [
    ('[daemon]\nsocket_group = "no-such-group-x"\n', "daemon.socket_group"),
    ('[daemon]\nadmin_group = "no-such-group-x"\n', "daemon.admin_group"),
    ('[access]\nupstream_fake_grants = ["zzz"]\n', "access.upstream_fake_grants[0]"),
])
def test_config_names_a_missing_group_and_a_bad_grant(tmp_path, extra, key):
    cfg = tmp_path / "a.toml"
    cfg.write_text(extra)
    done = subprocess.run([sys.executable, "-m", "accessd.main", "--check-config", str(cfg)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and key in done.stderr, done.stderr
