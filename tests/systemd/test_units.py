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


def test_exposure_is_at_most_1(units):
    done = subprocess.run([ANALYZE, "security", "--offline=yes", str(units / "accessd.service")], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for accessd.service: ([0-9.]+)", done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 1.0  # 0.7 with systemd 252 (README)


def test_service_has_what_the_door_needs():
    text = (UNITS / "accessd.service").read_text()
    for line in (
        "Type=notify", "Restart=always", "User=accessd", "SupplementaryGroups=gpio spi dialout",
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


# The names the kernel gives the character-device majors (/proc/devices) for what the
# door uses: drivers/gpio/gpiolib.c "gpiochip", drivers/spi/spidev.c "spi", the serial
# drivers' "ttyS", "ttyAMA" (PL011), "ttyUSB", "ttyACM".  "char-spidev" matched nothing.
KERNEL_MAJORS = {"gpiochip", "spi", "ttyS", "ttyAMA", "ttyUSB", "ttyACM"}


def _settings(name: str) -> list[str]:
    text = (UNITS / "accessd.service").read_text()
    return re.findall(rf"^{name}=(.*)$", text, re.M)


def test_device_allow_names_real_devices():
    allowed = _settings("DeviceAllow")
    classes = {a.split()[0].removeprefix("char-") for a in allowed if a.startswith("char-")}
    assert classes <= KERNEL_MAJORS, classes - KERNEL_MAJORS
    assert {"gpiochip", "spi"} <= classes
    assert "/dev/gpiomem rw" in allowed  # pin_factory = "rpigpio"


def test_supplementary_groups_exist_where_the_unit_runs():
    groups = _settings("SupplementaryGroups")[0].split()
    assert {"gpio", "spi", "dialout"} <= set(groups)
    sysusers = (UNITS / "sysusers.d" / "accessd.conf").read_text()
    created = set(re.findall(r"^g (\S+) ", sysusers, re.M))
    for group in groups:
        assert group in created or group == "dialout", f"{group}: not created by sysusers.d (Debian has only dialout)"
        assert re.search(rf"^m accessd {group}$", sysusers, re.M), group


def test_lgpio_fifo_goes_to_a_writable_directory():
    # ProtectSystem=strict: only StateDirectory/RuntimeDirectory are writable.
    env = dict(e.split("=", 1) for line in _settings("Environment") for e in line.split())
    assert env["LG_WD"] == "/run/" + _settings("RuntimeDirectory")[0]
    assert _settings("WorkingDirectory") == ["/var/lib/" + _settings("StateDirectory")[0]]


def test_exec_start_uses_the_default_config_and_config_errors_do_not_loop():
    from accessd.main import DEFAULT_CONFIG

    assert _settings("ExecStart") == [f"/usr/bin/accessd --config {DEFAULT_CONFIG}"]
    assert _settings("RestartPreventExitStatus") == ["2"]
    assert not _settings("ExecStartPre")  # the daemon checks its config itself and exits 2
    assert _settings("Documentation")
    assert "network" not in " ".join(_settings("After") + _settings("Wants"))  # PrivateNetwork=yes: no network ordering
    burst, interval, delay = int(_settings("StartLimitBurst")[0]), int(_settings("StartLimitIntervalSec")[0]), int(_settings("RestartSec")[0])
    assert interval // delay < burst  # automatic restarts alone never hit the start limit


def test_invalid_config_exits_2(tmp_path):
    from accessd.main import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[door]\nrelay_pin = 99\n")
    assert main(["--check-config", str(bad)]) == 2
    assert main(["--config", str(bad)]) == 2
