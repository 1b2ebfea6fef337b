"""``accessd-cli events``: the event log, one line per event; ``--follow`` streams.

``--follow`` starts from now (or from the newest ``-n N`` / ``--since T``), and when the
daemon restarts it reconnects and first reads what the log got meanwhile, so no event is
missed or shown twice (events are told apart by ``seq``).
"""

from __future__ import annotations

import json
import sys
import time

from . import render
from .common import Client, Exit, fail, socket_path

CSV_COLUMNS = ("seq", "time", "type", "reader", "reason", "holder", "credential", "details")
RECONNECT_EVERY = 0.5  # seconds between attempts while the daemon is away


def _csv_row(event: dict) -> list[str]:
    from accessd.store.csvio import neutralise  # no cell a spreadsheet runs as a formula

    rest = {k: v for k, v in event.items() if k not in CSV_COLUMNS}
    holder = event.get("holder") or {}
    cred = event.get("credential") or {}
    return [neutralise(cell) for cell in [
        str(event["seq"]), event["time"], event["type"], event.get("reader") or "", event.get("reason") or "",
        " ".join(filter(None, (holder.get("first_name"), holder.get("last_name")))) if isinstance(holder, dict) else str(holder),
        " ".join(f"{k}={v}" for k, v in cred.items() if v is not None) if isinstance(cred, dict) else str(cred),
        json.dumps(rest, separators=(",", ":")) if rest else "",
    ]]


def _cmd_events(args) -> int:
    if args.follow and args.until:
        raise Exit(2, "accessd-cli: events: --until cannot be combined with --follow")
    if args.n is not None and args.n < 0:
        raise fail("events: -n: expected a number of events ≥ 0")
    import csv

    out = csv.writer(sys.stdout, lineterminator="\r\n") if args.csv else None
    if out:
        out.writerow(CSV_COLUMNS)
    colour = render.colour_on(args)
    columns = render.width()
    since, until = render.absolute_time(args.since), render.absolute_time(args.until)

    def show(event: dict) -> None:
        if "notice" in event:
            print(f"accessd-cli: missed {event.get('missed')} events (the client read too slowly)", file=sys.stderr)
        elif out:
            out.writerow(_csv_row(event))
        elif args.json:
            print(json.dumps(event, separators=(",", ":")))
        else:
            print(render.event_line(event, utc=args.utc, colour=colour, columns=columns))
        sys.stdout.flush()

    filters = {"since": since, "until": until, "type": args.type, "search": args.search}
    filters = {k: v for k, v in filters.items() if v is not None}

    def log_after(client: Client, after: int, max_seq: int | None) -> int:
        """Show the log's events after seq ``after`` (up to ``max_seq``); the last seq shown."""
        while True:
            params = {**filters, "after_seq": after, "limit": 5000, **({"max_seq": max_seq} if max_seq is not None else {})}
            page = client.request("events", params)
            for event in page["events"]:
                show(event)
                after = event["seq"]
            if not page["more"]:
                return after

    def newest(client: Client, n: int, max_seq: int | None) -> int:
        """Show the newest ``n`` events (matching the filters) up to ``max_seq``; the last seq."""
        from collections import deque

        last = client.request("events", {"after_seq": 0, "limit": 1})["last_seq"] if max_seq is None else max_seq
        start = max(0, last - n) if not filters else 0  # seqs are consecutive: no need to read the rest
        keep: deque = deque(maxlen=n)
        after = start
        while n:
            page = client.request("events", {**filters, "after_seq": after, "max_seq": last, "limit": 5000})
            keep.extend(page["events"])
            if page["events"]:
                after = page["events"][-1]["seq"]
            if not page["more"]:
                break
        for event in keep:
            show(event)
        return last

    client = Client(socket_path(args), timeout=None if args.follow else 30)
    try:
        if not args.follow:
            if args.n is not None:
                newest(client, args.n, None)
            else:
                log_after(client, 0, None)
            return 0
        needle = args.search.lower() if args.search else None
        after: int | None = None  # the last seq shown (or passed over)
        while True:
            client.request("subscribe", {"types": [args.type or "*"]})
            max_seq = client.request("events", {"after_seq": 0, "limit": 1})["last_seq"]
            if after is None:  # first connection: from now, or the newest -n, or --since
                if since is not None:
                    after = log_after(client, 0, max_seq)
                    after = max(after, max_seq)
                elif args.n:
                    after = newest(client, args.n, max_seq)
                else:
                    after = max_seq
            else:  # after a reconnect: what the log got while we were away
                after = max(log_after(client, after, max_seq), max_seq)
            pending, client.pending_events = client.pending_events, []
            try:
                while True:
                    for event in pending:
                        if "seq" in event:
                            if event["seq"] <= after:
                                continue  # already shown from the log
                            after = event["seq"]
                            if needle and needle not in json.dumps(event).lower():
                                continue
                        show(event)
                    pending = [client.read()]
            except Exit as exc:
                if exc.code != 3:
                    raise
            client.close()
            if sys.stderr.isatty():
                print("accessd-cli: the daemon went away; reconnecting …", file=sys.stderr)
            client = _reconnect(args)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    finally:
        client.close()


def _reconnect(args) -> Client:
    while True:
        time.sleep(RECONNECT_EVERY)
        try:
            return Client(socket_path(args), timeout=None)
        except Exit as exc:
            if exc.code != 3:
                raise


def register(sub) -> None:
    p = sub.add_parser("events", help="the event log; --follow streams new events")
    p.add_argument("-n", type=int, metavar="N", help="only the newest N events (with --follow: then stream)")
    p.add_argument("--follow", action="store_true", help="stream new events from now on (reconnects when the daemon restarts)")
    p.add_argument("--since", metavar="T", help="ISO 8601 date or date-time (device time zone when none), or today, yesterday, -30m, -1h, -2d")
    p.add_argument("--until", metavar="T", help="like --since, exclusive")
    p.add_argument("--type", metavar="GLOB", help="event type glob, e.g. 'door.*'")
    p.add_argument("--search", metavar="TEXT", help="free text anywhere in the event")
    p.add_argument("--csv", action="store_true", help="RFC 4180 CSV (times in UTC, as stored)")
    p.add_argument("--utc", action="store_true", help="show times in UTC instead of the device's time zone")
    p.set_defaults(func=_cmd_events)
