"""The pure door state machine: every scenario is (events at times) -> actions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accessd.door.machine import (
    Contact,
    Door,
    DoorPolicy,
    Emit,
    Grant,
    IllegalTransition,
    ManualLock,
    ManualUnlock,
    Rex,
    SetRelay,
    Tick,
)


def emitted(actions, type_=None):
    return [(a.type, a.fields) for a in actions if isinstance(a, Emit) and (type_ is None or a.type == type_)]


def relay(actions):
    return [a.unlocked for a in actions if isinstance(a, SetRelay)]


def types(actions):
    return [a.type for a in actions if isinstance(a, Emit)]


# --- lock / unlock -------------------------------------------------------------------------


def test_grant_unlocks_for_access_time_then_relocks():
    door = Door(DoorPolicy(access_time=7))
    acts = door.handle(Grant(holder={"id": 3}, reader="r1"), 100.0)
    assert relay(acts) == [True]
    ((t, f),) = emitted(acts)
    assert t == "door.unlocked" and f["reason"] == "granted" and f["seconds"] == 7
    assert f["holder"] == {"id": 3} and f["reader"] == "r1"
    assert door.next_deadline() == 107.0
    assert door.handle(Tick(), 106.999) == []
    acts = door.handle(Tick(), 107.0)
    assert relay(acts) == [False]
    assert emitted(acts) == [("door.locked", {"reason": "timeout"})]
    assert door.next_deadline() is None
    assert not door.unlocked


def test_holder_extended_time_overrides_access_time():
    door = Door(DoorPolicy(access_time=7))
    door.handle(Grant(seconds=20), 0.0)
    assert door.next_deadline() == 20.0
    assert door.handle(Tick(), 19.0) == []
    assert relay(door.handle(Tick(), 20.0)) == [False]


def test_second_grant_extends_without_toggling_relay():
    door = Door(DoorPolicy(access_time=7))
    door.handle(Grant(), 0.0)
    acts = door.handle(Grant(), 5.0)
    assert relay(acts) == []
    assert emitted(acts)[0][1]["extended"] is True
    assert door.next_deadline() == 12.0
    # a shorter grant does not cut an unlock short
    assert door.handle(ManualUnlock(seconds=1), 6.0) == []
    assert door.next_deadline() == 12.0


def test_manual_unlock_and_lock():
    door = Door(DoorPolicy(access_time=7))
    acts = door.handle(ManualUnlock(seconds=60), 0.0)
    assert relay(acts) == [True] and emitted(acts)[0][1]["reason"] == "manual"
    assert door.next_deadline() == 60.0
    acts = door.handle(ManualLock(), 3.0)
    assert relay(acts) == [False]
    assert emitted(acts) == [("door.locked", {"reason": "manual"})]
    # locking a locked door changes nothing and says nothing
    assert door.handle(ManualLock(), 4.0) == []


def test_manual_unlock_defaults_to_access_time():
    door = Door(DoorPolicy(access_time=9))
    door.handle(ManualUnlock(), 1.0)
    assert door.next_deadline() == 10.0


def test_late_tick_relocks_with_event_before_the_new_event():
    """A contact event arriving after the relock deadline is judged against the locked door."""
    door = Door(DoorPolicy(access_time=5))
    door.handle(Grant(), 0.0)
    acts = door.handle(Contact(open=True), 8.0)  # no tick at 5.0 was delivered
    assert types(acts) == ["door.locked", "door.opened", "door.forced_open"]
    assert relay(acts) == [False]


# --- contact ------------------------------------------------------------------------------


def test_authorized_open_and_close():
    door = Door(DoorPolicy(access_time=7))
    door.handle(Grant(), 0.0)
    acts = door.handle(Contact(open=True), 2.0)
    assert emitted(acts) == [("door.opened", {"authorized": True, "by": "granted"})]
    acts = door.handle(Contact(open=False), 4.5)
    assert emitted(acts) == [("door.closed", {"open_for": 2.5})]


def test_relock_on_open_cancels_access_time():
    door = Door(DoorPolicy(access_time=7, relock_on_open=True))
    door.handle(Grant(), 0.0)
    acts = door.handle(Contact(open=True), 1.0)
    assert types(acts) == ["door.opened", "door.locked"]
    assert relay(acts) == [False]
    assert emitted(acts, "door.locked")[0][1] == {"reason": "opened"}
    assert not door.unlocked
    # closing the door afterwards is not an alarm
    assert types(door.handle(Contact(open=False), 3.0)) == ["door.closed"]


def test_without_relock_on_open_the_relay_stays_until_timeout():
    door = Door(DoorPolicy(access_time=7, relock_on_open=False))
    door.handle(Grant(), 0.0)
    acts = door.handle(Contact(open=True), 1.0)
    assert relay(acts) == [] and door.unlocked


def test_forced_open_and_clear_on_close():
    door = Door(DoorPolicy())
    acts = door.handle(Contact(open=True), 10.0)
    assert emitted(acts) == [
        ("door.opened", {"authorized": False, "by": None}),
        ("door.forced_open", {"state": "alarm"}),
    ]
    assert door.alarms == ["forced_open"]
    acts = door.handle(Contact(open=False), 12.0)
    assert emitted(acts) == [
        ("door.closed", {"open_for": 2.0}),
        ("door.forced_open", {"state": "cleared", "open_for": 2.0}),
    ]
    assert door.alarms == []


def test_door_opened_while_unlocked_and_still_open_at_relock_is_not_forced():
    door = Door(DoorPolicy(access_time=3))
    door.handle(Grant(), 0.0)
    door.handle(Contact(open=True), 1.0)
    acts = door.handle(Tick(), 3.0)
    assert types(acts) == ["door.locked"]
    assert door.alarms == []


def test_initially_open_door_is_not_forced_but_can_be_held():
    door = Door(DoorPolicy(open_too_long=30), contact_open=True, now=50.0)
    assert door.alarms == []
    assert door.next_deadline() == 80.0
    assert emitted(door.handle(Tick(), 80.0)) == [("door.held_open", {"state": "alarm", "open_for": 30.0})]


# --- held open and pre-alarm ----------------------------------------------------------------


def test_held_open_with_prealarm_then_cleared():
    door = Door(DoorPolicy(access_time=5, open_too_long=30, prealarm=10))
    door.handle(Grant(), 0.0)
    door.handle(Contact(open=True), 2.0)
    assert door.next_deadline() == 5.0  # relock first
    door.handle(Tick(), 5.0)
    assert door.next_deadline() == 22.0  # pre-alarm 10 s before 32
    acts = door.handle(Tick(), 22.0)
    assert emitted(acts) == [("door.held_open", {"state": "prealarm", "open_for": 20.0, "alarm_in": 10.0})]
    assert door.next_deadline() == 32.0
    acts = door.handle(Tick(), 32.0)
    assert emitted(acts) == [("door.held_open", {"state": "alarm", "open_for": 30.0})]
    assert door.alarms == ["held_open"]
    assert door.next_deadline() is None
    acts = door.handle(Contact(open=False), 40.0)
    assert emitted(acts) == [
        ("door.closed", {"open_for": 38.0}),
        ("door.held_open", {"state": "cleared", "was": "alarm", "open_for": 38.0}),
    ]


def test_prealarm_cleared_when_door_closes_before_alarm():
    door = Door(DoorPolicy(open_too_long=30, prealarm=5), contact_open=True, now=0.0)
    door.handle(Tick(), 25.0)
    acts = door.handle(Contact(open=False), 26.0)
    assert emitted(acts, "door.held_open") == [
        ("door.held_open", {"state": "cleared", "was": "prealarm", "open_for": 26.0})
    ]
    assert door.next_deadline() is None


def test_late_tick_fires_prealarm_and_alarm_in_order():
    door = Door(DoorPolicy(open_too_long=30, prealarm=5), contact_open=True, now=0.0)
    acts = door.handle(Tick(), 100.0)
    assert [f["state"] for _, f in emitted(acts)] == ["prealarm", "alarm"]


def test_held_open_waits_while_door_is_unlocked():
    door = Door(DoorPolicy(access_time=7, open_too_long=30))
    door.handle(ManualUnlock(seconds=120), 0.0)
    door.handle(Contact(open=True), 1.0)
    assert door.next_deadline() == 120.0
    acts = door.handle(Tick(), 120.0)
    # relock and the overdue held-open alarm at the same moment
    assert types(acts) == ["door.locked", "door.held_open"]


def test_forced_door_held_open_clears_both_alarms():
    door = Door(DoorPolicy(open_too_long=10))
    door.handle(Contact(open=True), 0.0)
    door.handle(Tick(), 10.0)
    assert door.alarms == ["forced_open", "held_open"]
    acts = door.handle(Contact(open=False), 11.0)
    assert [(t, f["state"]) for t, f in emitted(acts)[1:]] == [
        ("door.forced_open", "cleared"), ("door.held_open", "cleared")]


def test_manual_lock_of_a_long_open_door_fires_overdue_alarms_at_once():
    door = Door(DoorPolicy(open_too_long=15, prealarm=3), contact_open=True, now=0.0)
    door.handle(Grant(seconds=16), 0.0)
    acts = door.handle(ManualLock(), 12.0)
    assert [(t, f.get("state")) for t, f in emitted(acts)] == [("door.locked", None), ("door.held_open", "prealarm")]
    acts = door.handle(ManualUnlock(seconds=100), 13.0)  # unlocking again keeps the alarm waiting
    assert door.next_deadline() == 113.0
    acts = door.handle(ManualLock(), 20.0)
    assert [(t, f.get("state")) for t, f in emitted(acts)] == [("door.locked", None), ("door.held_open", "alarm")]
    assert emitted(acts)[-1][1]["open_for"] == 15.0


def test_reopening_restarts_held_open_clock():
    door = Door(DoorPolicy(open_too_long=10, access_time=60))
    door.handle(ManualUnlock(), 0.0)
    door.handle(Contact(open=True), 1.0)
    door.handle(Contact(open=False), 5.0)
    door.handle(Contact(open=True), 8.0)
    door.handle(ManualLock(), 9.0)
    assert door.next_deadline() == 18.0


# --- exit button ------------------------------------------------------------------------------


def test_rex_unlocks_and_shunts():
    door = Door(DoorPolicy(access_time=7, rex_unlocks=True))
    acts = door.handle(Rex(pressed=True), 0.0)
    assert relay(acts) == [True]
    assert emitted(acts)[0][1]["reason"] == "rex"
    door.handle(Rex(pressed=False), 0.3)
    acts = door.handle(Contact(open=True), 1.0)
    assert emitted(acts) == [("door.opened", {"authorized": True, "by": "rex"})]


def test_rex_without_unlock_only_shunts_forced_open():
    door = Door(DoorPolicy(access_time=7, rex_unlocks=False, rex_shunt=4))
    acts = door.handle(Rex(pressed=True), 0.0)
    assert acts == []  # free egress: no relay, nothing to say yet
    assert door.next_deadline() == 4.0
    acts = door.handle(Contact(open=True), 3.0)
    assert emitted(acts) == [("door.opened", {"authorized": True, "by": "rex"})]
    door.handle(Contact(open=False), 3.5)
    # the shunt window has passed: a new opening is forced
    door.handle(Rex(pressed=False), 3.6)
    acts = door.handle(Contact(open=True), 4.0)
    assert "door.forced_open" in types(acts)


def test_rex_shunt_defaults_to_access_time():
    door = Door(DoorPolicy(access_time=5, rex_unlocks=False))
    door.handle(Rex(pressed=True), 0.0)
    assert door.next_deadline() == 5.0


# --- illegal transitions and validation -----------------------------------------------------


def test_duplicate_contact_raises_naming_state_and_event():
    door = Door(DoorPolicy())
    door.handle(Contact(open=True), 0.0)
    with pytest.raises(IllegalTransition) as info:
        door.handle(Contact(open=True), 1.0)
    assert info.value.state == "locked+open"
    assert "Contact(open=True)" in str(info.value) and "locked+open" in str(info.value)


def test_events_for_missing_hardware_raise():
    door = Door(DoorPolicy(has_contact=False, has_rex=False))
    with pytest.raises(IllegalTransition, match="no door contact"):
        door.handle(Contact(open=True), 0.0)
    with pytest.raises(IllegalTransition, match="no exit button"):
        door.handle(Rex(pressed=True), 0.0)
    with pytest.raises(IllegalTransition, match="exit button did not change"):
        Door(DoorPolicy()).handle(Rex(pressed=False), 0.0)


def test_time_backwards_raises():
    door = Door(DoorPolicy())
    door.handle(Tick(), 10.0)
    with pytest.raises(IllegalTransition, match="backwards"):
        door.handle(Tick(), 9.0)
    with pytest.raises(IllegalTransition, match="finite"):
        door.handle(Tick(), float("nan"))


@pytest.mark.parametrize("kwargs, match", [
    ({"access_time": 0}, "access_time"),
    ({"access_time": "seven"}, "access_time: expected a number of seconds, got 'seven'"),
    ({"open_too_long": -1}, "open_too_long"),
    ({"open_too_long": 10, "prealarm": 10}, "prealarm"),
])
def test_policy_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DoorPolicy(**kwargs)


def test_event_validation():
    with pytest.raises(ValueError, match="Grant.seconds"):
        Grant(seconds=0)
    with pytest.raises(ValueError, match="ManualUnlock.seconds"):
        ManualUnlock(seconds=float("inf"))
    with pytest.raises(TypeError):
        Grant(5)  # keyword-only


def test_status_reports_state():
    door = Door(DoorPolicy(access_time=7))
    door.handle(Grant(), 0.0)
    door.handle(Contact(open=True), 1.0)
    s = door.status(2.0)
    assert s == {"state": "unlocked", "contact": "open", "unlocked_for": 5.0, "open_for": 1.0,
                 "alarms": [], "shunted": False, "hold": False}


# --- invariants over random event sequences -----------------------------------------------------

event_st = st.one_of(
    st.builds(Grant, seconds=st.one_of(st.none(), st.floats(0.5, 50))),
    st.builds(ManualUnlock, seconds=st.one_of(st.none(), st.floats(0.5, 500))),
    st.just(ManualLock()),
    st.just("contact"),
    st.just("rex"),
    st.just(Tick()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(event_st, st.floats(0, 20)), max_size=40),
       st.booleans(), st.booleans())
def test_invariants(steps, relock_on_open, rex_unlocks):
    """The relay is never unlocked past its deadline; SetRelay always toggles; alarms clear on close."""
    door = Door(DoorPolicy(access_time=7, open_too_long=15, prealarm=3,
                           relock_on_open=relock_on_open, rex_unlocks=rex_unlocks))
    now = 0.0
    relay_on = False
    for ev, dt in steps:
        now += dt
        if ev == "contact":
            ev = Contact(open=not door.contact_open)
        elif ev == "rex":
            ev = Rex(pressed=not door.rex_pressed)
        for a in door.handle(ev, now):
            if isinstance(a, SetRelay):
                assert a.unlocked != relay_on
                relay_on = a.unlocked
            elif a.type == "door.forced_open" and a.fields["state"] == "alarm":
                assert ev == Contact(open=True)  # only an opening can be forced …
                assert not door.unlocked  # … of a locked door
            elif a.type == "door.held_open" and a.fields["state"] == "alarm":
                assert a.fields["open_for"] >= 15 - 1e-9
        assert relay_on == door.unlocked
        if door.unlocked:
            assert door.unlock_until > now
        if not door.contact_open:
            assert door.alarms == []
        due = door.next_deadline()
        assert due is None or due > now
