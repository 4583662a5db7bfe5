"""What patients publish: contact details and consent changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event

if TYPE_CHECKING:
    from crm.patients.models import Patient


@dataclass(frozen=True)
class ContactChanged(Event):
    patient: Patient
    referral_id: int
    fields: tuple[str, ...]
    actor: Actor


@dataclass(frozen=True)
class ConsentChanged(Event):
    """Consent for `channel` given or withdrawn (a form, a STOP reply, a bounce)."""

    patient: Patient
    channel: str
    granted: bool
    source: str
