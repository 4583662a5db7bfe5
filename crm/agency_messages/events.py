"""What the agency thread publishes: tasks (through `AttentionNeeded`) and, later, the
agencies' webhooks may react."""

from __future__ import annotations

from dataclasses import dataclass

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral

# The coordinator task an agency's message opens (and a coordinator's answer closes).
TASK_TITLE = "The agency wrote about this referral"


@dataclass(frozen=True)
class AgencyMessagePosted(Event):
    """A message was written in a referral's agency thread (`direction` says which way)."""

    referral: Referral
    message_id: int
    direction: str
    actor: Actor
