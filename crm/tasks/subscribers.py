"""Tasks open themselves: for what needs a person, and for every follow-up alert. An open
urgent alert task holds a referral back from completion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.conversation.events import PatientAnswered, PatientWrote
from crm.duplicates.events import DuplicateDecided
from crm.followup.events import AlertRaised
from crm.referrals.events import AttentionNeeded
from crm.referrals.stages import NO_OPEN_URGENT_ALERT
from crm.tasks.operations import close_keyed_task, close_open_tasks, open_task
from crm.tasks.queries import open_task_of, urgent_alerts_closed

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


PAGE_MESSAGE_TITLE = "The patient wrote on the private page"


def _patient_wrote(event: PatientWrote) -> None:
    """One open task per conversation at a time: a second message while the first task is
    open says so on that task rather than opening another."""
    referral = event.referral
    existing = open_task_of(referral.id, "reply", PAGE_MESSAGE_TITLE)
    if existing is not None:
        existing.detail = "The patient wrote again: read and answer in the conversation."
        return
    open_task(
        referral,
        PAGE_MESSAGE_TITLE,
        "reply",
        detail="Read and answer in the conversation on the referral's page.",
        dedupe_key=f"conversation:{event.message_id}",
    )


def _patient_answered(event: PatientAnswered) -> None:
    """An answer deals with every reply waiting for one (page, SMS, WhatsApp)."""
    close_open_tasks(event.referral.id, "reply", event.actor)


def _duplicate_decided(event: DuplicateDecided) -> None:
    """A likely duplicate decided (console or API): the task that asked for it is done."""
    close_keyed_task(event.dedupe_key, event.actor)


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(AttentionNeeded, _attention_needed)
    wiring.events.subscribe(AlertRaised, _alert_raised)
    wiring.events.subscribe(PatientWrote, _patient_wrote)
    wiring.events.subscribe(PatientAnswered, _patient_answered)
    wiring.events.subscribe(DuplicateDecided, _duplicate_decided)
    wiring.guards.switch_on(NO_OPEN_URGENT_ALERT, urgent_alerts_closed)
