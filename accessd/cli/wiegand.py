"""``accessd-cli wiegand decode|encode|formats`` and ``keypress encode|decode``.

These work without a daemon: they run the same format library the reader uses.
``--config FILE`` adds the custom formats of that config's ``[[formats]]``.
Exit codes: 0 ok, 1 nothing decodes (or a key frame is not a key), 2 bad input.
"""

from __future__ import annotations

from accessd.protocols.wiegand.errors import WiegandError

from .common import emit, fail

# accessd.protocols.wiegand.keypress.NAMES, without importing it (and construct) to build
# the parsers; tests/cli/test_wiegand_cli.py checks the two are the same.
KEYPRESS_NAMES = ("FourBit", "EightBitZeroPadded", "EightBitInvertPadded", "Wiegand26", "Wiegand34", "Wiegand37",
                  "Wiegand37FacilityCode")


def _library(args):
    from accessd.protocols.wiegand.formats import LIBRARY

    path = getattr(args, "config", None)
    if not path:
        return LIBRARY
    from ..config import load_config
    from ..errors import ConfigError

    try:
        return load_config(path).format_library()
    except ConfigError as exc:
        raise fail(f"--config: {exc}") from None


def _fields(m: dict) -> str:
    parts = []
    if m.get("facility_code") is not None:
        parts.append(f"facility code {m['facility_code']}")
    if m.get("card_number") is not None:
        parts.append(f"card number {m['card_number']}")
    for key in ("issue_level", "oem"):
        if m.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {m[key]}")
    parity = {True: "parity ok", False: "PARITY FAILS", None: "no parity bits"}[m.get("parity_ok")]
    return ", ".join([*parts, parity])


def _decode(args) -> int:
    from accessd.protocols.wiegand.formats import hex_to_bits

    lib = _library(args)
    try:
        if args.bits is not None:
            if args.hex is not None:
                raise fail("wiegand decode: give BITS or --hex with --bit-length, not both")
            bits = args.bits
        elif args.hex is not None and args.bit_length is not None:
            bits = hex_to_bits(args.hex, args.bit_length)
        else:
            raise fail("wiegand decode: give BITS, or --hex HEX with --bit-length N")
        preference = [p for p in args.preference.split(",") if p] if args.preference is not None else None
        kwargs = {"preference": preference} if preference is not None else {}
        d = lib.decode(bits, format=args.format or "auto", **kwargs)
    except WiegandError as exc:
        raise fail(f"wiegand decode: {exc}") from None
    out = d.to_json()
    lines = [f"{out['bit_length']} bits {out['bits']} (hex {out['hex']})"]
    if d.chosen is not None:
        label = "D0/D1 SWAPPED, complement decodes as" if d.swapped else "format"
        lines.append(f"{label} {d.chosen.format}: {_fields(d.chosen.to_json())}")
    if d.reason:
        lines.append(f"not decoded: {d.reason}" if d.chosen is None else f"note: {d.reason}")
    others = [m for m in out["matches"] if d.chosen is None or m["format"] != d.chosen.format]
    for m in others:
        lines.append(f"  also {m['format']}: {_fields(m)}")
    emit(args, out, "\n".join(lines))
    return 0 if d.ok else 1


def _encode(args) -> int:
    from accessd.protocols.wiegand.formats import bits_to_hex

    lib = _library(args)
    try:
        bits = lib.encode(args.format, facility_code=args.fc, card_number=args.cn, issue_level=args.issue_level,
                          oem=args.oem)
        name = lib.canonical(args.format)
    except WiegandError as exc:
        raise fail(f"wiegand encode: {exc}") from None
    out = {"format": name, "bit_length": len(bits), "bits": bits, "hex": bits_to_hex(bits)}
    emit(args, out, f"{name} {len(bits)} bits {bits} (hex {out['hex']})")
    return 0


def _formats(args) -> int:
    lib = _library(args)
    described = [f.describe() for f in lib.formats]
    lines = [f"{'name':<10} {'bits':>4}  {'aliases':<22} fields / description"]
    for f in described:
        fields = ", ".join(f"{k} {v['start']}+{v['length']}" for k, v in f["fields"].items())
        lines.append(f"{f['name']:<10} {f['bit_length']:>4}  {', '.join(f['aliases']):<22} {fields} — {f['description']}")
    lines.append(f"{'Raw':<10} {'any':>4}  {'':<22} the bits as one number (only when chosen)")
    emit(args, {"formats": described + [{"name": "Raw", "bit_length": None, "aliases": [], "fields": {},
                                          "parity": [], "description": "the bits as one number"}]},
         "\n".join(lines))
    return 0


def _key_map(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = int(value.strip(), 16)
        except ValueError:
            raise fail(f"--key-map: expected KEY=HEX pairs such as '*=A,#=B', got {item!r}") from None
    return out


def _keypress_format(args, command: str):
    from accessd.protocols.wiegand.keypress import KeypressFormat

    try:
        return KeypressFormat(name=args.format, key_map=_key_map(args.key_map), facility_code=args.fc or 0)
    except ValueError as exc:
        raise fail(f"keypress {command}: {exc}") from None


def _kp_encode(args) -> int:
    kp = _keypress_format(args, "encode")
    try:
        frames = kp.encode(args.digits)
    except WiegandError as exc:
        raise fail(f"keypress encode: {exc}") from None
    out = {"format": kp.name, "frames": [f.to_json() for f in frames]}
    emit(args, out, "\n".join(f"{f.bit_length:>2} bits {f.bits} (hex {f.hex})" for f in frames))
    return 0


def _kp_decode(args) -> int:
    kp = _keypress_format(args, "decode")
    frames = []
    errors = []
    width = (kp.bit_length + 3) // 4
    values = []
    for h in args.hexbytes:
        text = h.removeprefix("0x").removeprefix("0X")
        if len(text) > width and len(text) % width == 0:  # "E1D2C3B4": one value per frame
            values += [text[i:i + width] for i in range(0, len(text), width)]
        else:
            values.append(h)
    for h in values:
        try:
            frames.append(kp.frame_from_hex(h))
        except WiegandError as exc:
            errors.append(f"{h}: {exc}")
    keys, frame_errors = kp.decode(frames)
    out = {"format": kp.name, "keys": keys, "errors": errors + frame_errors}
    emit(args, out, f"keys {keys or '(none)'}")
    if out["errors"] and not getattr(args, "json", False):
        import sys

        for e in out["errors"]:
            print(f"accessd-cli: keypress decode: {e}", file=sys.stderr)
    return 1 if out["errors"] else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("wiegand", help="decode, encode and list Wiegand card formats (no daemon needed)")
    sub = p.add_subparsers(dest="wiegand_command", required=True, metavar="ACTION")

    q = sub.add_parser("decode", help="every format that fits the bits, and the one chosen")
    q.add_argument("bits", nargs="?", help="the bits in wire order, e.g. 00101101000000001010001000")
    q.add_argument("--hex", help="the value as right-justified hex (with --bit-length)")
    q.add_argument("--bit-length", type=int, metavar="N", help="the number of bits (with --hex)")
    q.add_argument("--format", metavar="NAME", help="decode as this format only (default: auto)")
    q.add_argument("--preference", metavar="A,B,…", help="the auto order (default H10301,H10306,C1k35s,…)")
    q.set_defaults(func=_decode)

    q = sub.add_parser("encode", help="the bits of a card")
    q.add_argument("--format", required=True, metavar="NAME")
    q.add_argument("--fc", type=int, metavar="N", help="facility code")
    q.add_argument("--cn", type=int, required=True, metavar="N", help="card number")
    q.add_argument("--issue-level", type=int, metavar="N")
    q.add_argument("--oem", type=int, metavar="N")
    q.set_defaults(func=_encode)

    q = sub.add_parser("formats", help="the format library (layouts, aliases)")
    q.set_defaults(func=_formats)
    for q in sub.choices.values():
        q.add_argument("--config", metavar="FILE", help="add the custom [[formats]] of this config")

    p = subparsers.add_parser("keypress", help="encode and decode keypad key frames (no daemon needed)")
    sub = p.add_subparsers(dest="keypress_command", required=True, metavar="ACTION")
    q = sub.add_parser("encode", help="the frames a keypad sends for DIGITS")
    q.add_argument("digits", metavar="DIGITS", help="keys 0-9, * and #")
    q.set_defaults(func=_kp_encode)
    q = sub.add_parser("decode", help="the keys in frames given as hex")
    q.add_argument("hexbytes", nargs="+", metavar="HEXBYTES", help="one hex value per frame, e.g. E1 D2 C3 B4")
    q.set_defaults(func=_kp_decode)
    for q in sub.choices.values():
        q.add_argument("--format", required=True, choices=KEYPRESS_NAMES, metavar="NAME",
                       help=f"one of {', '.join(KEYPRESS_NAMES)}")
        q.add_argument("--fc", type=int, metavar="N", help="facility code of buffered PIN frames (Wiegand26 …)")
        q.add_argument("--key-map", metavar="K=HEX,…", help="key values other than * = A, # = B")
