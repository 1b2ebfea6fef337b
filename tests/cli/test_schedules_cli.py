"""The schedule commands through a real daemon: schedules list, status mode and clock, lockdown, rules."""

from __future__ import annotations

import json

EXTRA = """
[schedules.always]
weekly = ["daily 00:00-24:00"]
[schedules.never]
dates = ["2001-01-01"]
[groups.fire]
responder = true
[[modes.scheduled]]
schedule = "always"
mode = "card_only"
[[rules]]
name = "ping"
publish = "rule.ping"
"""


def test_schedules_status_lockdown_and_rules(daemon_factory):
    d = daemon_factory(EXTRA)
    out = json.loads(d.cli("schedules", "list", "--json", check=0).stdout)
    assert out["schedules"]["always"]["active"] is True and out["schedules"]["never"]["active"] is False
    assert out["schedules"]["never"]["next_change"] is None
    assert out["groups"] == {"fire": {"schedules": [], "responder": True}}
    text = d.cli("schedules", "list", check=0).stdout
    assert "always: active" in text and "group fire: any time, responder" in text
    assert d.cli("schedules", "list", "gym", check=1).returncode == 1
    status = d.result("status")
    assert status["door"]["mode"]["mode"] == "card_only"
    assert status["clock"]["synchronized"] in (True, False, None)
    out = json.loads(d.cli("door", "lockdown", "on", "--json", check=0).stdout)
    assert out["mode"]["mode"] == "lockdown"
    assert "mode card_only" in d.cli("door", "lockdown", "off", check=0).stdout
    assert "ping: on manual → publish rule.ping" in d.cli("rules", "list", check=0).stdout
    assert d.cli("rules", "trigger", "ping", check=0).stdout.strip() == "fired ping"
    assert d.cli("rules", "trigger", "nope", check=1).returncode == 1
    types = [e["type"] for e in d.result("events", limit=1000)["events"]]
    assert "door.mode" in types and "rule.ping" in types and "admin.door.lockdown" in types
