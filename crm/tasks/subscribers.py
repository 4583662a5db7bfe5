"""Tasks open themselves: for what needs a person, and for every follow-up alert. An open
urgent alert task holds a referral back from completion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.followup.events import AlertRaised
from crm.referrals.events import AttentionNeeded
from crm.referrals.stages import NO_OPEN_URGENT_ALERT
from crm.tasks.operations import open_task
from crm.tasks.queries import urgent_alerts_closed

if TYPE_CHECKING:
    from crm.features import Wiring


def _attention_needed(event: AttentionNeeded) -> None:
    open_task(
        event.referral,
        event.title,
        event.source,
        detail=event.detail,
        priority=event.priority,
        due_at=event.due_at,
        dedupe_key=event.dedupe_key,
    )


def _alert_raised(event: AlertRaised) -> None:
    open_task(
        event.referral,
        f"URGENT follow-up alert ({event.level.replace('_', ' ')}): call the patient",
        "alert",
        detail=event.summary,
        priority="urgent",
        due_at=event.raised_at,
        dedupe_key=f"check-in-alert:{event.check_in.id}",
    )


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(AttentionNeeded, _attention_needed)
    wiring.events.subscribe(AlertRaised, _alert_raised)
    wiring.guards.switch_on(NO_OPEN_URGENT_ALERT, urgent_alerts_closed)
