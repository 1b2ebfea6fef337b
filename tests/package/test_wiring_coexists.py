"""PyPI's unrelated ``wiring`` package installs next to accessd, and both import.

accessd's ``wiring/`` folder installs as ``accessd.wiring`` (setup.cfg package_dir), so
no top-level ``wiring`` of accessd's is there for the other package to overwrite on
install or delete on uninstall (issue 14, finding 5).  Both are installed for real
(--no-deps) into a scratch venv; needs PyPI (the wiring sdist/wheel, and setuptools to
build accessd's wheel).
"""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import accessd.wiring, accessd.protocols.wiegand.errors, wiring, pathlib; print(pathlib.Path(wiring.__file__).parent)"


def test_pypi_wiring_installs_next_to_accessd(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    src = tmp_path / "src"  # a copy: building must not leave build/ or egg-info in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "*.deb"))

    def pip(*args: str) -> None:
        done = subprocess.run([python, "-m", "pip", "-q", "--disable-pip-version-check", *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    pip("install", "--no-deps", str(src))
    pip("install", "--no-deps", "wiring")
    done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    site = Path(done.stdout.strip()).parent
    assert (site / "accessd" / "wiring" / "__init__.py").exists() and (site / "wiring" / "__init__.py").exists()
    pip("uninstall", "-y", "wiring")
    done = subprocess.run([python, "-c", "import accessd.wiring.boards, accessd.wiring"], capture_output=True, text=True, cwd=tmp_path)
    assert "No module named 'accessd" not in done.stderr, done.stderr
    assert (site / "accessd" / "wiring" / "__init__.py").exists()  # uninstalling the other package kept ours
