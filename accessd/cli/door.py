"""``accessd-cli door unlock [--for S]``, ``door lock`` and ``door lockdown on|off``."""

from __future__ import annotations

from .common import call, emit, fail


def _describe(door: dict) -> str:
    text = f"door {door['state']}"
    if door.get("unlocked_for") is not None:
        text += f" for {door['unlocked_for']:g} s"
    if door.get("contact") is not None:
        text += f", contact {door['contact']}"
    if door.get("alarms"):
        text += f", alarms: {', '.join(door['alarms'])}"
    mode = door.get("mode")
    if mode:
        text += f", mode {mode['mode']}"
        if mode.get("waiting_first_card"):
            text += " (scheduled unlocked: waiting for the first card)"
        if mode.get("next_change"):
            text += f", next change {mode['next_change']}"
    return text


def _unlock(args) -> int:
    seconds = args.seconds
    if seconds is not None and not 0 < seconds <= 86_400:
        raise fail(f"door unlock: --for: expected a number of seconds 0–86400, got {seconds:g}")
    door = call(args, "door.unlock", seconds=seconds)
    emit(args, door, _describe(door))
    return 0


def _lock(args) -> int:
    door = call(args, "door.lock")
    emit(args, door, _describe(door))
    return 0


def _lockdown(args) -> int:
    door = call(args, "door.lockdown", on=args.state == "on")
    emit(args, door, _describe(door))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("door", help="unlock or lock the door by hand")
    sub = p.add_subparsers(dest="door_command", required=True, metavar="ACTION")
    q = sub.add_parser("unlock", help="unlock now (for access_time unless --for)")
    q.add_argument("--for", dest="seconds", type=float, metavar="SECONDS",
                   help="seconds to stay unlocked (default: door.access_time)")
    q.set_defaults(func=_unlock)
    q = sub.add_parser("lock", help="lock now, cancelling any unlock")
    q.set_defaults(func=_lock)
    q = sub.add_parser("lockdown", help="only responders are granted (on) until lifted (off); free egress stays")
    q.add_argument("state", choices=("on", "off"))
    q.set_defaults(func=_lockdown)
