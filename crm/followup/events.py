"""What follow-up publishes: a check-in answered, an alert raised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral

if TYPE_CHECKING:
    from crm.followup.models import CheckIn


@dataclass(frozen=True)
class CheckInAnswered(Event):
    referral: Referral
    check_in: CheckIn
    actor: Actor
    alert: str  # none | rising | high_score | red_flag


@dataclass(frozen=True)
class AlertRaised(Event):
    """A check-in's answers need a coordinator now. `summary` is clinical: staff only."""

    referral: Referral
    check_in: CheckIn
    level: str
    summary: str
    raised_at: datetime
