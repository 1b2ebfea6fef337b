"""``accessd-cli top``: a live view of the door (rich, imported only here) — not built yet."""

from __future__ import annotations

from .common import fail


def _top(args) -> int:
    raise fail("top: not implemented in this version yet (use `accessd-cli events --follow` and `status`)")


def register(subparsers) -> None:
    p = subparsers.add_parser("top", help="a live view of the door, relay, inputs, readers and events")
    p.set_defaults(func=_top)
