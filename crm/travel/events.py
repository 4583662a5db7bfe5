"""Travel's events: a trip booked or changed, and each recorded step of the stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral

if TYPE_CHECKING:
    from crm.travel.models import Trip


@dataclass(frozen=True)
class TripBooked(Event):
    referral: Referral
    trip: Trip
    actor: Actor
    created: bool  # False: an existing booking changed


@dataclass(frozen=True)
class StayRecorded(Event):
    """`step` is admission, discharge or departure, recorded as happening `at` (UTC)."""

    referral: Referral
    step: str
    at: datetime
    actor: Actor
