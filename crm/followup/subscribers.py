"""What follow-up reacts to: discharge (check-ins count from it) and the post-op stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.followup.operations import ensure_check_ins, schedule_check_ins
from crm.referrals.events import StageEntered
from crm.referrals.stages import Stage
from crm.travel.events import StayRecorded

if TYPE_CHECKING:
    from crm.features import Wiring


def _discharged(event: StayRecorded) -> None:
    if event.step == "discharge":
        schedule_check_ins(event.referral, event.at)


def _entered_post_op(event: StageEntered) -> None:
    """A referral that reached post-op without a recorded discharge (a coordinator's
    manual move) still gets its check-ins, counted from now."""
    if event.to_stage == Stage.POST_OP:
        ensure_check_ins(event.referral)


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StayRecorded, _discharged)
    wiring.events.subscribe(StageEntered, _entered_post_op)
