"""Duress PINs (access.duress = "last_digit_plus_one"): grant as usual, raise alarm.duress."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from accessd.protocols.credential import Credential

from accessd.access.decision import Holder
from accessd.access.policy import (
    AccessPolicy,
    Decided,
    Feedback,
    PolicySettings,
    Present,
    Publish,
    TakeUse,
    UseTaken,
)

TZ = ZoneInfo("Europe/Berlin")
WALL = 1_780_000_000.0
CARD = Credential.card("0318601", 26)


class Lookup:
    def __init__(self, holders: dict, pins: dict) -> None:
        self.holders, self.pins = holders, pins

    def find(self, credential):
        if credential.kind == "pin":
            return next((self.get(h) for h, p in self.pins.items() if p == credential.pin), None)
        return self.holders.get(credential)

    def get(self, holder_id):
        return next((h for h in [*self.holders.values(), *PIN_ONLY] if h.id == holder_id), None)

    def pin_matches(self, holder_id, pin):
        return self.pins.get(holder_id) == pin


CAROL = Holder(id=2, first_name="Carol", has_card=True, has_pin=True)
PAT = Holder(id=3, first_name="Pat", has_pin=True)
ROB = Holder(id=4, first_name="Rob", has_pin=True)
PIN_ONLY = [PAT, ROB]


def policy(duress="last_digit_plus_one", pins=None):
    return AccessPolicy(PolicySettings(duress=duress, lockout_attempts=3),
                        Lookup({CARD: CAROL}, pins if pins is not None else {2: "4829", 3: "1239"}), TZ)


def pin(digits):
    return Credential(kind="pin", pin=digits)


def run(p, *events):
    out = []
    for i, e in enumerate(events):
        out += p.handle(e, now=float(i), wall=WALL)
    return out


def alarms(actions):
    return [a for a in actions if isinstance(a, Publish) and a.type == "alarm.duress"]


def test_card_then_duress_pin_grants_and_alarms():
    actions = run(policy(), Present(credential=CARD, reader="r1"), Present(credential=pin("4820"), reader="r1"))
    (d,) = [a for a in actions if isinstance(a, Decided)]
    assert d.decision.granted  # 9 + 1 wraps to 0
    (alarm,) = alarms(actions)
    assert alarm.fields["holder"]["first_name"] == "Carol" and alarm.fields["reader"] == "r1"
    assert Feedback(reader="r1", granted=True) in actions  # nothing different at the reader
    granted = [a for a in actions if isinstance(a, Publish) and a.type == "access.granted"]
    assert granted and "duress" not in granted[0].fields


def test_the_real_pin_raises_nothing_and_a_wrong_pin_is_wrong():
    assert not alarms(run(policy(), Present(credential=CARD, reader="r1"), Present(credential=pin("4829"), reader="r1")))
    actions = run(policy(), Present(credential=CARD, reader="r1"), Present(credential=pin("4821"), reader="r1"))
    assert [a.decision.reason for a in actions if isinstance(a, Decided)] == ["pin_mismatch"]
    assert not alarms(actions)


def test_no_rule_no_duress():
    actions = run(policy("none"), Present(credential=CARD, reader="r1"), Present(credential=pin("4820"), reader="r1"))
    assert [a.decision.reason for a in actions if isinstance(a, Decided)] == ["pin_mismatch"]


def test_pin_alone_and_card_with_pin():
    actions = run(policy(), Present(credential=pin("1230"), reader="r1"))
    assert [a.decision.granted for a in actions if isinstance(a, Decided)] == [True] and alarms(actions)
    actions = run(policy(), Present(credential=CARD, reader="r1", pin="4820"))
    assert alarms(actions)
    # a real PIN of someone else always wins over another holder's duress variant
    actions = run(policy(pins={2: "4829", 3: "1239", 4: "1230"}), Present(credential=pin("1230"), reader="r1"))
    assert not alarms(actions)
    assert [a.decision.holder.first_name for a in actions if isinstance(a, Decided)] == ["Rob"]


def test_duress_with_uses_alarms_after_the_use_is_taken():
    uma = Holder(id=2, first_name="Uma", has_card=True, has_pin=True, uses=2)
    p = AccessPolicy(PolicySettings(duress="last_digit_plus_one"), Lookup({CARD: uma}, {2: "4829"}), TZ)
    first = run(p, Present(credential=CARD, reader="r1"), Present(credential=pin("4820"), reader="r1"))
    (take,) = [a for a in first if isinstance(a, TakeUse)]
    assert not alarms(first)
    after = p.handle(UseTaken(token=take.token, ok=True, remaining=1), now=3.0, wall=WALL)
    assert alarms(after)
