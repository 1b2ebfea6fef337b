"""``accessd-cli schedules list [NAME]``: the configured schedules and groups, as the door sees them now."""

from __future__ import annotations

from .common import call, emit


def _list(args) -> int:
    out = call(args, "schedules.list", **({"name": args.name} if args.name else {}))
    lines = [f"{name}: {'active' if s['active'] else 'inactive'}, next change {s['next_change'] or 'none'}"
             for name, s in out["schedules"].items()]
    for name, g in out["groups"].items():
        extra = ", responder" if g["responder"] else ""
        lines.append(f"group {name}: {', '.join(g['schedules']) or 'any time'}{extra}")
    emit(args, out, "\n".join(lines) or "no schedules configured")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("schedules", help="the configured schedules and groups (config [schedules.*], [groups.*])")
    sub = p.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="each schedule: active now, next change; the groups")
    q.add_argument("name", nargs="?", help="one schedule")
    q.set_defaults(func=_list)
