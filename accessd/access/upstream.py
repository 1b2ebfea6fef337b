""""Use connected door controller": delegate unknown credentials upstream.

When ``access.upstream`` is enabled and a credential is **not** in the local entry
list, ``accessd.access.component`` asks an ``Upstream`` for the decision.  A credential found
locally (even one denied locally: expired, suspended…) is never sent upstream.

The wire outputs to a real upstream controller (Wiegand out, OSDP as a PD) come
later; they will implement ``Upstream``.  ``FakeUpstream`` answers from a fixed
table and records what it was asked; the tests (and the demo, with
``access.upstream = "fake"``) use it.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass

from accessd.protocols.credential import Credential


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamAnswer:
    granted: bool
    holder: dict | None = None  # {id, first_name, last_name} as the upstream knows it, if it says

    def __post_init__(self) -> None:
        if self.holder is not None and "first_name" not in self.holder:
            raise ValueError(f"an upstream holder needs a first_name, got {self.holder!r}")


class Upstream(ABC):
    """A connected door controller that decides for credentials the local list lacks."""

    name = "upstream"

    @abstractmethod
    async def decide(self, credential: Credential, reader: str) -> UpstreamAnswer:
        """The upstream's answer; raise (or time out) when it cannot answer."""


def credential_key(credential: Credential) -> str:
    """``card:<bit_length>:<HEX>``, ``pin:<digits>`` or ``qr:<text>``."""
    if credential.kind == "card":
        return f"card:{credential.bit_length}:{credential.hex}"
    if credential.kind == "pin":
        return f"pin:{credential.pin}"
    return f"qr:{credential.qr}"


class FakeUpstream(Upstream):
    """Grants the credentials in ``grants`` (keys as ``credential_key``), denies the rest.

    ``delay`` seconds before answering; ``fail`` makes every call raise, like an
    unreachable controller.  ``calls`` records (credential, reader) for each question.
    """

    name = "fake"

    def __init__(self, grants: dict[str, dict | None] | None = None, *, delay: float = 0.0, fail: bool = False):
        self.grants = dict(grants or {})
        self.delay = delay
        self.fail = fail
        self.calls: list[tuple[Credential, str]] = []

    async def decide(self, credential: Credential, reader: str) -> UpstreamAnswer:
        self.calls.append((credential, reader))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("fake upstream: not reachable")
        key = credential_key(credential)
        if key in self.grants:
            return UpstreamAnswer(granted=True, holder=self.grants[key])
        return UpstreamAnswer(granted=False)


def build(kind: str, grants: list[str] | tuple[str, ...] = ()) -> Upstream | None:
    """The upstream configured by ``access.upstream`` ("none" or "fake")."""
    if kind == "none":
        return None
    if kind == "fake":
        return FakeUpstream({g: None for g in grants})
    raise ValueError(f"access.upstream: expected one of none, fake, got {kind!r}")
