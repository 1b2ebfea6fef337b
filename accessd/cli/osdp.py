"""``accessd-cli osdp genkey``: a random secure channel base key for ``reader.osdp.scbk``."""

from __future__ import annotations

from .common import emit


def _genkey(args) -> int:
    import secrets

    key = secrets.token_hex(16)  # 16 random bytes from the OS (os.urandom)
    emit(args, {"scbk": key}, key)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("osdp", help="OSDP helpers: genkey (a random secure channel key)")
    sub = p.add_subparsers(dest="osdp_command", required=True, metavar="ACTION")
    q = sub.add_parser("genkey", help="print 16 random bytes as 32 hex digits, for reader.osdp.scbk / upstream.osdp.scbk")
    q.set_defaults(func=_genkey)
