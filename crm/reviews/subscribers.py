"""Reviews own the fact the guard on offering a plan reads: the specialist's decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.referrals.stages import SPECIALIST_SAYS_CANDIDATE
from crm.reviews.queries import is_candidate

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    wiring.guards.switch_on(SPECIALIST_SAYS_CANDIDATE, is_candidate)
