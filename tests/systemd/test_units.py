"""The systemd units verify and are hardened (systemd-analyze, offline)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
ANALYZE = shutil.which("systemd-analyze") or "systemd-analyze is not installed (.ci/run installs it)"


@pytest.fixture
def units(tmp_path):
    """The units with ExecStart pointing at this checkout's accessd (verify checks the binary)."""
    accessd = Path(sys.executable).with_name("accessd")
    assert accessd.exists(), "install the package first (make test does)"
    for name in ("accessd.service", "accessd.socket"):
        text = (UNITS / name).read_text().replace("/usr/bin/accessd", str(accessd))
        (tmp_path / name).write_text(text)
    return tmp_path


def test_units_verify(units):
    done = subprocess.run([ANALYZE, "verify", str(units / "accessd.service"), str(units / "accessd.socket")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "accessd" not in done.stderr, done.stderr  # no warning about our units


def test_exposure_is_at_most_2(units):
    done = subprocess.run([ANALYZE, "security", "--offline=yes", str(units / "accessd.service")], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for accessd.service: ([0-9.]+)", done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0


def test_service_has_what_the_door_needs():
    text = (UNITS / "accessd.service").read_text()
    for line in (
        "Type=notify", "Restart=always", "User=accessd", "SupplementaryGroups=gpio dialout",
        "StateDirectory=accessd", "RuntimeDirectory=accessd", "RuntimeDirectoryPreserve=yes",
        "ProtectSystem=strict", "DevicePolicy=closed", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert re.search(r"^DeviceAllow=char-gpiochip rw$", text, re.M)


def test_sysusers_and_tmpfiles_parse():
    sysusers = (UNITS / "sysusers.d" / "accessd.conf").read_text()
    assert re.search(r"^u accessd ", sysusers, re.M) and re.search(r"^m accessd gpio$", sysusers, re.M)
    tmpfiles = UNITS / "tmpfiles.d" / "accessd.conf"
    for line in tmpfiles.read_text().splitlines():
        if line and not line.startswith("#"):
            kind, path, mode, user, group, _age = line.split()
            assert kind == "d" and path.startswith("/") and re.fullmatch(r"0[0-7]{3}", mode) and user and group
