"""Every new referral is checked for a patient already known, and attributed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.duplicates.operations import check_new_referral
from crm.referrals.events import ReferralSubmitted

if TYPE_CHECKING:
    from crm.features import Wiring


def _referral_submitted(event: ReferralSubmitted) -> None:
    check_new_referral(event.referral, event.actor)


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(ReferralSubmitted, _referral_submitted)
