"""The pure access policy: events in, actions out, no storage, no clock, no I/O."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from accessd.protocols.credential import Credential

from accessd.access.decision import Holder
from accessd.access.policy import (
    AccessPolicy,
    AskUpstream,
    ClearFailures,
    Decided,
    Feedback,
    PinAbandoned,
    PolicySettings,
    Present,
    Publish,
    RecordFailure,
    RecordLockout,
    Reject,
    TakeUse,
    Tick,
    Unlock,
    UpstreamAnswered,
    UseTaken,
)

TZ = ZoneInfo("Europe/Berlin")
WALL = 1_780_000_000.0  # 2026-05-28
CARD = Credential.card("0318601", 26)
OTHER = Credential.card("1", 26)


class Lookup:
    def __init__(self, holders: dict, pins: dict | None = None) -> None:
        self.holders = holders  # credential → Holder
        self.pins = pins or {}  # holder id → PIN
        self.finds = 0

    def find(self, credential):
        self.finds += 1
        return self.holders.get(credential)

    def get(self, holder_id):
        return next((h for h in self.holders.values() if h.id == holder_id), None)

    def pin_matches(self, holder_id, pin):
        return self.pins.get(holder_id) == pin


ANN = Holder(id=1, first_name="Ann", has_card=True)
CAROL = Holder(id=2, first_name="Carol", has_card=True, has_pin=True)
USES = Holder(id=3, first_name="Uma", has_card=True, uses=2)


def policy(holders=None, pins=None, **settings) -> AccessPolicy:
    return AccessPolicy(PolicySettings(**{"lockout_attempts": 3, "pin_timeout": 10.0, **settings}),
                        Lookup(holders if holders is not None else {CARD: ANN}, pins), TZ)


def kinds(actions):
    return [type(a).__name__ for a in actions]


def published(actions, type_=None):
    return [a for a in actions if isinstance(a, Publish) and (type_ is None or a.type == type_)]


def decided(actions) -> Decided:
    (d,) = [a for a in actions if isinstance(a, Decided)]
    return d


def test_a_known_card_is_read_granted_unlocked_and_answered_in_that_order():
    p = policy()
    actions = p.handle(Present(credential=CARD, reader="r1", ref=7), now=0.0, wall=WALL)
    assert kinds(actions) == ["Publish", "Publish", "Unlock", "Feedback", "Decided"]
    assert [a.type for a in published(actions)] == ["credential.read", "access.granted"]
    assert actions[2] == Unlock(seconds=None, holder=ANN.brief(), reader="r1")
    assert decided(actions).refs == (7,) and decided(actions).decision.granted


def test_an_unknown_card_is_denied_and_counted_then_locks_the_reader_out():
    p = policy()
    for i in range(2):
        actions = p.handle(Present(credential=OTHER, reader="r1"), now=float(i), wall=WALL + i)
        assert published(actions, "access.denied")[0].fields["reason"] == "unknown_credential"
        assert RecordFailure(reader="r1") in actions and Feedback(reader="r1", granted=False) in actions
    actions = p.handle(Present(credential=OTHER, reader="r1"), now=2.0, wall=WALL + 2)
    assert RecordLockout(reader="r1", seconds=300.0) in actions
    (alarm,) = published(actions, "alarm.lockout")
    assert alarm.fields["failures"] == 3 and alarm.fields["until"] == "2026-05-28T20:31:42Z"
    # the right card at the locked reader: denied, and the holder not even looked up
    finds = p.lookup.finds
    actions = p.handle(Present(credential=CARD, reader="r1"), now=3.0, wall=WALL)
    assert decided(actions).decision.reason == "locked_out" and p.lookup.finds == finds
    assert decided(p.handle(Present(credential=CARD, reader="r2"), now=3.0, wall=WALL)).decision.granted
    # the lockout ends on the monotonic clock, whatever the wall clock does
    assert decided(p.handle(Present(credential=CARD, reader="r1"), now=301.9, wall=WALL - 86400)).decision.reason \
        == "locked_out"
    assert decided(p.handle(Present(credential=CARD, reader="r1"), now=302.0, wall=WALL + 86400)).decision.granted


def test_failures_outside_the_window_do_not_count_and_a_grant_clears_them():
    p = policy(lockout_window=10.0)
    for t in (0.0, 5.0, 15.5):  # the first has left the window when the third comes
        actions = p.handle(Present(credential=OTHER, reader="r1"), now=t, wall=WALL)
    assert not any(isinstance(a, RecordLockout) for a in actions)
    actions = p.handle(Present(credential=CARD, reader="r1"), now=16.0, wall=WALL)
    assert ClearFailures(reader="r1") in actions and "r1" not in p.failures
    # a grant with nothing counted writes nothing
    assert not any(isinstance(a, ClearFailures) for a in p.handle(Present(credential=CARD, reader="r1"), now=17.0,
                                                                   wall=WALL))


def test_card_then_pin_waits_with_a_deadline_and_completes_or_times_out():
    p = policy({CARD: CAROL}, {2: "4321"})
    actions = p.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=WALL)
    assert kinds(actions) == ["Publish"] and p.next_deadline() == 10.0  # credential.read only: waiting
    actions = p.handle(Present(credential=Credential(kind="pin", pin="4321"), reader="r1", ref=2), now=4.0, wall=WALL)
    d = decided(actions)
    assert d.decision.granted and d.refs == (1, 2) and p.next_deadline() is None
    granted = published(actions, "access.granted")[0]
    assert granted.fields["credential"]["kind"] == "card"  # the card is what was granted
    # no PIN in time
    p.handle(Present(credential=CARD, reader="r1", ref=3), now=20.0, wall=WALL)
    assert p.handle(Tick(), now=29.9, wall=WALL) == []
    actions = p.handle(Tick(), now=30.0, wall=WALL)
    d = decided(actions)
    assert (d.decision.reason, d.refs, d.extra) == ("pin_timeout", (3,), {"pin_required": True})
    assert published(actions, "access.denied")[0].fields["holder"]["first_name"] == "Carol"
    assert RecordFailure(reader="r1") not in actions  # a timeout is not a guess


def test_wrong_pin_after_the_card_is_pin_mismatch_and_counts():
    p = policy({CARD: CAROL}, {2: "4321"})
    p.handle(Present(credential=CARD, reader="r1"), now=0.0, wall=WALL)
    actions = p.handle(Present(credential=Credential(kind="pin", pin="1111"), reader="r1"), now=1.0, wall=WALL)
    assert decided(actions).decision.reason == "pin_mismatch" and RecordFailure(reader="r1") in actions


def test_the_pin_alone_of_a_card_and_pin_holder_is_pin_mismatch():
    pin = Credential(kind="pin", pin="4321")
    p = policy({pin: CAROL}, {2: "4321"})
    assert decided(p.handle(Present(credential=pin, reader="r1"), now=0.0, wall=WALL)).decision.reason \
        == "pin_mismatch"


def test_another_card_ends_the_wait_and_an_abandoned_keypad_answers_the_waiting_card():
    p = policy({CARD: CAROL, OTHER: ANN}, {2: "4321"})
    p.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=WALL)
    actions = p.handle(Present(credential=OTHER, reader="r1", ref=2), now=1.0, wall=WALL)
    answers = [a for a in actions if isinstance(a, Decided)]
    assert [(a.refs, a.decision.reason) for a in answers] == [((1,), "pin_timeout"), ((2,), None)]
    p.handle(Present(credential=CARD, reader="r1", ref=3), now=2.0, wall=WALL)
    actions = p.handle(PinAbandoned(reader="r1", digits=2), now=3.0, wall=WALL)
    assert [(a.refs, a.decision.reason) for a in actions if isinstance(a, Decided)] == [((3,), "pin_timeout")]
    assert len(published(actions, "access.denied")) == 1  # one denial, the card's
    # no card waiting: the keypad's own timeout
    actions = p.handle(PinAbandoned(reader="r1", digits=3), now=4.0, wall=WALL)
    assert published(actions)[0].fields == {"reason": "pin_timeout", "holder": None, "reader": "r1", "digits": 3}


def test_a_use_is_taken_before_the_grant_and_exhaustion_denies():
    p = policy({CARD: USES})
    actions = p.handle(Present(credential=CARD, reader="r1", ref=1), now=0.0, wall=WALL)
    assert kinds(actions) == ["Publish", "TakeUse"]  # nothing moves before the use is on disk
    take = actions[1]
    actions = p.handle(UseTaken(token=take.token, ok=True, remaining=1), now=0.0, wall=WALL)
    assert kinds(actions) == ["Publish", "Unlock", "Feedback", "Decided"]
    assert decided(actions).decision.remaining_uses == 1
    take = p.handle(Present(credential=CARD, reader="r1"), now=1.0, wall=WALL)[1]
    actions = p.handle(UseTaken(token=take.token, ok=False, remaining=0, error="disk I/O error"), now=1.0, wall=WALL)
    denied = published(actions, "access.denied")[0]
    assert denied.fields["reason"] == "uses_exhausted" and "disk I/O error" in denied.fields["error"]
    assert not any(isinstance(a, Unlock) for a in actions)


def test_holder_state_comes_after_the_identity():
    suspended = replace(ANN, suspended=True)
    expired = replace(ANN, valid_to="2020-01-01")
    assert decided(policy({CARD: suspended}).handle(Present(credential=CARD, reader="r"), now=0, wall=WALL)) \
        .decision.reason == "suspended"
    assert decided(policy({CARD: expired}).handle(Present(credential=CARD, reader="r"), now=0, wall=WALL)) \
        .decision.reason == "expired"


def test_rejected_bits_are_invalid_format_and_not_counted():
    p = policy()
    actions = p.handle(Reject(reader="r1", fields={"bits": "101", "bit_length": 3, "detail": "no format"}),
                       now=0.0, wall=WALL)
    assert published(actions)[0].fields["reason"] == "invalid_format" and "r1" not in p.failures


def test_unknown_credentials_go_upstream_and_its_answer_decides():
    p = policy(upstream="acu")
    actions = p.handle(Present(credential=OTHER, reader="r1", ref=5), now=0.0, wall=WALL)
    (ask,) = [a for a in actions if isinstance(a, AskUpstream)]
    actions = p.handle(UpstreamAnswered(token=ask.token, granted=True, holder={"first_name": "Remote"}), now=0.5,
                       wall=WALL)
    assert published(actions, "access.granted")[0].fields["upstream"] == "acu"
    assert decided(actions).refs == (5,)
    # a known credential is never asked, even one denied locally
    actions = p.handle(Present(credential=CARD, reader="r1"), now=1.0, wall=WALL)
    assert not any(isinstance(a, AskUpstream) for a in actions)
    ask = p.handle(Present(credential=OTHER, reader="r1"), now=2.0, wall=WALL)[-1]
    actions = p.handle(UpstreamAnswered(token=ask.token, granted=False), now=2.5, wall=WALL)
    assert decided(actions).decision.reason == "unknown_credential" and RecordFailure(reader="r1") in actions


def test_a_fork_decides_the_same_and_leaves_the_state_alone():
    p = policy({CARD: CAROL, OTHER: USES}, {2: "4321"})
    p.handle(Present(credential=Credential(kind="qr", qr="x"), reader="r1"), now=0.0, wall=WALL)
    before = (dict(p.waiting), {r: list(q) for r, q in p.failures.items()}, dict(p.lockouts))
    f = p.fork()
    f.handle(Present(credential=CARD, reader="r1"), now=1.0, wall=WALL)
    for _ in range(5):
        f.handle(Present(credential=Credential.card("7", 26), reader="r1"), now=1.0, wall=WALL)
    assert "r1" in f.lockouts  # the fork locked its reader out …
    assert (dict(p.waiting), {r: list(q) for r, q in p.failures.items()}, dict(p.lockouts)) == before  # … not this one


def test_restored_lockouts_and_failures_hold():
    p = AccessPolicy(PolicySettings(lockout_attempts=3), Lookup({CARD: ANN}), TZ,
                     failures={"r1": [5.0, 6.0]}, lockouts={"r2": 50.0})
    assert decided(p.handle(Present(credential=CARD, reader="r2"), now=10.0, wall=WALL)).decision.reason == "locked_out"
    actions = p.handle(Present(credential=OTHER, reader="r1"), now=10.0, wall=WALL)
    assert any(isinstance(a, RecordLockout) for a in actions)  # the third failure


def test_pin_ignored_for_a_holder_who_needs_none():
    p = policy()
    d = decided(p.handle(Present(credential=CARD, reader="r1", pin="1234"), now=0.0, wall=WALL))
    assert d.decision.granted and d.extra == {"pin_ignored": True}


def test_unknown_events_are_refused():
    with pytest.raises(TypeError, match="cannot take"):
        policy().handle(TakeUse(holder_id=1, token=1), now=0.0, wall=WALL)
