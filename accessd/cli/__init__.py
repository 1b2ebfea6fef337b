"""``accessd-cli``: drive the daemon over its socket (and decode formats without it).

Command groups live in modules of this package, each with ``register(subparsers)``
setting ``func(args) -> exit code`` on its parsers; :data:`GROUPS` lists them and
:data:`COMMANDS` names the top-level commands each one adds.  Start-up is kept short
(a Pi runs every command as a new process): only the module of the command given is
imported and its parsers built; the others appear in ``--help`` by name and help text.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from .common import Exit, add_json, call, emit, write_error

# Modules that add command groups (holders, door, wiegand, …).
GROUPS: tuple[str, ...] = ("accessd.cli.events", "accessd.cli.door", "accessd.cli.holders", "accessd.cli.wiegand", "accessd.cli.osdp",
                           "accessd.cli.rules", "accessd.cli.schedules", "accessd.cli.top")

# Top-level command -> (module that registers it, help).  tests/cli check the help here
# is the one the module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "events": ("accessd.cli.events", "the event log; --follow streams new events"),
    "door": ("accessd.cli.door", "unlock or lock the door by hand"),
    "holders": ("accessd.cli.holders", "the entry list: add, list, show, update, remove, import, export"),
    "check-credential": ("accessd.cli.holders", "the decision the door would make (exit 0 granted, 1 denied)"),
    "latest": ("accessd.cli.holders", "the latest credentials read (raw bits, hex, decoded, reversed UID)"),
    "wiegand": ("accessd.cli.wiegand", "decode, encode and list Wiegand card formats (no daemon needed)"),
    "keypress": ("accessd.cli.wiegand", "encode and decode keypad key frames (no daemon needed)"),
    "osdp": ("accessd.cli.osdp", "OSDP helpers: genkey (a random secure channel key)"),
    "rules": ("accessd.cli.rules", "the configured event rules"),
    "schedules": ("accessd.cli.schedules", "the configured schedules and groups (config [schedules.*], [groups.*])"),
    "top": ("accessd.cli.top", "a live view of the door, relay, inputs, readers and events"),
}


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


def _cmd_simulate(args) -> int:
    what = args.what
    if what == "card":
        params = {"hex": args.hex, "bit_length": args.bit_length}
    elif what == "wiegand":
        params = {"bits": args.bits}
    elif what == "keys":
        params = {"digits": args.digits}
    elif what == "qr":
        params = {"text": args.text}
    else:
        params = {"name": args.name, "state": args.state}
    result = call(args, f"simulate.{what}", **params)
    emit(args, result, f"simulated {what}: {_flat(result) or 'ok'}")
    return 0


def _command_in(argv: list[str]) -> str | None:
    """The top-level command in ``argv`` (the first word that is not an option)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--socket":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the parsers of the command in it are built in full."""
    parser = argparse.ArgumentParser(prog="accessd-cli", description="Drive the accessd door daemon.")
    parser.add_argument("--socket", metavar="PATH", help="the daemon's socket (default $ACCESSD_SOCKET or /run/accessd/accessd.sock)")
    parser.add_argument("--version", action="version", version=f"accessd-cli {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("status", help="daemon, readers, door, relay, inputs, counts")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("simulate", help="drive the mock pins (daemon on pin_factory = \"mock\" only)")
    sim = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    q = sim.add_parser("card", help="a card through the simulated reader")
    q.add_argument("--hex", required=True, help="the card value, right-justified hex")
    q.add_argument("--bit-length", type=int, required=True, metavar="N", help="the card's number of bits")
    q = sim.add_parser("wiegand", help="raw Wiegand bits through D0/D1")
    q.add_argument("bits", help="0s and 1s in wire order")
    q = sim.add_parser("keys", help="keypad keys (digits, * and #)")
    q.add_argument("digits", help="the keys, e.g. 1234#")
    q = sim.add_parser("qr", help="a QR code's text through the scanner's decoder ([reader.qr] set)")
    q.add_argument("text", help="the scanned text")
    q = sim.add_parser("input", help="an input: contact, rex, tamper or a configured one")
    q.add_argument("name", help="contact, rex, tamper or a configured input's name")
    q.add_argument("state", choices=("active", "inactive", "cut", "short"), help="active, inactive (cut, short: supervised inputs)")
    for q in sim.choices.values():
        q.set_defaults(func=_cmd_simulate)

    if argv is None:
        modules = GROUPS
    else:
        chosen = COMMANDS.get(_command_in(argv) or "")
        modules = (chosen[0],) if chosen else ()
    for name in modules:
        importlib.import_module(name).register(sub)
    for name, (_module, text) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=text, add_help=False)  # a name in --help; built when given
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


def _join_relative_times(argv: list[str]) -> list[str]:
    """``--since -1h`` → ``--since=-1h`` (argparse would take ``-1h`` for an option)."""
    out: list[str] = []
    for word in argv:
        if out and out[-1] in ("--since", "--until", "--valid-from", "--valid-to") and word[:1] == "-" and word[1:2].isdigit():
            out[-1] = f"{out[-1]}={word}"
        else:
            out.append(word)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _join_relative_times(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser(argv)
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
