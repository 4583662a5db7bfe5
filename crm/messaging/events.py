"""What messaging publishes: outbox rows written or whose status changed.

One event per transaction step, carrying every change of that step (a batch of the
dispatcher is one event), so a listener can fold them into one write. A change names the
row's status before (None: the row is new) and after, with what a report needs to place
the row (the day it was written, channel, agency, referral, SMS segments).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.core.events import Event, publish


@dataclass(frozen=True)
class StatusChange:
    outbox_id: int
    created_at: datetime
    channel: str
    agency_id: int | None
    referral_id: int | None
    segments: int | None
    before: str | None  # None: written now
    before_reason: str | None
    after: str
    after_reason: str | None


@dataclass(frozen=True)
class MessageStatusChanged(Event):
    changes: tuple[StatusChange, ...]


def change(row: Any, before: str | None, before_reason: str | None, after: str, reason=None):
    """A StatusChange of an outbox row (an OutboxMessage, a claimed batch row or a RETURNING
    row: anything with id, created_at, channel, agency_id, referral_id and segments)."""
    return StatusChange(
        row.id,
        row.created_at,
        row.channel,
        row.agency_id,
        row.referral_id,
        row.segments,
        before,
        before_reason,
        after,
        reason,
    )


def announce(changes: list[StatusChange]) -> None:
    """Publish the step's changes (nothing when there are none)."""
    if changes:
        publish(MessageStatusChanged(tuple(changes)))
