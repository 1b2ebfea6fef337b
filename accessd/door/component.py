"""The door component: relay, inputs, the pure :class:`~accessd.door.machine.Door` and its timers.

It is first in the daemon's ``COMPONENTS``: its constructor claims the relay line at
the normal (locked) level before storage, the socket or any reader exists.  Then:

* inputs (contact, REX, tamper and every ``[inputs.NAME]``) are gpiozero devices; their
  callbacks (gpiozero's thread) only stamp the level and hop onto the loop, where the
  debounce, the :class:`Door` and the publishing happen;
* the door's and the inputs' deadlines are one machine on the shell's scheduler (timers
  are data: ``next_deadline()`` / ``tick(now)``);
* a small watchdog thread forces the relay to normal when it stays unlocked more than
  ``door.watchdog_grace`` seconds past the door's deadline, which only happens when the
  loop is stalled (a blocked callback, a stuck disk); it publishes ``system.watchdog``
  when the loop runs again.  The systemd watchdog (the daemon's) restarts a hung
  process; start-up locks again;
* any exception while handling a door event drives the relay to normal and rebuilds the
  door state locked from the inputs (``door.locked`` with ``reason: "fault"``).

Commands: ``door.unlock {seconds}``, ``door.lock``, ``simulate.input {name, state}``
(mock pins only).  Status: ``door``, ``relay``, ``inputs``.  Events: ``door.*``,
``input.changed``, ``tamper`` (a supervised loop cut or shorted, or the tamper input
active) and ``system.watchdog``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading

from accessd.door.machine import (
    Contact,
    Door,
    DoorPolicy,
    Emit,
    Grant,
    Hold,
    ManualLock,
    ManualUnlock,
    Rex,
    SetRelay,
    Tick,
)
from accessd.door.modes import ModeEntry, Modes
from accessd.errors import CommandError

log = logging.getLogger("accessd.door.machine")

MAX_UNLOCK = 86_400.0
WATCHDOG_PERIOD = 0.1
RESAMPLE_PERIOD = 1.0  # digital inputs are re-read this often in case an edge callback was lost
MODE_RECHECK = 60.0  # scheduled modes are re-read at least this often (a wall-clock step is seen within it)
FATAL_SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def create(daemon):
    return DoorController(daemon)


class DoorController:
    """Owns the relay, the inputs and the door state machine; lives on the daemon's loop."""

    def __init__(self, daemon, *, watchdog_period: float = WATCHDOG_PERIOD) -> None:
        from accessd.wiring.relay import Relay, guard_signals

        cfg = daemon.config.door
        self.daemon = daemon
        self.cfg = cfg
        self.clock = daemon.clock
        # First, before anything that can fail: the relay line at its locked level.
        self.relay = Relay(cfg.relay_pin, normal_state=cfg.normal_state, active_high=cfg.relay_active_high,
                           pin_factory=daemon.pin_factory, clock=daemon.clock)
        # Fatal signals the loop does not handle (SIGTERM/SIGINT are the daemon's): relay first.
        if threading.current_thread() is threading.main_thread():
            guard_signals(tuple(sig for sig in FATAL_SIGNALS if signal.getsignal(sig) == signal.SIG_DFL))
        self.inputs: dict = {}
        self._mock_adcs: dict[int, object] = {}
        try:
            self._setup(watchdog_period)
        except BaseException:
            self._close_inputs()
            self.relay.close()
            raise

    def _setup(self, watchdog_period: float) -> None:
        daemon, cfg = self.daemon, self.cfg
        self._build_inputs()
        self.policy = DoorPolicy(
            access_time=cfg.access_time, open_too_long=cfg.open_too_long, prealarm=cfg.prealarm,
            relock_on_open=cfg.relock_on_open, rex_unlocks=cfg.rex_unlocks, rex_shunt=cfg.rex_shunt,
            has_contact="contact" in self.inputs, has_rex="rex" in self.inputs,
        )
        self.door = self._fresh_door(self.clock())
        self._boot = self._boot_check()
        self._next_resample = self.clock() + RESAMPLE_PERIOD
        self._watch_deadline: float | None = None
        self._watchdog_period = watchdog_period
        self.watchdog_trips = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        mc = daemon.config.modes
        self.modes = Modes(daemon.config.schedule_book(daemon.tz),
                           tuple(ModeEntry(schedule=e.schedule, mode=e.mode, first_card=e.first_card)
                                 for e in mc.scheduled), mc.default)
        self.mode_listeners: list = []  # called with the new mode (the access policy)
        self._mode_at: float | None = None  # monotonic: when the modes are read again
        self._mode_next: float | None = None  # wall: the next change of the schedules
        daemon.scheduler.add("door", self.next_deadline, self._tick)
        daemon.register_command("door.unlock", self._cmd_unlock, privileged=True)
        daemon.register_command("door.lockdown", self._cmd_lockdown, privileged=True)
        daemon.register_command("door.lock", self._cmd_lock, privileged=True)
        daemon.register_command("simulate.input", self._cmd_simulate_input, privileged=True)
        daemon.register_status("door", self.door_status)
        daemon.register_status("relay", self.relay_status)
        daemon.register_status("inputs", self.inputs_status)

    # -- construction -------------------------------------------------------------------

    def _build_inputs(self) -> None:
        from accessd.wiring.inputs import DigitalInput, MockMCP3xxx, SupervisedInput, ratio_for

        cfg, daemon = self.cfg, self.daemon
        specs: list[tuple[str, object]] = []
        for role in ("contact", "rex", "tamper"):
            pin = getattr(cfg, f"{role}_pin")
            if pin is not None:
                specs.append((role, {"pin": pin, "normal_state": getattr(cfg, f"{role}_normal_state"),
                                     "debounce": cfg.debounce}))
        for name, ic in daemon.config.inputs.items():
            specs.append((name, ic))
        if daemon.mock:  # the chip side of every ADC, before gpiozero claims the SPI pins
            for _, spec in specs:
                if getattr(spec, "adc", None) and spec.spi_device not in self._mock_adcs:
                    bits = 12 if spec.adc == "MCP3208" else 10
                    self._mock_adcs[spec.spi_device] = MockMCP3xxx(
                        bits=bits, select=spec.spi_device, pin_factory=daemon.pin_factory)
        for name, spec in specs:
            if isinstance(spec, dict):
                pin, normal, debounce, adc = spec["pin"], spec["normal_state"], spec["debounce"], None
            else:
                pin, normal, adc = spec.pin, spec.normal_state, spec.adc
                debounce = cfg.debounce if spec.debounce is None else spec.debounce
            if adc is not None:
                thresholds = tuple(spec.thresholds)
                if daemon.mock:
                    self._mock_adcs[spec.spi_device].set_ratio(spec.channel, ratio_for("inactive", thresholds, normal))
                inp = SupervisedInput(name, chip=adc, channel=spec.channel, select=spec.spi_device,
                                      normal_state=normal, thresholds=thresholds, debounce=debounce,
                                      poll_interval=spec.poll_interval, pin_factory=daemon.pin_factory,
                                      clock=self.clock)
            else:
                inp = DigitalInput(name, pin, normal_state=normal, debounce=debounce,
                                   pin_factory=daemon.pin_factory, clock=self.clock)
                if daemon.mock:  # simulation starts with every input at rest
                    self._drive_mock_pin(inp, "inactive")
                    inp.resync(self.clock())
                inp.on_edge = self._edge_from_thread
            self.inputs[name] = inp

    def _fresh_door(self, now: float) -> Door:
        return Door(self.policy, contact_open=self._role_open("contact"),
                    rex_pressed=self._role_open("rex"), now=now)

    def _role_open(self, role: str) -> bool:
        inp = self.inputs.get(role)
        return inp is not None and inp.state == "active"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        changes = self.modes.evaluate(self.daemon.wall())
        if self.modes.entries or self.modes.default != "locked":  # else modes are not in use: no event
            self._mode_changes(changes)
        self._thread = threading.Thread(target=self._watchdog, name="accessd-relay-watchdog", daemon=True)
        self._thread.start()
        self._reschedule()

    async def stop(self) -> None:
        self.close()

    def close(self) -> None:
        """Relay to normal first, then everything else (best effort, idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        was_unlocked = self.relay.unlocked
        try:
            self.relay.to_normal()
        finally:
            self._stopping.set()
            self._close_inputs()
            self.relay.close()
        if was_unlocked:
            try:
                self.daemon.publish("door.locked", reason="stopping")
            except Exception:  # noqa: BLE001 - the log may be gone already
                log.exception("could not publish door.locked at stop")

    def _close_inputs(self) -> None:
        for inp in self.inputs.values():
            try:
                inp.close()
            except Exception:  # noqa: BLE001
                log.exception("closing input %s failed", inp.name)
        for chip in self._mock_adcs.values():
            chip.close()

    # -- the hooks of the contract (loop thread) -------------------------------------------

    def grant(self, *, seconds: float | None = None, holder: dict | None = None, reader: str | None = None) -> None:
        """A decided grant (the reader path: nothing here builds what nobody reads)."""
        try:
            event = Grant(seconds=seconds, holder=holder, reader=reader)
        except ValueError:  # a holder's broken access time must not cost the grant
            log.warning("door: grant with invalid seconds %r: using access_time", seconds)
            event = Grant(seconds=None, holder=holder, reader=reader)
        if self.modes.waiting:  # a first card begins a scheduled unlocked period
            self._mode_changes(self.modes.granted())
        self._handle(event)

    def unlock(self, seconds: float | None = None, *, uid: int | None = None) -> dict:
        self._handle(ManualUnlock(seconds=seconds, uid=uid))
        return self.door_status()

    def lock(self, *, uid: int | None = None) -> dict:
        self._handle(ManualLock(uid=uid))
        return self.door_status()

    # -- status -----------------------------------------------------------------------------

    def door_status(self) -> dict:
        out = self.door.status(max(self.clock(), self.door.now))
        out["watchdog_trips"] = self.watchdog_trips
        from accessd.access.policy import iso

        out["mode"] = {**self.modes.status(), "next_change": iso(self._mode_next) if self._mode_next else None}
        return out

    # -- door modes -------------------------------------------------------------------------

    def _mode_changes(self, changes) -> None:
        """Publish each change of mode, hold or release the door, tell the listeners; then
        set the next time the schedules are read."""
        for change in changes:
            self.daemon.publish("door.mode", **change.fields())
            if change.mode == "unlocked":
                self._handle(Hold(unlocked=True, mode=change.mode))
            elif change.previous == "unlocked" or change.mode == "lockdown":
                self._handle(Hold(unlocked=False, mode=change.mode))
                if change.mode == "lockdown":
                    self._handle(ManualLock())
            for listener in self.mode_listeners:
                listener(change.mode)
        if changes or self._mode_at is None:
            self._plan_modes()

    def _plan_modes(self) -> None:
        if not self.modes.entries:
            self._mode_at = self._mode_next = None
            return
        wall, now = self.daemon.wall(), self.clock()
        self._mode_next = self.modes.next_change(wall)
        wait = MODE_RECHECK if self._mode_next is None else min(MODE_RECHECK, max(0.0, self._mode_next - wall))
        self._mode_at = now + wait

    def _modes_tick(self, now: float) -> None:
        if self._mode_at is None or now < self._mode_at:
            return
        self._mode_at = None
        self._mode_changes(self.modes.evaluate(self.daemon.wall()))
        if self._mode_at is None:
            self._plan_modes()

    def clock_changed(self, synchronized, step) -> None:
        """The wall clock stepped (or its state changed): read the schedules now."""
        if step is not None and self.modes.entries:
            self._mode_at = None
            self._mode_changes(self.modes.evaluate(self.daemon.wall()))
            self._reschedule()

    def set_lockdown(self, on: bool) -> dict:
        self._mode_changes(self.modes.set_lockdown(on))
        return self.door_status()

    def _cmd_lockdown(self, params: dict) -> dict:
        _only(params, "door.lockdown", {"on"})
        self._check_running("door.lockdown")
        on = params.get("on", True)
        if not isinstance(on, bool):
            raise CommandError("invalid", f"door.lockdown: on: expected true or false, got {on!r}")
        return self.set_lockdown(on)

    def relay_status(self) -> dict:
        return {**self.relay.status(), **self._boot}

    def _boot_check(self) -> dict:
        """Warn when the SoC pulls the relay line to the unlocked side while the board boots."""
        from accessd.wiring.boards import boot_check, from_model

        try:
            profile = from_model(self.daemon.pin_factory.board_info.model)
        except Exception:  # noqa: BLE001 - not every factory knows its board
            profile = None
        check = boot_check(self.cfg.relay_pin, self.relay.locked_high, profile)
        if check["boot_safe"] is False:
            log.warning("door.relay_pin GPIO%d is pulled %s while the board boots: the relay is at its "
                        "UNLOCKED level until accessd starts (see the README's door section)",
                        self.cfg.relay_pin, check["boot_pull"])
        return check

    def inputs_status(self) -> dict:
        return {name: inp.status() for name, inp in self.inputs.items()}

    # -- the event path ---------------------------------------------------------------------

    def _now(self) -> float:
        return max(self.clock(), self.door.now)

    def _handle(self, event) -> None:
        if self._stopped:
            log.warning("door: %r ignored, the door is stopping", event)
            return
        now = self._now()
        try:
            self._apply(self.door.handle(event, now))
        except Exception as exc:
            self._fail_safe(exc, event)
        self._reschedule()

    def _apply(self, actions) -> None:
        for action in actions:
            if isinstance(action, SetRelay):
                self.relay.set_unlocked(action.unlocked)
                self._watch_deadline = self.door.unlock_until if action.unlocked else None
            elif isinstance(action, Emit):
                self.daemon.publish(action.type, **action.fields)
        self._watch_deadline = self.door.unlock_until if self.door.unlocked else None

    def _fail_safe(self, exc: BaseException, event: object) -> None:
        """Whatever went wrong, the relay goes to normal and the door restarts locked."""
        log.exception("door: %r failed; relay to normal", event)
        try:
            self.relay.to_normal()
        except Exception:  # noqa: BLE001 - the line itself failed: say so loudly, keep serving
            log.critical("door: the relay on GPIO%s cannot be driven to normal", self.cfg.relay_pin, exc_info=True)
        self._watch_deadline = None
        self.door = self._fresh_door(self._now())
        try:
            self.daemon.publish("door.locked", reason="fault", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the fault may be the log itself
            log.exception("door: could not publish the fault")

    def _edge_from_thread(self, inp, circuit_closed: bool, at: float) -> None:
        """gpiozero's callback thread (or the caller's, on mock pins): hop to the loop."""
        loop = self.daemon.loop
        if loop is not None and not self._stopped:
            loop.call_soon_threadsafe(self._edge, inp, circuit_closed, at)

    def _edge(self, inp, circuit_closed: bool, at: float) -> None:
        if self._stopped:
            return
        try:
            changes = inp.edge(circuit_closed, at)
            self._input_changes(changes)
        except Exception as exc:
            self._fail_safe(exc, ("edge", inp.name, circuit_closed))
        self._reschedule()

    def _tick(self, now: float | None = None) -> None:
        if self._stopped:
            return
        now = self._now()
        try:
            changes = []
            resample = now >= self._next_resample
            if resample:
                self._next_resample = now + RESAMPLE_PERIOD
            for inp in self.inputs.values():
                changes += inp.tick(now)
                if resample and not inp.supervised:
                    changes += inp.resample(now)
            self._input_changes(changes)
            self._apply(self.door.handle(Tick(), self._now()))
            self._modes_tick(self._now())
        except Exception as exc:
            self._fail_safe(exc, Tick())
        self._reschedule()

    def _input_changes(self, changes) -> None:
        for change in changes:
            fields = {"name": change.name, "state": change.state, "previous": change.previous}
            if change.value is not None:
                fields["value"] = change.value
            self.daemon.publish("input.changed", **fields)
            if change.fault:
                self.daemon.publish("tamper", input=change.name, state=change.state)
            elif change.name == "tamper" and change.state == "active":
                self.daemon.publish("tamper", input=change.name, state=change.state)
            if change.name == self.daemon.config.modes.lockdown_input and not change.fault:
                self._mode_changes(self.modes.set_lockdown(change.state == "active"))
            if change.name == "contact" and not change.fault:
                is_open = change.state == "active"
                if is_open != self.door.contact_open:  # timed from when the level began
                    self._apply(self.door.handle(Contact(open=is_open), max(change.at, self.door.now)))
            elif change.name == "rex" and not change.fault:
                pressed = change.state == "active"
                if pressed != self.door.rex_pressed:
                    self._apply(self.door.handle(Rex(pressed=pressed), max(change.at, self.door.now)))

    def next_deadline(self) -> float | None:
        if self._stopped:
            return None
        deadlines = [self.door.next_deadline(), self._next_resample if self.inputs else None, self._mode_at]
        deadlines += [inp.next_deadline() for inp in self.inputs.values()]
        return min((d for d in deadlines if d is not None), default=None)

    def _reschedule(self) -> None:
        self.daemon.scheduler.poke()

    # -- the watchdog thread ------------------------------------------------------------------

    def _watchdog(self) -> None:
        while not self._stopping.wait(self._watchdog_period):
            try:
                self.watchdog_check()
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one failure
                log.exception("relay watchdog check failed")

    def watchdog_check(self) -> bool:
        """Force the relay to normal if it is overdue; True when it did (any thread)."""
        deadline = self._watch_deadline
        if deadline is None or not self.relay.unlocked:
            return False
        late = self.clock() - deadline
        if late <= self.cfg.watchdog_grace:
            return False
        if not self.relay.to_normal():
            return False
        self.watchdog_trips += 1
        self._watch_deadline = None
        log.error("relay forced to normal by the watchdog: %.3f s past its deadline (event loop stalled?)", late)
        try:
            self.daemon.publish_threadsafe("system.watchdog", component="door", action="relay_to_normal",
                                           late=round(late, 3))
        except Exception:  # noqa: BLE001 - the loop may be closed
            pass
        return True

    # -- commands -------------------------------------------------------------------------------

    def _cmd_unlock(self, params: dict) -> dict:
        _only(params, "door.unlock", {"seconds"})
        self._check_running("door.unlock")
        seconds = params.get("seconds")
        if seconds is not None:
            ok = isinstance(seconds, int | float) and not isinstance(seconds, bool) and math.isfinite(seconds)
            if not ok or not 0 < seconds <= MAX_UNLOCK:
                raise CommandError("invalid", f"door.unlock: seconds: expected a number of seconds 0–{MAX_UNLOCK:g}, got {seconds!r}")
        return self.unlock(seconds, uid=_peer_uid())

    def _cmd_lock(self, params: dict) -> dict:
        _only(params, "door.lock", set())
        self._check_running("door.lock")
        return self.lock(uid=_peer_uid())

    def _check_running(self, command: str) -> None:
        if self._stopped:
            raise CommandError("unavailable", f"{command}: the door is stopping")

    async def _cmd_simulate_input(self, params: dict) -> dict:
        _only(params, "simulate.input", {"name", "state"})
        if not self.daemon.mock:
            raise CommandError("invalid", f"simulate.input: the daemon drives real GPIO (daemon.pin_factory = "
                                          f"{self.daemon.config.daemon.pin_factory!r}); simulation needs \"mock\"")
        name, state = params.get("name"), params.get("state")
        inp = self.inputs.get(name)
        if inp is None:
            known = ", ".join(self.inputs) or "none"
            raise CommandError("not_found", f"simulate.input: no input named {name!r} (configured: {known})")
        allowed = ("active", "inactive", "cut", "short") if inp.supervised else ("active", "inactive")
        if state not in allowed:
            raise CommandError("invalid", f"simulate.input: {name} is a {'supervised' if inp.supervised else 'digital'} "
                                          f"input: state must be one of {', '.join(allowed)}, got {state!r}")
        if inp.supervised:
            from accessd.wiring.inputs import ratio_for

            self._mock_adcs[self._select_of(name)].set_ratio(inp.channel, ratio_for(state, inp.thresholds, inp.normal_state))
            settle = inp.debounce + 2 * inp.poll_interval
        else:
            self._drive_mock_pin(inp, state)
            settle = inp.debounce
        # wait until the change went through debounce, the door and the log, as on hardware
        await asyncio.sleep(settle)
        for _ in range(100):  # at most a second more on a busy box
            if inp.state == state:
                break
            await asyncio.sleep(0.01)
        return {"name": name, "state": inp.state, "door": self.door_status()}

    def _select_of(self, name: str) -> int:
        return self.daemon.config.inputs[name].spi_device

    def _drive_mock_pin(self, inp, state: str) -> None:
        pin = self.daemon.pin_factory.pin(inp.pin)
        circuit_closed = (state == "inactive") == (inp.normal_state == "closed")
        if circuit_closed:
            pin.drive_low()  # pulled up: a closed circuit pulls the line low
        else:
            pin.drive_high()


def _only(params: dict, command: str, allowed: set[str]) -> None:
    for key in params:
        if key not in allowed:
            raise CommandError("invalid", f"{command}: unknown parameter {key!r}")


def _peer_uid() -> int | None:
    from accessd.shell.server import CURRENT_PEER

    peer = CURRENT_PEER.get()
    return None if peer is None else peer.uid
