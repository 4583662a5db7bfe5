"""Commission listens to the pipeline and to attribution: treatment accrues, a loss after
it reverses (a cancellation), a change of the owning agency moves the commission.
(An admission moves the referral into `in_treatment`, so the stay's admission accrues
through the same StageEntered event.) Refunds are recorded through the API (refunds.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.commission.ledger import accrue, cancel, reattribute
from crm.duplicates.events import ReferralReattributed
from crm.referrals.events import StageEntered
from crm.referrals.stages import Stage

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StageEntered, _stage_entered)
    wiring.events.subscribe(ReferralReattributed, _reattributed)


def _stage_entered(event: StageEntered) -> None:
    if event.to_stage == Stage.IN_TREATMENT:
        accrue(event.referral)
    elif event.to_stage == Stage.LOST:
        cancel(event.referral)


def _reattributed(event: ReferralReattributed) -> None:
    reattribute(event.referral, event.agency_id, event.key)
