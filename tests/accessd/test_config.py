import subprocess
import sys
from pathlib import Path

import pytest

from accessd.config import load_config, parse_config
from accessd.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BAD = [
    ({"door": {"access_time": "seven"}}, 'door.access_time: expected a number of seconds 1–3600, got "seven"'),
    ({"door": {"access_time": 0}}, "door.access_time: expected a number of seconds 1–3600, got 0.0"),
    ({"door": {"access_time": True}}, "door.access_time: expected a number of seconds 1–3600, got true"),
    ({"door": {"normal_state": "ajar"}}, 'door.normal_state: expected one of "open", "closed", got "ajar"'),
    ({"reader": {"protocol": "rs232"}}, 'reader.protocol: expected one of "osdp", "wiegand", "none", got "rs232"'),
    ({"reader": {"osdp": {"scbk": "00112233"}}}, "reader.osdp.scbk: expected 16 bytes as 32 hexadecimal digits"),
    ({"reader": {"osdp": {"address": 127}}}, "reader.osdp.address: expected a PD address 0–126, got 127"),
    ({"reader": {"osdp": {"baud": 9601}}}, "reader.osdp.baud: expected one of 9600"),
    ({"reader": {"osdp": {"install_mode": "yes"}}}, 'reader.osdp.install_mode: expected true or false, got "yes"'),
    ({"daemon": {"socket": "relative.sock"}}, 'daemon.socket: expected an absolute path, got "relative.sock"'),
    ({"daemon": {"pin_factory": "pigpio"}}, "daemon.pin_factory: expected one of"),
    ({"daemon": {"event_capacity": 10}}, "daemon.event_capacity: expected a number of events 100–10_000_000, got 10"),
    ({"daemon": {"colour": "red"}}, "daemon.colour: unknown key (allowed here: socket, state_dir"),
    ({"doors": {}}, "doors: unknown key"),
    ({"door": 5}, "door: expected a table, got 5"),
    ({"inputs": {"aux": {"pin": "GPIO5x"}}}, 'inputs.aux.pin: expected a BCM GPIO number 0–53, got "GPIO5x"'),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_values_name_the_key_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert str(err.value).startswith(message)


def test_defaults_are_the_documented_ones():
    cfg = parse_config({})
    assert cfg.daemon.socket == "/run/accessd/accessd.sock"
    assert cfg.daemon.state_dir == "/var/lib/accessd"
    assert cfg.daemon.pin_factory == "lgpio"
    assert cfg.door.access_time == 7
    assert cfg.door.normal_state == "open"
    assert cfg.reader.osdp.baud == 9600
    assert cfg.daemon.event_capacity == 50_000


def test_sections_are_frozen():
    cfg = parse_config({})
    with pytest.raises(AttributeError):
        cfg.door.access_time = 1


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[door\naccess_time = 7\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "not valid TOML" in str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid(example):
    load_config(example)


def check_config(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "accessd.main", "--check-config", str(path)], capture_output=True, text=True, cwd=ROOT)


def test_check_config_exit_codes(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[door]\naccess_time = 5\n[reader]\nprotocol = "wiegand"\n')
    assert check_config(good).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[door]\naccess_time = "seven"\n')
    done = check_config(bad)
    assert done.returncode == 2
    assert 'door.access_time: expected a number of seconds 1–3600, got "seven"' in done.stderr
