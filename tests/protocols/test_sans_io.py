"""protocols/ is sans-IO: it never imports I/O, threads, clocks or randomness."""

import ast
from pathlib import Path

import pytest

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"
FORBIDDEN_MODULES = {"serial", "gpiozero", "socket", "threading", "asyncio", "time", "select", "selectors", "subprocess"}
FORBIDDEN_NAMES = {("os", "urandom"), ("random", "random"), ("secrets", "token_bytes")}


def imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name, node.lineno
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_NAMES:
                yield node.value.id, node.attr, node.lineno


def offences(path: Path) -> list[str]:
    found = []
    for module, name, line in imports(path):
        top = module.split(".")[0]
        if top in FORBIDDEN_MODULES:
            found.append(f"{path.name}:{line} uses {module}{'.' + name if name else ''}")
        elif (top, name) in FORBIDDEN_NAMES:
            found.append(f"{path.name}:{line} uses {top}.{name}")
    return found


SOURCES = sorted(PROTOCOLS.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROTOCOLS)))
def test_module_is_sans_io(path):
    assert offences(path) == []


def test_the_scan_catches_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom serial import Serial\nimport os\nx = os.urandom(4)\nfrom asyncio import sleep\n")
    found = offences(bad)
    assert len(found) == 4, found


def test_there_is_something_to_scan():
    assert len(SOURCES) >= 2
