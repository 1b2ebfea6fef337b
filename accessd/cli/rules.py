"""``accessd-cli rules list`` and ``rules trigger NAME``."""

from __future__ import annotations

from .common import call, emit


def _list(args) -> int:
    out = call(args, "rules.list")
    lines = []
    for r in out["rules"]:
        what = []
        if r.get("pulse"):
            what.append(f"pulse {r['pulse']['output']} {r['pulse']['seconds']:g} s")
        if r.get("unlock"):
            what.append(f"unlock {r['unlock']:g} s")
        if r.get("publish"):
            what.append(f"publish {r['publish']}")
        when = r.get("on") or "manual"
        lines.append(f"{r['name']}: on {when} → {', '.join(what) or 'nothing'}")
    emit(args, out, "\n".join(lines) or "no rules configured")
    return 0


def _trigger(args) -> int:
    out = call(args, "rules.trigger", name=args.name)
    emit(args, out, f"fired {out['fired']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("rules", help="the configured event rules")
    sub = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    q = sub.add_parser("list", help="the rules, their conditions and actions")
    q.set_defaults(func=_list)
    q = sub.add_parser("trigger", help="fire a rule by hand")
    q.add_argument("name")
    q.set_defaults(func=_trigger)
