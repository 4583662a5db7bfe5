"""What the conversation publishes; tasks subscribes (a patient's message needs a person)."""

from __future__ import annotations

from dataclasses import dataclass

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral


@dataclass(frozen=True)
class PatientWrote(Event):
    """The patient wrote to the coordinators on the private page."""

    referral: Referral
    message_id: int


@dataclass(frozen=True)
class PatientAnswered(Event):
    """A staff member answered the patient: the replies waiting for one are dealt with."""

    referral: Referral
    actor: Actor
    message_id: int
