"""What the duplicate check publishes: a referral's owning agency changed after a link."""

from __future__ import annotations

from dataclasses import dataclass

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral


@dataclass(frozen=True)
class ReferralReattributed(Event):
    """`referral.attributed_agency_id` moved from `previous_agency_id` to `agency_id`;
    `key` names the decision that moved it (`match:<id>`), unique per change."""

    referral: Referral
    previous_agency_id: int | None
    agency_id: int | None
    key: str
    actor: Actor
