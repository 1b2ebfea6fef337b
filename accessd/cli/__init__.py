"""``accessd-cli``: drive the daemon over its socket (and decode formats without it).

Command groups live in modules of this package, each with ``register(subparsers)``
setting ``func(args) -> exit code`` on its parsers; :data:`GROUPS` lists them.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys

from .common import Client, Exit, add_json, call, emit, socket_path, write_error

# Modules that add command groups (holders, door, wiegand, …).
GROUPS: tuple[str, ...] = ("accessd.cli.door", "accessd.cli.holders", "accessd.cli.rules", "accessd.cli.schedules",
                             "accessd.cli.wiegand")


def _cmd_status(args) -> int:
    st = call(args, "status")
    d = st["daemon"]
    lines = [f"daemon   accessd {d['version']}, pid {d['pid']}, up {d['uptime']:.0f} s, pins {d['pin_factory']}, socket {d['socket']}"]
    for rid, r in st.get("readers", {}).items():
        lines.append(f"reader   {rid}: {str(r.get('state', '?')).replace('_', ' ')}")
    if not st.get("readers"):
        lines.append("reader   none configured")
    for key in ("door", "relay"):
        if key in st:
            lines.append(f"{key:<8} {_flat(st[key])}")
    for name, value in st.get("inputs", {}).items():
        lines.append(f"input    {name}: {_flat(value)}")
    lines.append(f"counts   {_flat(st.get('counts', {}))}")
    if d["log"].get("write_error"):
        lines.append(f"LOG      write error: {d['log']['write_error']}")
    if d["log"].get("corrupt_file_kept"):
        lines.append(f"LOG      was corrupt, kept as {d['log']['corrupt_file_kept']}")
    emit(args, st, "\n".join(lines))
    return 0


def _flat(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flat(v)}" for k, v in value.items())
    return str(value)


CSV_COLUMNS = ("seq", "time", "type", "reader", "reason", "holder", "credential", "details")


def _csv_row(event: dict) -> list[str]:
    rest = {k: v for k, v in event.items() if k not in CSV_COLUMNS}
    holder = event.get("holder") or {}
    cred = event.get("credential") or {}
    return [
        str(event["seq"]), event["time"], event["type"], event.get("reader") or "", event.get("reason") or "",
        " ".join(filter(None, (holder.get("first_name"), holder.get("last_name")))) if isinstance(holder, dict) else str(holder),
        " ".join(f"{k}={v}" for k, v in cred.items() if v is not None) if isinstance(cred, dict) else str(cred),
        json.dumps(rest, separators=(",", ":")) if rest else "",
    ]


def _human(event: dict) -> str:
    rest = {k: v for k, v in event.items() if k not in ("seq", "time", "type")}
    return f"{event['time']}  #{event['seq']:<6} {event['type']:<20} {_flat(rest)}"


def _cmd_events(args) -> int:
    if args.follow and args.until:
        raise Exit(2, "accessd-cli: events: --until cannot be combined with --follow")
    out = csv.writer(sys.stdout, lineterminator="\r\n") if args.csv else None
    if out:
        out.writerow(CSV_COLUMNS)

    def show(event: dict) -> None:
        if "notice" in event:
            print(f"accessd-cli: missed {event.get('missed')} events (the client read too slowly)", file=sys.stderr)
        elif out:
            out.writerow(_csv_row(event))
        elif args.json:
            print(json.dumps(event, separators=(",", ":")))
        else:
            print(_human(event))
        sys.stdout.flush()

    client = Client(socket_path(args), timeout=None if args.follow else 30)
    try:
        max_seq = None
        if args.follow:
            client.request("subscribe", {"types": [args.type or "*"]})
            max_seq = client.request("status")["daemon"]["log"]["last_seq"]
        after = 0
        params = {"since": args.since, "until": args.until, "type": args.type, "search": args.search, "max_seq": max_seq}
        while True:
            page = client.request("events", {k: v for k, v in params.items() if v is not None} | {"after_seq": after, "limit": 5000})
            for event in page["events"]:
                show(event)
                after = event["seq"]
            if not page["more"]:
                break
        if not args.follow:
            return 0
        needle = args.search.lower() if args.search else None
        pending, client.pending_events = client.pending_events, []
        while True:
            for event in pending:
                if "seq" in event and event["seq"] <= after:
                    continue  # already shown from the log
                if needle and "seq" in event and needle not in json.dumps(event).lower():
                    continue
                show(event)
            pending = [client.read()]
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    finally:
        client.close()


def _cmd_simulate(args) -> int:
    what = args.what
    if what == "card":
        params = {"hex": args.hex, "bit_length": args.bit_length}
    elif what == "wiegand":
        params = {"bits": args.bits}
    elif what == "keys":
        params = {"digits": args.digits}
    else:
        params = {"name": args.name, "state": args.state}
    result = call(args, f"simulate.{what}", **params)
    emit(args, result, f"simulated {what}: {_flat(result) or 'ok'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accessd-cli", description="Drive the accessd door daemon.")
    parser.add_argument("--socket", metavar="PATH", help="the daemon's socket (default $ACCESSD_SOCKET or /run/accessd/accessd.sock)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="daemon, readers, door, relay, inputs, counts")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("events", help="the event log; --follow streams new events")
    p.add_argument("--follow", action="store_true", help="keep streaming new events")
    p.add_argument("--since", metavar="T", help="ISO 8601 date or date-time (device time zone when none)")
    p.add_argument("--until", metavar="T", help="ISO 8601 date or date-time, exclusive")
    p.add_argument("--type", metavar="GLOB", help="event type glob, e.g. 'door.*'")
    p.add_argument("--search", metavar="TEXT", help="free text anywhere in the event")
    p.add_argument("--csv", action="store_true", help="RFC 4180 CSV")
    p.set_defaults(func=_cmd_events)

    p = sub.add_parser("simulate", help="drive the mock pins (daemon on pin_factory = \"mock\" only)")
    sim = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = sim.add_parser("card", help="a card through the simulated reader")
    q.add_argument("--hex", required=True)
    q.add_argument("--bit-length", type=int, required=True)
    q = sim.add_parser("wiegand", help="raw Wiegand bits through D0/D1")
    q.add_argument("bits")
    q = sim.add_parser("keys", help="keypad keys (digits, * and #)")
    q.add_argument("digits")
    q = sim.add_parser("input", help="an input: contact, rex, tamper or a configured one")
    q.add_argument("name")
    q.add_argument("state", choices=("active", "inactive", "cut", "short"))
    for q in sim.choices.values():
        q.set_defaults(func=_cmd_simulate)

    for name in GROUPS:
        importlib.import_module(name).register(sub)
    _add_json_everywhere(parser)
    return parser


def _add_json_everywhere(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if not any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    if "--json" not in child._option_string_actions:
                        add_json(child)
                else:
                    _add_json_everywhere(child)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exit as exc:
        write_error(exc.message)
        return exc.code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
