"""The Debian package: what `make deb` puts in it, and that its commands run from it.

The real installation (apt-get install, systemd-analyze verify of the installed unit,
purge) changes the machine, so it is tests/package/check_deb.sh, which .ci/run runs as
root; this test builds the package and checks it without installing it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from accessd import __version__

ROOT = Path(__file__).resolve().parents[2]
DPKG_DEB = shutil.which("dpkg-deb")
pytestmark = pytest.mark.skipif(DPKG_DEB is None, reason="dpkg-deb is not installed (a Debian tool; .ci/run runs on Debian)")


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    done = subprocess.run(["bash", str(ROOT / "systemd/debian/build.sh"), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.name == f"accessd_{__version__}_all.deb"
    return path


def _field(deb: Path, name: str) -> str:
    return subprocess.run([DPKG_DEB, "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_contents(deb):
    listing = subprocess.run([DPKG_DEB, "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[-1].removeprefix(".") for line in listing.splitlines()}
    for want in (
        "/usr/bin/accessd", "/usr/bin/accessd-cli",
        "/usr/lib/systemd/system/accessd.service", "/usr/lib/systemd/system/accessd.socket",
        "/usr/lib/sysusers.d/accessd.conf", "/usr/lib/tmpfiles.d/accessd.conf",
        "/etc/accessd/accessd.toml", "/usr/share/doc/accessd/copyright",
        "/usr/lib/accessd/accessd/main.py", "/usr/lib/accessd/accessd/protocols/wiegand/formats.py",
        "/usr/lib/accessd/accessd/wiring/boards.py", "/usr/lib/accessd/vendor/gpiozero/pins/lgpio.py",
        "/usr/lib/accessd/vendor/paho/mqtt/client.py", "/usr/lib/accessd/accessd/fleet/mqtt.py",
    ):
        assert want in paths, want
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)  # postinst compiles
    assert not any(p.startswith(("/usr/lib/accessd/protocols", "/usr/lib/accessd/wiring", "/usr/lib/python3")) for p in paths)
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}


def test_control(deb):
    assert _field(deb, "Package") == "accessd"
    assert _field(deb, "Version") == __version__
    assert _field(deb, "Architecture") == "all"
    depends = _field(deb, "Depends")
    for dep in ("python3 (>= 3.11)", "python3-construct", "python3-serial", "python3-cryptography", "python3-colorzero"):
        assert dep in depends
    assert "python3-gpiozero" not in depends  # Debian 12's 1.6.2 has no lgpio factory: bundled
    assert "python3-rich" in _field(deb, "Recommends")


def test_conffile_and_maintainer_scripts(deb, tmp_path):
    subprocess.run([DPKG_DEB, "-e", str(deb), str(tmp_path / "DEBIAN")], check=True)
    assert (tmp_path / "DEBIAN/conffiles").read_text().split() == ["/etc/accessd/accessd.toml"]
    for script in ("postinst", "prerm", "postrm"):
        done = subprocess.run(["sh", "-n", str(tmp_path / "DEBIAN" / script)], capture_output=True, text=True)
        assert done.returncode == 0, (script, done.stderr)
    assert "rm -rf /var/lib/accessd" in (tmp_path / "DEBIAN/postrm").read_text()


def test_packaged_commands_run(deb, tmp_path):
    """The launchers find the packaged code next to them, and the shipped config is valid."""
    subprocess.run([DPKG_DEB, "-x", str(deb), str(tmp_path)], check=True)
    first = (tmp_path / "usr/bin/accessd").read_text().splitlines()[0]
    assert first == "#!/usr/bin/python3 -I"
    run = [sys.executable, "-I"]
    done = subprocess.run([*run, str(tmp_path / "usr/bin/accessd"), "--check-config", str(tmp_path / "etc/accessd/accessd.toml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*run, str(tmp_path / "usr/bin/accessd-cli"), "--version"], capture_output=True, text=True)
    assert done.stdout.strip() == f"accessd-cli {__version__}", done.stderr
    probe = "import accessd, gpiozero.pins.mock; print(accessd.__file__); print(gpiozero.__file__)"
    done = subprocess.run([*run, "-c", f"import sys; sys.path[:0] = [{str(tmp_path / 'usr/lib/accessd')!r}, "
                           f"{str(tmp_path / 'usr/lib/accessd/vendor')!r}]; {probe}"], capture_output=True, text=True)
    where, gpiozero = done.stdout.split()
    assert where.startswith(str(tmp_path)) and gpiozero.startswith(str(tmp_path / "usr/lib/accessd/vendor")), done.stderr
