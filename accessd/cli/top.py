"""``accessd-cli top``: a live view of the door (rich is imported only here)."""

from __future__ import annotations


def _top(args) -> int:
    raise NotImplementedError


def register(subparsers) -> None:
    p = subparsers.add_parser("top", help="a live view of the door, relay, inputs, readers and events")
    p.set_defaults(func=_top)
