"""The events the pipeline publishes. It knows no listener: features subscribe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral


@dataclass(frozen=True)
class ReferralSubmitted(Event):
    referral: Referral
    actor: Actor


@dataclass(frozen=True)
class StageEntered(Event):
    """A referral moved (its new stage is `referral.stage`, entered at
    `referral.stage_entered_at`). `resumed` is a return from hold to where it left."""

    referral: Referral
    from_stage: str
    to_stage: str
    actor: Actor
    reason: str | None = None
    note: str | None = None

    @property
    def resumed(self) -> bool:
        return self.from_stage == "on_hold"


@dataclass(frozen=True)
class MilestoneDated(Event):
    """A dated moment of a referral was set or moved (a flight's departure, a follow-up
    check-in). `series` adds one more date of the same name instead of moving the one
    pending; `context` is what messages about that date may say (JSON-safe values, or
    a `timedelta`)."""

    referral: Referral
    name: str
    when: datetime
    series: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MilestoneSettled(Event):
    """What a dated moment was waiting for happened (a check-in answered): reminders of
    it are moot."""

    referral: Referral
    name: str
    when: datetime


@dataclass(frozen=True)
class AttentionNeeded(Event):
    """Something needs a person: the tasks feature opens one (once per `dedupe_key`)."""

    referral: Referral | None
    title: str
    source: str
    detail: str = ""
    priority: str = "normal"
    due_at: datetime | None = None
    dedupe_key: str | None = None
