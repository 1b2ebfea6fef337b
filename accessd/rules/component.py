"""The rules component: auxiliary outputs (``[outputs.NAME]``) and ``[[rules]]`` actions.

Outputs are relays like the lock's (a normal state, claimed at it when built); a pulse
holds one active for its seconds on the shell's scheduler (a new pulse extends it).
Every published event is offered to :class:`~accessd.rules.engine.Rules`; a firing pulses
its output, unlocks the door for its seconds and publishes its event (``rule`` and
``trigger`` fields) — and ``rule.fired`` always.  Commands: ``rules.list``,
``rules.trigger {name}`` (privileged).  Status: ``outputs``.
"""

from __future__ import annotations

import logging

from accessd.errors import CommandError
from accessd.rules.engine import Rule, Rules

log = logging.getLogger("accessd.rules")


class RulesComponent:
    def __init__(self, daemon, *, door, store) -> None:
        from accessd.wiring.relay import Relay

        self.daemon = daemon
        self.door = door
        self.store = store
        cfg = daemon.config
        self.outputs = {name: Relay(o.pin, normal_state=o.normal_state, active_high=o.active_high,
                                    pin_factory=daemon.pin_factory, clock=daemon.clock)
                        for name, o in cfg.outputs.items()}
        self.until: dict[str, float] = {}  # output → monotonic end of its pulse
        rules = tuple(Rule(name=r.name, on=r.on, match=tuple((k, str(v)) for k, v in r.match.items()),
                           schedule=r.schedule, holder_condition=r.holder_condition,
                           pulse_output=r.pulse.output if r.pulse else None,
                           pulse_seconds=r.pulse.seconds if r.pulse else 1.0, unlock=r.unlock, publish=r.publish)
                      for r in cfg.rules)
        self.rules = Rules(rules, cfg.schedule_book(daemon.tz))
        self._firing = False
        daemon.event_hooks.append(self.on_event)
        daemon.scheduler.add("rules", self.next_deadline, self.tick)
        daemon.register_command("rules.list", self.cmd_list, privileged=True)
        daemon.register_command("rules.trigger", self.cmd_trigger, privileged=True)
        daemon.register_status("outputs", self.status)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.close()

    def close(self) -> None:
        for out in self.outputs.values():
            try:
                out.to_normal()
                out.close()
            except Exception:  # noqa: BLE001 - best effort at stop
                log.exception("output to normal failed")

    def status(self) -> dict:
        now = self.daemon.clock()
        return {name: {"active": out.unlocked, "for": round(self.until[name] - now, 3) if name in self.until else None}
                for name, out in self.outputs.items()}

    def next_deadline(self) -> float | None:
        return min(self.until.values(), default=None)

    def tick(self, now: float) -> None:
        for name, until in list(self.until.items()):
            if until <= now:
                del self.until[name]
                self.outputs[name].set_unlocked(False)
                self.daemon.publish("output.changed", name=name, active=False)

    def _conditions(self, holder_id: int) -> dict:
        import json

        try:
            h = self.store.get(holder_id)
        except Exception:  # noqa: BLE001 - removed since
            return {}
        return json.loads(h.conditions) if h.conditions else {}

    def on_event(self, data: dict) -> None:
        if self._firing:
            return
        fired = self.rules.on_event(data["type"], data, self.daemon.wall(), self._conditions)
        for f in fired:
            self.fire(f)

    def fire(self, f) -> None:
        r = f.rule
        self._firing = True
        try:
            self.daemon.publish("rule.fired", rule=r.name, trigger=f.trigger)
            if r.pulse_output is not None:
                now = self.daemon.clock()
                out = self.outputs[r.pulse_output]
                was = out.unlocked
                self.until[r.pulse_output] = max(self.until.get(r.pulse_output, now), now + r.pulse_seconds)
                out.set_unlocked(True)
                if not was:
                    self.daemon.publish("output.changed", name=r.pulse_output, active=True, seconds=r.pulse_seconds,
                                        rule=r.name)
            if r.unlock is not None and self.door is not None:
                self.door.unlock(r.unlock)
            if r.publish is not None:
                self.daemon.publish(r.publish, rule=r.name, trigger=f.trigger)
        finally:
            self._firing = False
        self.daemon.scheduler.poke()

    def cmd_list(self, params: dict) -> dict:
        return {"rules": [{"name": r.name, "on": r.on, "match": dict(r.match), "schedule": r.schedule,
                           "holder_condition": r.holder_condition, "pulse": r.pulse_output and
                           {"output": r.pulse_output, "seconds": r.pulse_seconds}, "unlock": r.unlock,
                           "publish": r.publish} for r in self.rules.rules]}

    def cmd_trigger(self, params: dict) -> dict:
        name = params.get("name")
        if name not in self.rules.by_name:
            names = ", ".join(self.rules.by_name) or "none configured"
            raise CommandError("not_found", f"rules.trigger: no rule {name!r} (rules: {names})")
        self.fire(self.rules.trigger(name))
        return {"fired": name, "outputs": self.status()}
