"""The QR reader component: a real daemon with a serial scanner on a real pty."""

import json
import os
import pty
import subprocess
import sys
import time

import pytest

TEXT = "AQ1-KRSXG5CTMVRXEZLUKN2XAZLS"


def wait_events(daemon, pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        evs = daemon.result("events", after_seq=0)["events"]
        if pred(evs):
            return evs
        if time.monotonic() > deadline:
            raise AssertionError(json.dumps(evs, indent=1))
        time.sleep(0.05)


@pytest.fixture
def scanner(daemon_factory, tmp_path):
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    d = daemon_factory(f'[reader.qr]\nport = "{port}"\nmax_length = 64\n')
    d.result("holders.add", first_name="Rita", qr=TEXT)
    wait_events(d, lambda evs: any(e["type"] == "reader.connected" and e.get("reader") == "qr" for e in evs))
    yield d, master
    os.close(master)
    os.close(slave)


def test_a_scanned_text_grants_its_holder_and_no_event_carries_the_text(scanner):
    d, master = scanner
    os.write(master, TEXT.encode() + b"\r")
    evs = wait_events(d, lambda evs: any(e["type"] == "access.granted" for e in evs))
    granted = next(e for e in evs if e["type"] == "access.granted")
    assert granted["reader"] == "qr" and granted["holder"]["first_name"] == "Rita"
    assert granted["credential"]["kind"] == "qr"
    assert TEXT not in json.dumps(evs)
    assert d.result("status")["readers"]["qr"]["state"] == "connected"


def test_an_unknown_text_is_denied_and_a_too_long_scan_is_invalid_format_without_its_bytes(scanner):
    d, master = scanner
    os.write(master, b"AQ1-SOMETHINGELSE\r")
    wait_events(d, lambda evs: any(e["type"] == "access.denied" and e["reason"] == "unknown_credential" for e in evs))
    secret = b"X" * 80
    os.write(master, secret + b"\r")
    evs = wait_events(d, lambda evs: any(e["type"] == "access.denied" and e["reason"] == "invalid_format" for e in evs))
    bad = next(e for e in evs if e["type"] == "access.denied" and e["reason"] == "invalid_format")
    assert bad["kind"] == "qr" and bad["detail"].startswith("too_long") and "bits" not in bad
    assert "XXXXXXXX" not in json.dumps(evs) and "SOMETHINGELSE" not in json.dumps(evs)
    # the scanner goes on reading after the bad scan
    os.write(master, TEXT.encode() + b"\r")
    wait_events(d, lambda evs: any(e["type"] == "access.granted" for e in evs))


def test_simulate_qr_goes_through_the_same_decoder_and_policy(scanner):
    d, _ = scanner
    out = d.result("simulate.qr", text=TEXT)
    assert out["decisions"][0]["decision"] == "granted" and out["decisions"][0]["holder"]["first_name"] == "Rita"
    out = d.result("simulate.qr", text="Y" * 100)
    assert [x["reason"] for x in out["decisions"]] == ["invalid_format"]


def test_qr_config_errors_name_the_key(daemon_factory):
    d = daemon_factory('[reader.qr]\nport = "/dev/null"\nevdev = "/dev/input/event0"\n', start=False)
    r = subprocess.run([sys.executable, "-m", "accessd.main", "--check-config", str(d.config)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "reader.qr.evdev" in r.stderr, r.stderr
