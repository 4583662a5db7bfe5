"""Domain events: how one feature reacts to another's change without importing it.

An operation publishes a typed event (a frozen dataclass defined in its package's
`events.py`) after it has changed its rows; every handler subscribed to that event type
(or to a base class of it) runs at once, in the same transaction, in the order the
features were wired. A handler that raises aborts the operation like any other error, so
the change and its consequences commit together or not at all.

The bus belongs to the app (`app.extensions["crm.events"]`), filled in one place
(`crm.features.wire`): nothing subscribes at import time and no registry is global.
Subscribers with outside effects (messages, webhooks) write outbox rows, never send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app

EXTENSION = "crm.events"

E = TypeVar("E", bound="Event")
Handler = Callable[[Any], None]


@dataclass(frozen=True)
class Event:
    """Base of every domain event."""


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        handlers = self._handlers.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)

    def handlers_for(self, event_type: type[Event]) -> list[Handler]:
        found: list[Handler] = []
        for klass in event_type.__mro__:
            found.extend(self._handlers.get(klass, ()))  # type: ignore[arg-type]
        return found

    def publish(self, event: Event) -> None:
        for handler in self.handlers_for(type(event)):
            handler(event)


def bus() -> EventBus:
    return current_app.extensions[EXTENSION]


def publish(event: Event) -> None:
    bus().publish(event)
