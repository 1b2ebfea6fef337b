"""State files that cannot be used: each one is a ``StateFileError`` naming the file and
what to do, and the daemon stops with that one line and exit status 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from accessd.errors import StateFileError
from accessd.store.entrylist import EntryList


def _filled(state: Path, n: int = 3000) -> None:
    s = EntryList(state)
    s.import_csv(["first_name,card,bit_length,pin\n"] + [f"H{i},{i:X},32,{10000 + i}\n" for i in range(n)])
    s.close()  # the last connection checkpoints: everything is in the main file
    assert not (state / "entrylist.db-wal").exists()


def _zero_header(p: Path) -> None:
    with open(p, "r+b") as f:
        f.write(bytes(100))


def _truncate(p: Path) -> None:
    os.truncate(p, p.stat().st_size // 2)


def _garbage(p: Path) -> None:
    p.write_bytes(b"this is not an SQLite database, just some bytes of garbage" * 100)


def _damage_a_page(p: Path) -> None:
    with open(p, "r+b") as f:  # the middle of the file: an index or table page, header intact
        f.seek(p.stat().st_size // 2)
        f.write(b"\xde\xad\xbe\xef" * 1024)


@pytest.mark.parametrize(
    "name, damage",
    [
        ("entrylist.db", _zero_header),
        ("entrylist.db", _truncate),
        ("entrylist.db", _damage_a_page),
        ("entrylist.db", _garbage),
        ("access.db", _garbage),
        ("access.db", _zero_header),
    ],
)
def test_a_damaged_state_file_is_named_with_what_to_do(tmp_path, name, damage):
    _filled(tmp_path)
    damage(tmp_path / name)
    with pytest.raises(StateFileError) as exc:
        EntryList(tmp_path)
    assert exc.value.path == str(tmp_path / name)
    assert str(exc.value).startswith(f"{tmp_path / name}: ")
    assert "restore it from a backup" in exc.value.remedy
    assert "\n" not in str(exc.value)


def test_stale_import_staging_files_are_removed_at_open(tmp_path):
    EntryList(tmp_path).close()
    stale = tmp_path / "import-0123456789abcdef.tmp"
    stale.write_bytes(b"left by a kill -9")
    keep = tmp_path / "notes.tmp"
    keep.write_text("not ours")
    EntryList(tmp_path, check=False).close()  # an import's own commit connection leaves them
    assert stale.exists()
    EntryList(tmp_path).close()
    assert not stale.exists() and keep.exists()


def test_the_daemon_stops_with_one_line_and_exit_2(daemon_factory):
    d = daemon_factory(start=False)
    d.state_dir.mkdir()
    _garbage(d.state_dir / "entrylist.db")
    done = subprocess.run([sys.executable, "-m", "accessd.main", "--config", str(d.config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"accessd: {d.state_dir / 'entrylist.db'}: cannot be used (")
    assert "Traceback" not in done.stderr and "restore it from a backup" in lines[-1]


NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as an unprivileged uid (root ignores file modes)")
@pytest.mark.parametrize("case", ["empty", "existing"])
def test_a_read_only_state_dir_is_named_with_what_to_do(case):
    top = Path(tempfile.mkdtemp(prefix="accessd-ro-"))
    try:
        os.chmod(top, 0o755)
        state = top / "state"
        state.mkdir()
        if case == "existing":
            _filled(state, 10)
            for p in [state, *state.iterdir()]:
                os.chown(p, NOBODY, NOBODY)
        os.chmod(state, 0o555)  # read-only for its owner and everyone
        code = textwrap.dedent(f"""
            from accessd.errors import StateFileError
            from accessd.store.entrylist import EntryList
            try:
                EntryList({str(state)!r})
            except StateFileError as exc:
                print(exc.path)
                print(exc)
            """)
        done = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                               sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        path, message = done.stdout.splitlines()
        expected = state / ("pin.key" if case == "empty" else "entrylist.db")
        assert path == str(expected)
        assert f"make {state} and its files writable by the daemon's user" in message
    finally:
        os.chmod(top / "state", 0o755)
        shutil.rmtree(top)
