"""What plans publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral

if TYPE_CHECKING:
    from crm.plans.models import TreatmentPlan


@dataclass(frozen=True)
class PlanOffered(Event):
    """A new version; `previous_version` is the one before it, if there was one."""

    referral: Referral
    plan: TreatmentPlan
    actor: Actor
    previous_version: int | None = None


@dataclass(frozen=True)
class PlanAccepted(Event):
    referral: Referral
    plan: TreatmentPlan
    actor: Actor
