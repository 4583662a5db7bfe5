"""Commission listens to the pipeline: treatment accrues, a loss after it reverses.
(An admission moves the referral into `in_treatment`, so the stay's admission accrues
through the same StageEntered event.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.commission.operations import accrue, reverse
from crm.referrals.events import StageEntered
from crm.referrals.stages import Stage

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StageEntered, _stage_entered)


def _stage_entered(event: StageEntered) -> None:
    if event.to_stage == Stage.IN_TREATMENT:
        accrue(event.referral)
    elif event.to_stage == Stage.LOST:
        reverse(event.referral)
