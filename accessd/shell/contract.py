"""The typed contract between the daemon's parts (``typing.Protocol``s).

The daemon builds every part in one place (:meth:`accessd.shell.daemon.Daemon._build`)
and hands each what it needs by constructor: the door first (it locks the relay), then
the access component with the door and the reader registry, then each reader with the
access component as its :class:`CredentialSink`.  No part sets attributes on another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from accessd.protocols.pipeline import Outcome, ReaderPipeline


@runtime_checkable
class Component(Protocol):
    """Anything the daemon starts and stops (start in build order, stop the door first)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@runtime_checkable
class Reader(Protocol):
    """One reader as the access component and ``status`` see it."""

    id: str
    pipeline: ReaderPipeline

    def status(self) -> dict: ...
    def feedback(self, granted: bool) -> None: ...


@runtime_checkable
class ReaderComponent(Component, Protocol):
    """A reader protocol's component: one or more :class:`Reader`\\ s (an OSDP bus has several)."""

    readers: list[Reader]


@runtime_checkable
class DoorControl(Protocol):
    """The door as the access component and the commands drive it."""

    def grant(self, *, seconds: float | None, holder: dict | None, reader: str) -> None: ...
    def unlock(self, seconds: float | None = None, *, uid: int | None = None) -> dict: ...
    def lock(self, *, uid: int | None = None) -> dict: ...


class CredentialSink(Protocol):
    """Where a reader hands what its pipeline produced (the access component)."""

    def submit(self, outcome: Outcome, reader: str) -> Any: ...


class Shell(Protocol):
    """What the daemon offers every part."""

    config: Any
    loop: asyncio.AbstractEventLoop | None
    state_dir: Path
    pin_factory: Any
    mock: bool
    formats: Any
    tz: Any
    scheduler: Any
    clock: Callable[[], float]
    wall: Callable[[], float]  # Unix time (schedules, validity); injectable like clock

    def publish(self, type: str, **fields: Any) -> dict: ...  # noqa: A002
    def publish_threadsafe(self, type: str, **fields: Any) -> None: ...  # noqa: A002
    def relay_first(self) -> contextlib.AbstractContextManager: ...
    def register_command(self, name: str, handler: Callable, *, privileged: bool = False,
                         audited: Callable | None = None) -> None: ...
    def register_status(self, name: str, fn: Callable[[], object]) -> None: ...
