"""The [mqtt] component against a real mosquitto: birth/will, ordered at-least-once events
across broker outages and kill -9, signed commands, the door working with the broker down."""

from __future__ import annotations

import json
import os
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accessd.fleet.mqtt import sign

PREFIX = "accessd/door-1"


def mqtt_toml(port: int, key: Ed25519PrivateKey | None = None, extra: str = "") -> str:
    text = f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "door-1"\nkeepalive = 5\n{extra}'
    if key is not None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        text += f'site_public_key = "{key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()}"\n'
    return text


def make_events(d, n: int) -> None:
    for i in range(n):
        d.result("door.unlock", seconds=5) if i % 2 == 0 else d.result("door.lock")


def assert_in_order(events: list[dict], last_seq: int) -> None:
    """Every seq 1..last_seq arrived; the first arrival of each is in order; duplicates are equal."""
    first: dict[int, dict] = {}
    order = []
    for e in events:
        assert e["device"] == "door-1"
        if e["seq"] in first:
            assert first[e["seq"]] == e, "a duplicate differs from the original"
        else:
            first[e["seq"]] = e
            order.append(e["seq"])
    assert order == sorted(order), "events arrived out of order"
    missing = set(range(1, last_seq + 1)) - set(first)
    assert not missing, f"lost seqs: {sorted(missing)[:20]}"


def last_seq(d) -> int:
    return d.result("status")["daemon"]["log"]["last_seq"]


def test_birth_and_last_will(broker, daemon_factory, subscriber_factory):
    d = daemon_factory(mqtt_toml(broker.port))
    sub = subscriber_factory(broker.port, [f"{PREFIX}/status"], "status-watch")
    sub.wait_for(lambda ms: ms and ms[-1].payload == b"online")
    assert d.result("status")["mqtt"]["device"] == "door-1"
    d.kill()
    sub.wait_for(lambda ms: ms[-1].payload == b"offline")
    late = subscriber_factory(broker.port, [f"{PREFIX}/status"], "late")
    late.wait_for(lambda ms: ms and ms[-1].payload == b"offline" and ms[-1].retain)


def test_clean_stop_publishes_offline(broker, daemon_factory, subscriber_factory):
    d = daemon_factory(mqtt_toml(broker.port))
    sub = subscriber_factory(broker.port, [f"{PREFIX}/status"], "status-watch")
    sub.wait_for(lambda ms: ms and ms[-1].payload == b"online")
    assert d.stop() == 0
    sub.wait_for(lambda ms: ms[-1].payload == b"offline")


def test_events_in_order_with_seq_and_device(broker, daemon_factory, subscriber_factory):
    sub = subscriber_factory(broker.port, [f"{PREFIX}/event/#"])
    d = daemon_factory(mqtt_toml(broker.port))
    make_events(d, 20)
    n = last_seq(d)
    sub.wait_for(lambda ms: {json.loads(m.payload)["seq"] for m in ms} >= set(range(1, n + 1)))
    events = sub.events()
    assert_in_order(events, n)
    unlocked = next(e for e in events if e["type"] == "door.unlocked")
    topic = next(m.topic for m in sub.messages if json.loads(m.payload)["seq"] == unlocked["seq"])
    assert topic == f"{PREFIX}/event/door.unlocked"


def test_type_globs_select_events(broker, daemon_factory, subscriber_factory):
    sub = subscriber_factory(broker.port, [f"{PREFIX}/event/#"])
    d = daemon_factory(mqtt_toml(broker.port, extra='publish = ["door.*"]\nqos_by_type = { "door.locked" = 0 }\n'))
    make_events(d, 6)
    sub.wait_for(lambda ms: sum(json.loads(m.payload)["type"] == "door.locked" for m in ms) >= 3)
    assert {e["type"] for e in sub.events()} <= {"door.unlocked", "door.locked"}
    deadline = time.monotonic() + 5  # the unselected events still move the cursor
    while d.result("status")["mqtt"]["cursor"] < last_seq(d) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert d.result("status")["mqtt"]["cursor"] == last_seq(d)


def test_broker_restarted_mid_stream_loses_nothing(broker, daemon_factory, subscriber_factory):
    sub = subscriber_factory(broker.port, [f"{PREFIX}/event/#"])
    d = daemon_factory(mqtt_toml(broker.port))
    for _round in range(5):
        make_events(d, 6)
        broker.stop()
        make_events(d, 6)  # the door keeps working; the events wait in the log
        broker.start()
    make_events(d, 4)
    n = last_seq(d)
    sub.wait_for(lambda ms: {json.loads(m.payload)["seq"] for m in ms} >= set(range(1, n + 1)), timeout=40)
    assert_in_order(sub.events(), n)


def test_kill_9_resumes_from_the_cursor(broker, daemon_factory, subscriber_factory, tmp_path):
    sub = subscriber_factory(broker.port, [f"{PREFIX}/event/#"])
    d = daemon_factory(mqtt_toml(broker.port))
    make_events(d, 10)
    n1 = last_seq(d)
    sub.wait_for(lambda ms: {json.loads(m.payload)["seq"] for m in ms} >= set(range(1, n1 + 1)))
    broker.stop()
    make_events(d, 30)  # a backlog the broker never saw
    time.sleep(0.5)  # committed to the log (flush_interval 0.2)
    d.kill()
    cursor = json.loads((d.state_dir / "mqtt.cursor").read_text())["seq"]
    assert cursor <= n1 + 10  # the backlog was not acknowledged
    broker.start()
    d2 = daemon_factory(mqtt_toml(broker.port), directory=tmp_path)
    n2 = last_seq(d2)
    assert n2 > n1 + 30
    sub.wait_for(lambda ms: {json.loads(m.payload)["seq"] for m in ms} >= set(range(1, n2 + 1)), timeout=30)
    assert_in_order(sub.events(), n2)
    assert not [e for e in sub.events() if e["type"] == "system.events_lost"]


def test_ring_overrun_is_reported_as_a_gap(broker, daemon_factory, subscriber_factory):
    """The broker away while more events than the ring holds happen: the lost ones are one gap event."""
    sub = subscriber_factory(broker.port, [f"{PREFIX}/event/#"])
    broker.stop()
    d = daemon_factory(mqtt_toml(broker.port), start=False)
    d.config.write_text(d.config.read_text().replace("flush_interval = 0.2\n", "flush_interval = 0.2\nevent_capacity = 100\n"))
    d.start()
    make_events(d, 150)
    time.sleep(0.5)
    d.stop()
    broker.start()
    d.start()
    n = last_seq(d)
    sub.wait_for(lambda ms: any(json.loads(m.payload)["seq"] == n for m in ms), timeout=30)
    gaps = [e for e in sub.events() if e["type"] == "system.events_lost"]
    assert gaps and gaps[0]["first"] == 1 and gaps[0]["last"] >= 1
    seqs = [e["seq"] for e in sub.events()]
    assert seqs == sorted(seqs)


# -- commands ----------------------------------------------------------------------------
def command(key, cmd: str, params: dict | None = None, **over) -> dict:
    body = {"cmd": cmd, "params": params or {}, "id": over.pop("id", "c" + os.urandom(4).hex()),
            "device": "door-1", "ts": time.time(), "nonce": os.urandom(12).hex(), **over}
    return sign(key, body) if key is not None else body


@pytest.fixture
def commanded(broker, daemon_factory, subscriber_factory):
    key = Ed25519PrivateKey.generate()
    d = daemon_factory(mqtt_toml(broker.port, key))
    sub = subscriber_factory(broker.port, [f"{PREFIX}/reply/#", f"{PREFIX}/status"], "site")
    sub.wait_for(lambda ms: any(m.payload == b"online" for m in ms))
    return key, d, sub


def send(sub, body: dict, retain: bool = False):
    sub.client.publish(f"{PREFIX}/cmd", json.dumps(body), qos=1, retain=retain).wait_for_publish(5)


def reply(sub, rid: str) -> dict:
    sub.wait_for(lambda ms: any(m.topic == f"{PREFIX}/reply/{rid}" for m in ms))
    return json.loads(next(m.payload for m in sub.messages if m.topic == f"{PREFIX}/reply/{rid}"))


def log_events(d, glob: str) -> list[dict]:
    return d.result("events", type=glob)["events"]


def test_signed_unlock_and_lock(commanded):
    key, d, sub = commanded
    send(sub, command(key, "door.unlock", {"seconds": 30}, id="u1"))
    r = reply(sub, "u1")
    assert r["ok"] and r["result"]["state"] == "unlocked", r
    assert d.result("status")["door"]["state"] == "unlocked"
    audit = log_events(d, "admin.door.unlock")
    assert audit[-1]["via"] == "mqtt" and audit[-1]["ok"] and audit[-1]["id"] == "u1"
    send(sub, command(key, "door.lock", id="l1"))
    assert reply(sub, "l1")["ok"]
    assert d.result("status")["door"]["state"] == "locked"
    send(sub, command(key, "status", id="s1"))
    assert reply(sub, "s1")["result"]["mqtt"]["connected"] is True


@pytest.mark.parametrize("case", ["retained", "unsigned", "bad_signature", "expired", "replay", "wrong_device", "plain"])
def test_refused_commands_change_nothing(commanded, case):
    key, d, sub = commanded
    rid = f"x{case.replace('_', '')}"
    body = command(key, "door.unlock", {"seconds": 30}, id=rid)
    if case == "unsigned":
        body = command(None, "door.unlock", {"seconds": 30}, id=rid)
    elif case == "bad_signature":
        body = sign(Ed25519PrivateKey.generate(), {k: v for k, v in body.items() if k != "sig"})
    elif case == "expired":
        body = command(key, "door.unlock", {"seconds": 30}, id=rid, ts=time.time() - 3600)
    elif case == "wrong_device":
        body = sign(key, {**{k: v for k, v in body.items() if k != "sig"}, "device": "door-2"})
    elif case == "replay":
        send(sub, body)
        assert reply(sub, rid)["ok"]
        d.result("door.lock")
        sub.messages.clear()
    if case == "plain":  # what Home Assistant's lock sends on its command_topic
        sub.client.publish(f"{PREFIX}/cmd", "UNLOCK", qos=1).wait_for_publish(5)
        expected = "malformed"
        time.sleep(1)
    else:
        send(sub, body, retain=(case == "retained"))
        r = reply(sub, rid)
        assert r["ok"] is False, r
        expected = case
        assert r["error"]["reason"] == expected
    deadline = time.monotonic() + 5
    while not log_events(d, "security.rejected_command") and time.monotonic() < deadline:
        time.sleep(0.1)
    rejected = log_events(d, "security.rejected_command")
    assert rejected and rejected[-1]["reason"] == expected
    assert d.result("status")["door"]["state"] == "locked"
    if case == "retained":
        sub.client.publish(f"{PREFIX}/cmd", b"", qos=1, retain=True).wait_for_publish(5)  # clear it


def test_retained_command_does_not_open_on_restart(broker, daemon_factory, subscriber_factory, tmp_path):
    """A signed, fresh command left retained on the broker is never run (avwuff/esphome-wiegand #6)."""
    key = Ed25519PrivateKey.generate()
    site = subscriber_factory(broker.port, [f"{PREFIX}/reply/#"], "site")
    site.client.publish(f"{PREFIX}/cmd", json.dumps(command(key, "door.unlock", {"seconds": 60}, id="r1")),
                        qos=1, retain=True).wait_for_publish(5)
    d = daemon_factory(mqtt_toml(broker.port, key))
    assert reply(site, "r1")["error"]["reason"] == "retained"
    assert d.result("status")["door"]["state"] == "locked"


# -- the door never waits on MQTT --------------------------------------------------------
def test_card_granted_with_the_broker_unreachable(daemon_factory, tmp_path):
    from tests.fleet.conftest import free_port

    d = daemon_factory(mqtt_toml(free_port()))  # nothing listens there
    d.result("holders.add", first_name="Ann", card="0B40288", bit_length=26)
    done = d.cli("check-credential", "--card", "0B40288", "--bit-length", "26", "--present", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "granted"
    status = d.result("status")
    assert status["mqtt"]["connected"] is False
    assert status["door"]["state"] == "unlocked"


def test_home_assistant_discovery(broker, daemon_factory, subscriber_factory):
    daemon_factory(mqtt_toml(broker.port))
    sub = subscriber_factory(broker.port, ["homeassistant/#", f"{PREFIX}/state/#"], "ha")
    sub.wait_for(lambda ms: len([m for m in ms if m.topic.startswith("homeassistant/")]) >= 3)
    configs = {m.topic: json.loads(m.payload) for m in sub.messages if m.topic.startswith("homeassistant/")}
    lock = configs["homeassistant/lock/door-1/door/config"]
    assert lock["availability_topic"] == f"{PREFIX}/status" and lock["command_topic"] == f"{PREFIX}/cmd"
    assert lock["device"]["identifiers"] == ["accessd_door-1"] and "sw_version" in lock["device"]
    assert configs["homeassistant/binary_sensor/door-1/contact/config"]["device_class"] == "door"
    assert "homeassistant/sensor/door-1/reader/config" in configs
    late = subscriber_factory(broker.port, ["homeassistant/#"], "ha-late")  # they are retained
    late.wait_for(lambda ms: len(ms) >= 3 and all(m.retain for m in ms))
    sub.wait_for(lambda ms: any(m.topic == f"{PREFIX}/state/lock" and m.payload == b"LOCKED" for m in ms))


def test_broker_down_at_start_events_arrive_later(broker, daemon_factory, subscriber_factory):
    sub = subscriber_factory(broker.port, [f"{PREFIX}/event/#"])
    broker.stop()
    d = daemon_factory(mqtt_toml(broker.port))
    d.result("holders.add", first_name="Ann", card="0B40288", bit_length=26)
    done = d.cli("check-credential", "--card", "0B40288", "--bit-length", "26", "--present", "--json")
    assert json.loads(done.stdout)["decision"] == "granted"
    broker.start()
    n = last_seq(d)
    sub.wait_for(lambda ms: {json.loads(m.payload)["seq"] for m in ms} >= set(range(1, n + 1)), timeout=30)
    assert_in_order(sub.events(), n)
    assert any(e["type"] == "access.granted" for e in sub.events())


@pytest.mark.parametrize(("table", "key"), [
    ('[mqtt]\nhost = "h"\nport = 0\n', "mqtt.port"),
    ('[mqtt]\nhost = "h"\nsite_public_key = "00"\n', "mqtt.site_public_key"),
    ('[mqtt]\nhost = "h"\ntls_cert = "/c.pem"\n', "mqtt.tls_cert"),
    ('[mqtt]\nhost = "h"\ntopic_prefix = "a/#"\n', "mqtt.topic_prefix"),
    ('[mqtt]\nhost = "h"\nqos = 3\n', "mqtt.qos"),
    ('[mqtt]\nhots = "h"\n', "mqtt.hots"),
])
def test_config_errors_name_the_key(table, key):
    import tomllib

    from accessd.config import parse_config
    from accessd.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(table))
    assert key in str(info.value)


def test_off_without_host():
    from accessd.config import parse_config

    assert parse_config({}).mqtt.host is None
