"""What documents publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral

if TYPE_CHECKING:
    from crm.documents.models import Document


@dataclass(frozen=True)
class DocumentAdded(Event):
    referral: Referral
    document: Document
    actor: Actor
