"""What reviews publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event
from crm.referrals.models import Referral

if TYPE_CHECKING:
    from crm.reviews.models import Review


@dataclass(frozen=True)
class ReviewDecided(Event):
    """`review.decision` is candidate, not_a_candidate or need_more_information."""

    referral: Referral
    review: Review
    actor: Actor
