"""The access component in a real daemon: the reader path, card + PIN, lockout, upstream, commands.

The reader-path tests run the daemon in-process (its loop in this thread) so they can
present credentials as a reader component does; a recording reader and door stand at
the ``daemon.readers`` / ``daemon.door`` hooks.  The command tests talk to a daemon
subprocess over its real Unix socket.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from accessd.protocols.credential import Credential
from accessd.protocols.pipeline import CardInterpreter, CardSettings, PinAbandoned, Rejected
from accessd.protocols.wiegand.formats import LIBRARY

from accessd.access.upstream import FakeUpstream, UpstreamAnswer, credential_key
from accessd.config import parse_config
from accessd.shell.daemon import Daemon
from accessd.shell.scheduler import VirtualClock

CARD = Credential.card("0318601", 26)
H10301_12_3456 = LIBRARY.encode("H10301", facility_code=12, card_number=3456)


class Reader:
    def __init__(self) -> None:
        self.feedback_calls: list[bool] = []

    def feedback(self, granted: bool) -> None:
        self.feedback_calls.append(granted)

    def status(self) -> dict:
        return {"state": "connected"}


class Door:
    """Wraps the real door component: records each grant with the use count read from
    another connection at that instant, then passes the grant on to the relay."""

    def __init__(self, real, db_path) -> None:
        self.real = real
        self.db_path = db_path
        self.grants: list[dict] = []

    def grant(self, *, seconds, holder, reader) -> None:
        uses = None
        if holder is not None and "id" in holder:
            with sqlite3.connect(self.db_path) as db:
                db.execute("ATTACH DATABASE ? AS st", (str(self.db_path.parent / "access.db"),))
                row = db.execute(
                    "SELECT h.uses - coalesce((SELECT taken FROM st.uses_taken t WHERE t.holder_id = h.id"
                    " AND t.epoch = h.uses_epoch), 0) FROM holders h WHERE h.id = ?",
                    (holder["id"],),
                ).fetchone()
                uses = row[0] if row else None
        self.grants.append({"seconds": seconds, "holder": holder, "reader": reader, "uses_on_disk": uses})
        if self.real is not None:
            self.real.grant(seconds=seconds, holder=holder, reader=reader)


def config(tmp_path, access: str = "", daemon: str = ""):
    import tomllib

    text = (
        f'[daemon]\nsocket = "{tmp_path}/a.sock"\nstate_dir = "{tmp_path}/state"\npin_factory = "mock"\n'
        f'flush_interval = 0.05\ntimezone = "Europe/Berlin"\n{daemon}\n[access]\n{access}\n'
    )
    return parse_config(tomllib.loads(text))


def run(tmp_path, body, access: str = ""):
    """Run ``body(daemon, events)`` inside a started in-process daemon."""

    async def main():
        d = Daemon(config(tmp_path, access), clock=VirtualClock(), virtual_time=True)
        events: list[dict] = []
        publish = d.publish

        def record(type, **fields):  # noqa: A002
            out = publish(type, **fields)
            events.append(out)
            return out

        d.publish = record
        task = asyncio.create_task(d.run())
        while d.server._server is None:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        d.readers["r1"] = Reader()
        d.readers["r2"] = Reader()
        d.door = d.access.door = Door(d.access.door, d.state_dir / "entrylist.db")
        try:
            return await body(d, events)
        finally:
            d.request_stop()
            await task

    return asyncio.run(main())


def advance(d, seconds: float) -> None:
    """Move the daemon's virtual clock on, firing every timer at its instant."""
    d.scheduler.advance(d.clock, seconds)


def of(events, *types):
    return [e for e in events if e["type"] in types]


async def present(d, credential, reader="r1"):
    out = d.access.present(credential, reader)
    if isinstance(out, asyncio.Future):
        out = await out
    return out


def test_granted_card_takes_the_use_before_the_door_acts(tmp_path):
    async def body(d, events):
        d.access.store.add(first_name="Ann", last_name="Lee", card="0318601", bit_length=26, uses=3, access_time=12)
        decision = await present(d, CARD)
        assert decision.granted and decision.remaining_uses == 2
        read, granted = of(events, "credential.read", "access.granted")
        assert read["credential"] == CARD.to_json() and read["reader"] == "r1"
        assert granted["holder"] == {"id": 1, "first_name": "Ann", "last_name": "Lee"}
        assert granted["credential"]["hex"] == "0318601" and granted["reason"] is None
        assert granted["remaining_uses"] == 2
        assert events.index(read) < events.index(granted)
        # the door was told after the decrement was committed (seen from another connection)
        assert d.door.grants == [
            {"seconds": 12.0, "holder": granted["holder"], "reader": "r1", "uses_on_disk": 2}
        ]
        assert d.readers["r1"].feedback_calls == [True]
        assert d.readers["r2"].feedback_calls == []
        # the real door component unlocked the (mock) relay for the holder's 12 s
        assert d.door.real.relay.unlocked
        unlocked = of(events, "door.unlocked")
        assert unlocked and events.index(unlocked[0]) > events.index(granted)
        await present(d, CARD)
        await present(d, CARD)
        denied = await present(d, CARD)
        assert (denied.granted, denied.reason, denied.remaining_uses) == (False, "uses_exhausted", 0)
        assert len(d.door.grants) == 3
        assert d.readers["r1"].feedback_calls == [True, True, True, False]
        assert of(events, "access.denied")[-1]["reason"] == "uses_exhausted"

    run(tmp_path, body)


def test_every_holder_state_reason_at_the_reader(tmp_path):
    async def body(d, events):
        s = d.access.store
        s.add(first_name="Sus", qr="S", suspended=True)
        s.add(first_name="Old", qr="O", valid_to="2020-01-01")
        s.add(first_name="New", qr="N", valid_from="2099-01-01")
        s.add(first_name="Zero", qr="Z", uses=0)
        s.add(first_name="Ok", qr="K")
        got = {}
        for qr in "SONZKX":
            got[qr] = (await present(d, Credential(kind="qr", qr=qr))).reason
        assert got == {
            "S": "suspended",
            "O": "expired",
            "N": "not_yet_valid",
            "Z": "uses_exhausted",
            "K": None,
            "X": "unknown_credential",
        }
        denied = of(events, "access.denied")
        assert [e["reason"] for e in denied] == ["suspended", "expired", "not_yet_valid", "uses_exhausted", "unknown_credential"]
        assert denied[0]["holder"]["first_name"] == "Sus" and denied[-1]["holder"] is None
        assert all(e["credential"]["kind"] == "qr" for e in denied)
        assert [g["holder"]["first_name"] for g in d.door.grants] == ["Ok"]
        assert d.door.grants[0]["seconds"] is None  # the door's configured access_time

    run(tmp_path, body)


def test_card_then_pin_within_the_timeout_at_the_same_reader(tmp_path):
    async def body(d, events):
        s = d.access.store
        s.add(first_name="Carol", format="H10301", facility_code=12, card_number=3456, pin="4321")
        s.add(first_name="Bob", pin="1234")
        card = Credential(kind="card", bits=H10301_12_3456, format="H10301", facility_code=12, card_number=3456)
        # card, then the right PIN: granted, the event names the card
        waiting = d.access.present(card, "r1")
        assert isinstance(waiting, asyncio.Future) and not waiting.done()
        assert d.access.status()["waiting_for_pin"] == ["r1"]
        d.access.present(Credential(kind="pin", pin="4321"), "r1")
        assert (await waiting).granted
        granted = of(events, "access.granted")[-1]
        assert granted["holder"]["first_name"] == "Carol" and granted["credential"]["kind"] == "card"
        # wrong PIN
        waiting = d.access.present(card, "r1")
        d.access.present(Credential(kind="pin", pin="1234"), "r1")  # Bob's PIN, not Carol's
        assert (await waiting).reason == "pin_mismatch"
        # the PIN at another reader does not complete the card
        waiting = d.access.present(card, "r1")
        other = d.access.present(Credential(kind="pin", pin="4321"), "r2")
        assert other.reason == "pin_mismatch"  # Carol's PIN alone: she needs her card too
        assert not waiting.done()
        # no PIN in time: nothing at 0.99 s, pin_timeout at 1 s (virtual time)
        advance(d, 0.99)
        assert not waiting.done()
        advance(d, 0.01)
        assert waiting.done() and waiting.result().reason == "pin_timeout"
        assert of(events, "access.denied")[-1]["reason"] == "pin_timeout"
        # another card while waiting ends the first one with pin_timeout
        waiting = d.access.present(card, "r1")
        await present(d, Credential.card("1", 26), "r1")
        assert (await waiting).reason == "pin_timeout"
        # a PIN-only holder needs no card
        assert (await present(d, Credential(kind="pin", pin="1234"), "r2")).granted
        assert [g["holder"]["first_name"] for g in d.door.grants] == ["Carol", "Bob"]

    run(tmp_path, body, access="pin_timeout = 1")


def test_card_and_pin_can_be_switched_off(tmp_path):
    async def body(d, events):
        d.access.store.add(first_name="Carol", card="0318601", bit_length=26, pin="4321")
        assert (await present(d, CARD)).granted
        assert (await present(d, Credential(kind="pin", pin="4321"))).granted

    run(tmp_path, body, access="card_and_pin = false")


def test_lockout_after_failures_denies_the_right_credential_and_survives_restart(tmp_path):
    access = "lockout_attempts = 3\nlockout_window = 60\nlockout_duration = 2\npin_timeout = 5"

    async def first(d, events):
        d.access.store.add(first_name="Ann", card="0318601", bit_length=26)
        d.access.store.add(first_name="Carol", qr="C", pin="4321", card="1", bit_length=8)
        for pin in ("1111", "2222"):
            assert (await present(d, Credential(kind="pin", pin=pin))).reason == "unknown_credential"
        waiting = d.access.present(Credential.card("1", 8), "r1")
        d.access.present(Credential(kind="pin", pin="9999"), "r1")
        assert (await waiting).reason == "pin_mismatch"  # the third failure
        alarm = of(events, "alarm.lockout")
        assert len(alarm) == 1 and alarm[0]["reader"] == "r1" and alarm[0]["failures"] == 3
        denied = await present(d, CARD)
        assert (denied.reason, denied.holder) == ("locked_out", None)
        assert of(events, "access.denied")[-1]["reason"] == "locked_out"
        assert (await present(d, CARD, "r2")).granted  # another reader is not locked
        assert "r1" in d.access.status()["locked_out"]
        # invalid_format from a reader does not count
        d.access.submit(Rejected(bits="101", detail="no format of 3 bits"), "r2")
        assert of(events, "access.denied")[-1] == {**of(events, "access.denied")[-1], "reason": "invalid_format", "bits": "101", "holder": None}
        assert d.readers["r2"].feedback_calls[-1] is False

    run(tmp_path, first, access)

    async def after_restart(d, events):
        assert (await present(d, CARD)).reason == "locked_out"
        advance(d, 2.1)
        assert (await present(d, CARD)).granted

    run(tmp_path, after_restart, access)


def test_cards_match_by_decoded_fields_even_when_the_reader_did_not_decode(tmp_path):
    async def body(d, events):
        d.access.store.add(first_name="Alice", format="Wiegand26", facility_code=12, card_number=3456)
        raw_reader = CardInterpreter(LIBRARY, CardSettings(format="Raw"))  # a reader that decodes nothing
        raw = raw_reader.interpret(H10301_12_3456).credential
        assert raw.format is None and ("H10301", 12, 3456) in raw.candidates
        assert (await present(d, raw)).holder.first_name == "Alice"
        bad_parity = H10301_12_3456[:-1] + ("1" if H10301_12_3456[-1] == "0" else "0")
        assert (await present(d, raw_reader.interpret(bad_parity).credential)).reason == "unknown_credential"

    run(tmp_path, body)


def test_latest_ring_and_enrolment_from_latest(tmp_path):
    async def body(d, events):
        for i in range(12):
            await present(d, Credential.card(f"{i:X}", 32))
        await present(d, Credential(kind="pin", pin="123456"))
        await present(d, CardInterpreter(LIBRARY, CardSettings(format="Raw")).interpret(H10301_12_3456).credential)
        latest = d.access.cmd_latest({})["latest"]
        assert len(latest) == 10  # latest_size
        assert all(e["kind"] == "card" for e in latest)  # PINs are never kept
        newest = latest[0]
        assert newest["bits"] == H10301_12_3456 and newest["bit_length"] == 26
        assert (newest["format"], newest["facility_code"], newest["card_number"]) == ("H10301", 12, 3456)
        assert latest[1]["hex"] == "0000000B" and latest[1]["reversed_uid"] == "0B000000"
        holder = d.access.cmd_add({"first_name": "Latest", "from_latest": True})
        assert holder["card"]["bit_length"] == 26 and holder["card"]["card_number"] == 3456
        assert (await present(d, Credential(kind="card", bits=H10301_12_3456))).granted

    run(tmp_path, body, access="lockout_attempts = 0")


def test_upstream_decides_only_for_credentials_not_in_the_local_list(tmp_path):
    async def body(d, events):
        s = d.access.store
        s.add(first_name="Local", card="0318601", bit_length=26)
        s.add(first_name="Expired", qr="E", valid_to="2020-01-01")
        fake = d.access.upstream  # access.upstream = "fake"
        assert isinstance(fake, FakeUpstream)
        fake.grants = {credential_key(Credential(kind="qr", qr="UP")): {"first_name": "Remote"}}
        assert (await present(d, CARD)).granted
        assert (await present(d, Credential(kind="qr", qr="E"))).reason == "expired"
        assert fake.calls == []  # local credentials never go upstream
        assert (await present(d, Credential(kind="qr", qr="UP"))).granted
        assert of(events, "access.granted")[-1]["upstream"] == "fake"
        assert d.door.grants[-1]["holder"] == {"first_name": "Remote"}
        assert (await present(d, Credential(kind="qr", qr="NO"))).reason == "unknown_credential"
        assert [c.qr for c, _ in fake.calls] == ["UP", "NO"]
        # dry run does not ask
        out = await d.access.cmd_check({"qr": "UP", "reader": "r1"})
        assert out["decision"] == "denied" and out["upstream"] == "would ask fake" and len(fake.calls) == 2
        # an unreachable or slow upstream: the credential stays unknown
        fake.fail = True
        assert (await present(d, Credential(kind="qr", qr="UP"))).reason == "unknown_credential"
        fake.fail, fake.delay = False, 0.5
        assert (await present(d, Credential(kind="qr", qr="UP"))).reason == "unknown_credential"
        with pytest.raises(ValueError):
            UpstreamAnswer(granted=True, holder={"id": 1})

    run(tmp_path, body, access='upstream = "fake"\nupstream_timeout = 0.2')


def test_configured_fake_upstream(daemon_factory):
    d = daemon_factory('[access]\nupstream = "fake"\nupstream_fake_grants = ["card:26:0318601"]\n')
    out = d.result("check-credential", card="0318601", bit_length=26, present=True)
    assert out["decision"] == "granted"
    assert d.result("status")["access"]["upstream"] == "fake"
    assert d.stop() == 0


# ---------------------------------------------------------------- commands over the socket


def test_check_credential_dry_run_changes_nothing_and_present_acts(daemon):
    daemon.result("holders.add", first_name="Erin", card="318601", bit_length=26, uses=1)
    seq = daemon.result("status")["daemon"]["log"]["last_seq"]
    for _ in range(3):
        out = daemon.result("check-credential", card="0318601", bit_length=26)
        assert (out["decision"], out["remaining_uses"], out["present"]) == ("granted", 0, False)
    # a dry run publishes nothing but its own audit record
    assert daemon.result("status")["daemon"]["log"]["last_seq"] == seq + 3
    time.sleep(0.4)
    after = daemon.result("events", after_seq=seq)["events"]
    assert [e["type"] for e in after] == ["admin.check_credential"] * 3
    assert daemon.result("holders.show", holder="Erin")["uses"] == 1
    out = daemon.result("check-credential", card="0318601", bit_length=26, present=True)
    assert (out["decision"], out["remaining_uses"]) == ("granted", 0)
    out = daemon.result("check-credential", card="0318601", bit_length=26, present=True)
    assert (out["decision"], out["reason"]) == ("denied", "uses_exhausted")
    time.sleep(0.4)
    events = daemon.result("events", type="access.*")["events"]
    assert [e["type"] for e in events] == ["access.granted", "access.denied"]
    assert events[0]["holder"]["first_name"] == "Erin" and events[0]["credential"]["hex"] == "0318601"


def test_check_credential_card_and_pin_in_one_request(daemon):
    daemon.result("holders.add", first_name="Carol", card="AB", bit_length=8, pin="4321")
    dry = daemon.result("check-credential", card="AB", bit_length=8)
    assert (dry["decision"], dry["reason"], dry["pin_required"]) == ("denied", "pin_timeout", True)
    assert daemon.result("check-credential", card="AB", bit_length=8, pin="4321")["decision"] == "granted"
    assert daemon.result("check-credential", card="AB", bit_length=8, pin="1111")["reason"] == "pin_mismatch"
    assert daemon.result("check-credential", card="AB", bit_length=8, pin="4321", present=True)["decision"] == "granted"
    assert daemon.result("check-credential", pin="4321")["reason"] == "pin_mismatch"
    # a PIN after the card of a holder who needs none is not waited for, dry run or not
    daemon.result("holders.add", first_name="Cardonly", card="CD", bit_length=8)
    for present in (False, True):
        out = daemon.result("check-credential", card="CD", bit_length=8, pin="9999", present=present)
        assert (out["decision"], out["pin_ignored"]) == ("granted", True)


@pytest.mark.parametrize(
    "params, kind, text",
    [
        ({}, "invalid", "give card"),
        ({"card": "AB"}, "invalid", "bit_length: required"),
        ({"card": "ZZ", "bit_length": 8}, "invalid", "card:"),
        ({"card": "1FF", "bit_length": 8}, "invalid", "does not fit"),
        ({"card": "AB", "bit_length": 8, "qr": "x"}, "invalid", "one of"),
        ({"pin": "12ab"}, "invalid", "decimal digits"),
    ],
)
def test_check_credential_errors(daemon, params, kind, text):
    response = daemon.request("check-credential", **params)
    assert not response["ok"] and response["error"]["kind"] == kind and text in response["error"]["message"]


def test_holder_command_errors_map_to_kinds(daemon):
    daemon.result("holders.add", first_name="Ann", pin="1234")
    cases = [
        (("holders.add",), {"first_name": "Bob", "pin": "1234"}, "invalid", "pin: (hidden) is already used by holder 'Ann'"),
        (("holders.add",), {"first_name": "Ann"}, "invalid", "first_name: 'Ann' is already used"),
        (("holders.add",), {"first_name": "C", "format": "NoSuch", "cn": 1}, "invalid", "format: expected one of"),
        (("holders.add",), {"first_name": "C", "from_latest": True}, "not_found", "no card has been read"),
        (("holders.add",), {"first_name": "C", "colour": "red"}, "invalid", "unknown parameter 'colour'"),
        (("holders.show",), {"holder": "Nobody"}, "not_found", "no holder 'Nobody'"),
        (("holders.update",), {"holder": "Ann"}, "invalid", "nothing to change"),
        (("holders.remove",), {"holder": 99}, "not_found", "no holder 99"),
        (("holders.list",), {"limit": -1}, "invalid", "limit"),
    ]
    for (cmd,), params, kind, text in cases:
        response = daemon.request(cmd, **params)
        assert not response["ok"], (cmd, params)
        assert response["error"]["kind"] == kind, response
        assert text in response["error"]["message"], response


def test_generated_pin_is_shown_once_and_works(daemon):
    out = daemon.result("holders.add", first_name="Gen", generate_pin=True)
    pin = out["generated_pin"]
    assert len(pin) == 6 and pin.isdigit() and out["pin"] is True
    assert "generated_pin" not in daemon.result("holders.show", holder="Gen")
    assert daemon.result("check-credential", pin=pin)["holder"]["first_name"] == "Gen"


def test_chunked_import_over_the_socket(daemon):
    header = "first_name,card,bit_length,pin\n"
    first = daemon.result("holders.import", text=header + "A,1,26,1111\nB,2,26,\n", first_line=1)
    session = first["session"]
    assert first["rows"] == 2
    busy = daemon.request("holders.import", text=header)
    assert busy["error"]["kind"] == "unavailable"
    daemon.result("holders.import", session=session, text="C,3,26,\nD,X,26,\nA,4,26,\n", first_line=4)
    response = daemon.request("holders.import", session=session, commit=True)
    assert response["error"]["kind"] == "invalid"
    message = response["error"]["message"]
    assert "line 5, card: expected hexadecimal digits" in message
    assert "line 6, first_name: 'A' is already used" in message
    assert daemon.result("holders.list")["holders"] == []
    # a clean import commits everything; no staging file or clear PIN is left behind
    session = daemon.result("holders.import", text=header + "A,1,26,1111\n")["session"]
    daemon.result("holders.import", session=session, text="B,,,2222\n", first_line=3)
    assert daemon.result("holders.import", session=session, commit=True) == {"added": 2, "rows": 2}
    assert [h["first_name"] for h in daemon.result("holders.list")["holders"]] == ["A", "B"]
    assert daemon.result("status")["counts"]["holders"] == 2
    assert daemon.result("check-credential", pin="2222")["decision"] == "granted"
    assert not list(daemon.state_dir.glob("import-*"))
    for p in daemon.state_dir.glob("entrylist.db*"):
        assert b"2222" not in p.read_bytes() and b"1111" not in p.read_bytes()
    # abort
    session = daemon.result("holders.import", text=header + "Z,9,26,\n")["session"]
    assert daemon.result("holders.import", session=session, abort=True)["aborted"]
    assert daemon.request("holders.import", session=session, commit=True)["error"]["kind"] == "not_found"
    assert not list(daemon.state_dir.glob("import-*"))


def test_export_pages_and_list_search(daemon):
    for i in range(7):
        daemon.result("holders.add", first_name=f"P{i}", qr=f"Q{i}")
    page = daemon.result("holders.export", limit=5)
    assert len(page["rows"]) == 5 and page["more"]
    rest = daemon.result("holders.export", after_id=page["rows"][-1]["id"], limit=5)
    assert [r["first_name"] for r in rest["rows"]] == ["P5", "P6"] and not rest["more"]
    assert [h["first_name"] for h in daemon.result("holders.list", search="P3")["holders"]] == ["P3"]
    assert daemon.result("status")["counts"]["holders"] == 7
    daemon.result("holders.remove", holder="P0")
    assert daemon.result("status")["counts"]["holders"] == 6


def test_a_grant_resets_the_failure_count_also_after_a_restart(tmp_path):
    access = "lockout_attempts = 3\nlockout_window = 600"

    async def first(d, events):
        d.access.store.add(first_name="Ann", card="0318601", bit_length=26)
        for pin in ("1111", "2222"):
            await present(d, Credential(kind="pin", pin=pin))

    run(tmp_path, first, access)

    async def second(d, events):
        assert (await present(d, CARD)).granted  # the 2 failures from before the restart are cleared
        for pin in ("1111", "2222"):
            await present(d, Credential(kind="pin", pin=pin))
        assert not of(events, "alarm.lockout")
        assert (await present(d, CARD)).granted
        await present(d, Credential(kind="pin", pin="3333"))
        await present(d, Credential(kind="pin", pin="4444"))
        await present(d, Credential(kind="pin", pin="5555"))
        assert len(of(events, "alarm.lockout")) == 1

    run(tmp_path, second, access)


def test_a_read_while_stopping_is_denied_without_touching_the_closed_store(tmp_path):
    async def body(d, events):
        await d.access.stop()
        decision = d.access.present(CARD, "r1")
        assert (decision.granted, decision.reason) == (False, "unknown_credential")
        assert of(events, "access.denied")[-1]["detail"] == "stopping"
        assert d.door.grants == []  # (the daemon's own shutdown calls stop() again: harmless)

    run(tmp_path, body)


def test_a_pin_is_in_no_file_of_the_state_directory(daemon):
    pin = "86420975"
    daemon.result("holders.add", first_name="Pia", pin=pin)
    assert daemon.result("check-credential", pin=pin, present=True)["decision"] == "granted"
    assert daemon.result("check-credential", pin="13572468", present=True)["decision"] == "denied"
    time.sleep(0.5)  # the event log's batch is on disk
    events = daemon.result("events")["events"]
    assert [e["credential"] for e in events if e["type"] == "credential.read"] == [{"kind": "pin"}] * 2
    assert daemon.stop() == 0
    files = [p for p in daemon.state_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("events.db") for p in files) and any(p.name == "entrylist.db" for p in files)
    for p in files:
        data = p.read_bytes()
        assert pin.encode() not in data and b"13572468" not in data, p


def test_dry_run_reports_the_lockout_of_the_reader_it_names(tmp_path):
    async def body(d, events):
        d.access.store.add(first_name="Ann", card="0318601", bit_length=26)
        for pin in ("1111", "2222"):
            await present(d, Credential(kind="pin", pin=pin), "r1")
        seq = len(events)
        out = await d.access.cmd_check({"card": "0318601", "bit_length": 26, "reader": "r1"})
        assert (out["decision"], out["reason"], out["reader"]) == ("denied", "locked_out", "r1")
        out = await d.access.cmd_check({"card": "0318601", "bit_length": 26, "reader": "r2"})
        assert out["decision"] == "granted"
        assert len(events) == seq  # a dry run publishes nothing
        out = await d.access.cmd_check({"card": "0318601", "bit_length": 26, "reader": "r2", "present": True})
        assert out["decision"] == "granted" and d.door.grants[-1]["reader"] == "r2"

    run(tmp_path, body, access="lockout_attempts = 2")


def test_a_second_card_waiting_keeps_its_own_pin_timeout(tmp_path):
    async def body(d, events):
        d.access.store.add(first_name="Carol", card="C1", bit_length=8, pin="4321")
        d.access.store.add(first_name="Dan", card="D1", bit_length=8, pin="8765")
        first = d.access.present(Credential.card("C1", 8), "r1")
        advance(d, 0.6)
        second = d.access.present(Credential.card("D1", 8), "r1")  # Carol's card gets pin_timeout now
        assert (await first).reason == "pin_timeout"
        advance(d, 0.6)  # Carol's timer would have fired here: Dan still waits
        assert not second.done()
        d.access.present(Credential(kind="pin", pin="8765"), "r1")
        assert (await second).holder.first_name == "Dan" and second.result().granted
        # the keypad's own pin_timeout answers the waiting card (one event, not two)
        third = d.access.present(Credential.card("C1", 8), "r1")
        before = len(of(events, "access.denied"))
        d.access.submit(PinAbandoned(digits=2), "r1")
        assert (await third).reason == "pin_timeout"
        denied = of(events, "access.denied")
        assert len(denied) == before + 1 and denied[-1]["holder"]["first_name"] == "Carol"
        assert denied[-1]["credential"]["hex"] == "C1"

    run(tmp_path, body, access="pin_timeout = 1")


def test_a_use_that_cannot_be_recorded_is_no_grant(tmp_path):
    async def body(d, events):
        d.access.store.add(first_name="Three", card="0318601", bit_length=26, uses=3)
        d.access.store.add(first_name="Free", qr="F")
        # the disk fails under access.db: make its file read-only for this connection
        d.access.store.state.execute("PRAGMA query_only = ON")
        decision = await present(d, CARD)
        assert (decision.granted, decision.reason, decision.remaining_uses) == (False, "uses_exhausted", 3)
        assert "could not be recorded" in of(events, "access.denied")[-1]["error"]
        assert d.door.grants == []
        assert (await present(d, Credential(kind="qr", qr="F"))).granted  # no write needed
        assert (await present(d, Credential(kind="qr", qr="nobody"))).reason == "unknown_credential"
        d.access.store.state.execute("PRAGMA query_only = OFF")
        assert (await present(d, CARD)).remaining_uses == 2

    run(tmp_path, body)
