"""What the nudges react to: a referral's stage and its dated milestones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.core.db import utcnow
from crm.nudges import operations
from crm.referrals.events import (
    MilestoneDated,
    MilestoneSettled,
    ReferralSubmitted,
    StageEntered,
)

if TYPE_CHECKING:
    from crm.features import Wiring


def _submitted(event: ReferralSubmitted) -> None:
    operations.on_stage_entered(event.referral, new=True)


def _stage_entered(event: StageEntered) -> None:
    operations.on_stage_entered(event.referral, resumed=event.resumed)


def _dated(event: MilestoneDated) -> None:
    operations.schedule_for_date(
        event.referral,
        event.name,
        event.when,
        replace=not event.series,
        context=event.context,
    )


def _settled(event: MilestoneSettled) -> None:
    operations.settle_date(event.referral, event.name, event.when, utcnow())


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(ReferralSubmitted, _submitted)
    wiring.events.subscribe(StageEntered, _stage_entered)
    wiring.events.subscribe(MilestoneDated, _dated)
    wiring.events.subscribe(MilestoneSettled, _settled)
