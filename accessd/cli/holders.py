"""``accessd-cli holders …``, ``check-credential`` and ``latest``: the entry list from a shell.

Every command goes through the daemon (the one writer of the entry list).  A CSV
import is sent in chunks of whole records; the daemon validates each chunk as it
comes and commits all of them in one transaction at the end, or nothing.
"""

from __future__ import annotations

import csv
import json
import os
import sys

from .common import Client, call, emit, fail, socket_path
from .render import plural

CHUNK_BYTES = 48_000  # JSON-encoded CSV text per request (the daemon takes 64 KiB lines)


def register(sub) -> None:
    p = sub.add_parser("holders", help="the entry list: add, list, show, update, remove, import, export")
    hs = p.add_subparsers(dest="holders_command", required=True, metavar="ACTION")

    q = hs.add_parser("add", help="add a holder with a card, PIN and/or QR code")
    q.add_argument("--first-name", required=True, metavar="NAME", help="unique")
    _holder_options(q, update=False)
    q.set_defaults(func=_add)

    q = hs.add_parser("list", help="list holders")
    q.add_argument("--search", metavar="TEXT", help="part of a name or the notes")
    q.add_argument("--limit", type=int, metavar="N", help="at most N holders")
    q.set_defaults(func=_list)

    q = hs.add_parser("show", help="one holder with its credentials")
    q.add_argument("holder", metavar="HOLDER", help="holder id or first name (a number is tried as an id first)")
    q.set_defaults(func=_show)

    q = hs.add_parser("update", help="change a holder (give only what changes; \"\" clears a value)")
    q.add_argument("holder", metavar="HOLDER", help="holder id or first name (a number is tried as an id first)")
    q.add_argument("--first-name", metavar="NAME")
    _holder_options(q, update=True)
    q.set_defaults(func=_update)

    q = hs.add_parser("remove", help="remove a holder and its credentials")
    q.add_argument("holder", metavar="HOLDER", help="holder id or first name (a number is tried as an id first)")
    q.set_defaults(func=_remove)

    q = hs.add_parser("import", help="import a CSV file, all or nothing")
    q.add_argument("file", metavar="FILE.csv", help="header row, then one holder per row (README: CSV columns)")
    q.set_defaults(func=_import)

    q = hs.add_parser("export", help="export the holders as CSV (PINs are stored hashed: left empty)")
    q.add_argument("file", metavar="FILE.csv", nargs="?", help="default: standard output")
    q.set_defaults(func=_export)

    p = sub.add_parser("check-credential", help="the decision the door would make (exit 0 granted, 1 denied)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--card", metavar="HEX", help="card value, right-justified hex (with --bit-length)")
    g.add_argument("--qr", metavar="TEXT", help="the text of a QR code")
    p.add_argument("--bit-length", type=int, metavar="N", help="the card's number of bits (with --card)")
    p.add_argument("--pin", metavar="DIGITS", help="a PIN alone, or the PIN after --card")
    p.add_argument("--reader", metavar="ID", help="the reader it is presented at")
    p.add_argument("--present", action="store_true", help="act as a presentation at the reader (uses, relay, events)")
    p.set_defaults(func=_check)

    p = sub.add_parser("latest", help="the latest credentials read (raw bits, hex, decoded, reversed UID)")
    p.set_defaults(func=_latest)


def _holder_options(q, *, update: bool) -> None:
    q.add_argument("--last-name", metavar="NAME")
    card = q.add_mutually_exclusive_group()
    card.add_argument("--card", metavar="HEX", help="raw card value, right-justified hex (with --bit-length)")
    card.add_argument("--format", metavar="F", help="card format (H10301, Wiegand26 …) with --fc/--cn")
    card.add_argument("--from-latest", action="store_true", help="the last card read at a reader")
    if update:
        card.add_argument("--no-card", action="store_true", help="remove the holder's card")
    q.add_argument("--bit-length", type=int, metavar="N", help="the card's number of bits (with --card)")
    q.add_argument("--fc", type=int, metavar="N", help="facility code")
    q.add_argument("--cn", type=int, metavar="N", help="card number")
    pin = q.add_mutually_exclusive_group()
    pin.add_argument("--pin", metavar="DIGITS", help="a PIN (stored hashed)")
    pin.add_argument("--generate-pin", action="store_true", help="a unique random PIN (access.pin_length digits)")
    if update:
        pin.add_argument("--no-pin", action="store_true", help="remove the holder's PIN")
    qr = q.add_mutually_exclusive_group()
    qr.add_argument("--qr", metavar="TEXT", help="the text of the holder's QR code (stored as an HMAC)")
    qr.add_argument("--qr-generate", action="store_true", help="a new random QR credential (AQ1-…), shown once")
    q.add_argument("--qr-image", metavar="FILE", help="write the QR code as FILE.png or FILE.svg (mode 0600)")
    q.add_argument("--valid-from", metavar="T", help="ISO 8601 date or date-time (device time zone when none)")
    q.add_argument("--valid-to", metavar="T", help="ISO 8601; a date means through the end of that day")
    q.add_argument("--uses", metavar="N", help="number of uses left (\"\" or 'unlimited' for no limit)")
    s = q.add_mutually_exclusive_group()
    s.add_argument("--suspended", action="store_true", default=None, help="refused until --active")
    if update:
        s.add_argument("--active", dest="suspended", action="store_false", default=None, help="lift a suspension")
    q.add_argument("--access-time", metavar="SECONDS", help="unlock time for this holder (extended access time)")
    q.add_argument("--notes", metavar="TEXT")
    q.add_argument("--schedule", metavar="NAME", help="a [schedules.NAME]: granted only while it is active (\"\" clears)")
    q.add_argument("--group", metavar="NAME", help="a [groups.NAME]: its schedules apply when the holder has none")


def _params(args, *, update: bool) -> dict:
    p: dict = {}
    for key in ("first_name", "last_name", "qr", "valid_from", "valid_to", "notes", "access_time", "schedule", "group"):
        value = getattr(args, key, None)
        if value is not None:
            p[key] = value
    if args.uses is not None:
        p["uses"] = "" if args.uses.strip().lower() in ("", "unlimited") else args.uses  # "": no limit
    if args.suspended is not None:
        p["suspended"] = args.suspended
    if args.card is not None:
        if args.bit_length is None:
            raise fail("--card needs --bit-length")
        p.update(card=args.card, bit_length=args.bit_length)
    elif args.format is not None:
        if args.cn is None:
            raise fail("--format needs --cn (and --fc when the format has a facility code)")
        p.update(format=args.format, facility_code=args.fc, card_number=args.cn)
    elif args.from_latest:
        p["from_latest"] = True
    elif update and args.no_card:
        p["card"] = ""  # cleared (None would not be sent)
    elif args.bit_length is not None or args.fc is not None or args.cn is not None:
        raise fail("--bit-length goes with --card; --fc/--cn go with --format")
    if args.pin is not None:
        p["pin"] = args.pin
    elif args.generate_pin:
        p["generate_pin"] = True
    elif update and args.no_pin:
        p["pin"] = ""
    return p


def _describe(h: dict) -> str:
    name = " ".join(filter(None, (h["first_name"], h.get("last_name"))))
    creds = []
    card = h.get("card")
    if card:
        if card.get("hex"):
            creds.append(f"card {card['hex']}/{card['bit_length']} bits")
        if card.get("card_number") is not None:
            fc = f" FC {card['facility_code']}" if card.get("facility_code") is not None else ""
            creds.append(f"{card['format']}{fc} CN {card['card_number']}")
    if h.get("pin"):
        creds.append("PIN set")
    if h.get("qr"):
        creds.append("QR set")
    state = []
    if h.get("suspended"):
        state.append("SUSPENDED")
    if h.get("valid_from") or h.get("valid_to"):
        state.append(f"valid {h.get('valid_from') or '…'} to {h.get('valid_to') or '…'}")
    if h.get("uses") is not None:
        state.append(f"{plural(h['uses'], 'use')} left")
    if h.get("access_time") is not None:
        state.append(f"unlock {h['access_time']:g} s")
    if h.get("schedule"):
        state.append(f"schedule {h['schedule']}")
    if h.get("group"):
        state.append(f"group {h['group']}")
    return f"#{h['id']} {name}: " + ", ".join(creds or ["no credential"]) + ("; " + ", ".join(state) if state else "")


def _qr(args, params: dict) -> str | None:
    """``--qr-generate`` / ``--qr-image``: the QR text to send, checked before anything is
    written (a bad image name is a usage error and no holder changes)."""
    if args.qr_image is None and not args.qr_generate:
        return None
    from ..qrcode import QrImageError, generate_text, image_kind

    if args.qr_image is not None:
        if args.qr is None and not args.qr_generate:
            raise fail("holders: --qr-image needs --qr TEXT or --qr-generate")
        try:
            image_kind(args.qr_image)
        except QrImageError as exc:
            raise fail(f"holders: --qr-image: {exc}") from None
    text = args.qr if args.qr is not None else generate_text()
    params["qr"] = text
    return text


def _saved(args, h: dict, verb: str, qr_text: str | None) -> int:
    text = f"{verb} " + _describe(h)
    if "generated_pin" in h:
        text += f"\ngenerated PIN: {h['generated_pin']} (shown only now; it is stored hashed)"
    if qr_text is not None:
        if args.qr_generate:
            h = {**h, "generated_qr": qr_text}
            text += f"\ngenerated QR: {qr_text} (shown only now; it is stored as an HMAC)"
        if args.qr_image is not None:
            from ..qrcode import QrImageError, write_image

            try:
                path = write_image(qr_text, args.qr_image)
            except (QrImageError, OSError) as exc:
                raise fail(f"holders: the holder is saved, but its QR image was not written: {exc}") from None
            h = {**h, "qr_image": str(path)}
            text += f"\nQR image: {path} (mode 0600: the image is the credential)"
    emit(args, h, text)
    return 0


def _add(args) -> int:
    params = _params(args, update=False)
    qr_text = _qr(args, params)
    return _saved(args, call(args, "holders.add", **params), "added", qr_text)


def _update(args) -> int:
    params = _params(args, update=True)
    qr_text = _qr(args, params)
    return _saved(args, call(args, "holders.update", holder=args.holder, **params), "updated", qr_text)


def _show(args) -> int:
    h = call(args, "holders.show", holder=args.holder)
    lines = [_describe(h)]
    if h.get("notes"):
        lines.append(f"notes: {h['notes']}")
    emit(args, h, "\n".join(lines))
    return 0


def _remove(args) -> int:
    out = call(args, "holders.remove", holder=args.holder)
    r = out["removed"]
    emit(args, out, f"removed #{r['id']} {' '.join(filter(None, (r['first_name'], r['last_name'])))}")
    return 0


def _list(args) -> int:
    client = Client(socket_path(args))
    holders: list[dict] = []
    try:
        after = 0
        while True:
            want = 1000 if args.limit is None else min(1000, args.limit - len(holders))
            if want <= 0:
                break
            page = client.request("holders.list", {"after_id": after, "limit": want, **({"search": args.search} if args.search else {})})
            holders.extend(page["holders"])
            if not page["more"] or not page["holders"]:
                break
            after = page["holders"][-1]["id"]
    finally:
        client.close()
    emit(args, {"holders": holders}, _table(holders) if holders else "no holders")
    return 0


def _credentials(h: dict) -> str:
    creds = []
    card = h.get("card")
    if card:
        if card.get("card_number") is not None:
            fc = f"{card['facility_code']}/" if card.get("facility_code") is not None else ""
            creds.append(f"{card.get('format')} {fc}{card['card_number']}")
        elif card.get("hex"):
            creds.append(f"card {card['hex']}/{card['bit_length']}")
    if h.get("pin"):
        creds.append("PIN")
    if h.get("qr"):
        creds.append("QR")
    return " + ".join(creds) or "-"


def _table(holders: list[dict]) -> str:
    """One aligned row per holder: id, name, credentials, validity, uses left, state."""
    from .render import table, width

    def day(t):
        return str(t)[:10] if t else ""

    rows = []
    for h in holders:
        valid = f"{day(h.get('valid_from')) or '…'} – {day(h.get('valid_to')) or '…'}" if h.get("valid_from") or h.get("valid_to") else ""
        rows.append([str(h["id"]), " ".join(filter(None, (h["first_name"], h.get("last_name")))), _credentials(h), valid,
                     "" if h.get("uses") is None else str(h["uses"]), "suspended" if h.get("suspended") else ""])
    return table(["ID", "NAME", "CREDENTIALS", "VALID", "USES", "STATE"], rows, columns=width(), right={0, 4})


def _export(args) -> int:
    from ..store.csvio import safe_row
    from ..store.entrylist import CSV_COLUMNS

    out = open(args.file, "w", newline="", encoding="utf-8") if args.file else sys.stdout  # noqa: SIM115
    client = Client(socket_path(args))
    count = 0
    try:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        after = 0
        while True:
            page = client.request("holders.export", {"after_id": after, "limit": 5000})
            writer.writerows(safe_row(r) for r in page["rows"])  # no cell a spreadsheet runs as a formula
            count += len(page["rows"])
            if not page["more"] or not page["rows"]:
                break
            after = page["rows"][-1]["id"]
    finally:
        client.close()
        if args.file:
            out.close()
    if args.file:
        emit(args, {"exported": count, "file": args.file}, f"exported {count} holders to {args.file}")
    return 0


def chunks(f, budget: int = CHUNK_BYTES):
    """Yield (first line number, text) pieces of a CSV file, cut only between records.

    A cut is made only where the quotes seen so far are balanced (outside a quoted
    field), so a record with a line break in a quoted field stays in one piece.
    """
    lines: list[str] = []
    size = 0
    quotes = 0
    first = 1
    number = 0
    for line in f:
        number += 1
        lines.append(line)
        size += len(json.dumps(line)) - 2
        quotes += line.count('"')
        if size >= budget and quotes % 2 == 0:
            yield first, "".join(lines)
            lines, size, first = [], 0, number + 1
    if lines:
        yield first, "".join(lines)


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.last = -1

    def show(self, done: int, lines: int, note: str = "") -> None:
        if not self.enabled:
            return
        pct = min(100, done * 100 // self.total)
        if pct == self.last and not note:
            return
        self.last = pct
        bar = "#" * (pct * 30 // 100)
        sys.stderr.write(f"\rimporting [{bar:<30}] {pct:3d}%  {lines:,} lines {note}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _import(args) -> int:
    try:
        f = open(args.file, encoding="utf-8-sig", newline="")  # noqa: SIM115
        total = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise fail(f"holders import: cannot read {args.file}: {exc.strerror}") from None
    progress = _Progress(total, sys.stderr.isatty() and not getattr(args, "json", False))
    client = Client(socket_path(args), timeout=600)
    session = None
    done = False
    try:
        sent = 0
        last_line = 0
        for first, text in chunks(f):
            params = {"text": text, "first_line": first}
            if session is not None:
                params["session"] = session
            reply = client.request("holders.import", params)
            session = reply["session"]
            sent += len(text.encode())
            last_line = first + text.count("\n")
            progress.show(sent, last_line)
        if session is None:
            raise fail(f"holders import: {args.file} is empty (it needs at least the header row)")
        progress.show(total, last_line, "— committing")
        done = True  # a commit ends the session whatever its outcome
        result = client.request("holders.import", {"session": session, "commit": True})
    except UnicodeDecodeError as exc:
        raise fail(f"holders import: {args.file} is not UTF-8 text ({exc.reason} at a byte {exc.object[exc.start:exc.start + 1]!r}):"
                   " save it as \"CSV UTF-8\"") from None
    finally:
        progress.end()
        f.close()
        if session is not None and not done:  # (after a refused chunk the daemon dropped it already)
            try:
                client.request("holders.import", {"session": session, "abort": True})
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        client.close()
    emit(args, result, f"imported {result['added']} holders from {args.file}")
    return 0


def _check(args) -> int:
    params: dict = {"reader": args.reader, "present": True if args.present else None}
    if args.card is not None:
        if args.bit_length is None:
            raise fail("check-credential: --card needs --bit-length")
        params.update(card=args.card, bit_length=args.bit_length, pin=args.pin)
    elif args.qr is not None:
        params["qr"] = args.qr
    elif args.pin is not None:
        params["pin"] = args.pin
    else:
        raise fail("check-credential: give --card HEX --bit-length N, --pin DIGITS or --qr TEXT")
    if args.present and args.card is not None and args.pin is None and sys.stderr.isatty():
        dry = call(args, "check-credential", **{**params, "present": None})
        if dry.get("pin_required"):
            print("waiting for PIN at the keypad …", file=sys.stderr, flush=True)
    out = call(args, "check-credential", **params)
    holder = out.get("holder")
    who = " ".join(filter(None, (holder.get("first_name"), holder.get("last_name")))) if holder else "no holder"
    if out["decision"] == "granted":
        uses = f", {plural(out['remaining_uses'], 'use')} left" if out.get("remaining_uses") is not None else ""
        text = f"granted: {who}{uses}"
    else:
        text = f"denied: {out['reason']} ({who})"
        if out.get("pin_required"):
            text += " — this holder needs the PIN after the card (--pin)"
    if not args.present:
        text += "  [dry run: nothing changed]"
    emit(args, out, text)
    return 0 if out["decision"] == "granted" else 1


def _latest(args) -> int:
    out = call(args, "latest")
    lines = []
    for e in out["latest"]:
        if e["kind"] == "card":
            decoded = ""
            if e.get("card_number") is not None:
                fc = f" FC {e['facility_code']}" if e.get("facility_code") is not None else ""
                decoded = f"  {e['format']}{fc} CN {e['card_number']}"
            rev = f"  reversed {e['reversed_uid']}" if e.get("reversed_uid") else ""
            lines.append(f"{e['time']}  {e['reader']}  {e['bit_length']} bits  hex {e['hex']}{decoded}{rev}  bits {e['bits']}")
        else:
            lines.append(f"{e['time']}  {e['reader']}  QR {e.get('qr')!r}")
    emit(args, out, "\n".join(lines) or "no credential read since the daemon started")
    return 0
