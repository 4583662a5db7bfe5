"""The `data` of each webhook event: only what the receiving agency may see of its own
referral, never the patient's contact details nor any clinical text.

Every `data` starts with `referral`: the hospital's id and reference, the agency's own
reference, and `attribution` exactly as the API shows it on the referral
(crm.referrals.schemas.attribution_of). A referral whose patient another agency owns
(`already_in_care`) is told to its agency as the API tells it: its stage moves, with that
neutral word, and nothing of the care (no review, plan, document, travel or check-in
event): `allowed_for` says so.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from crm.referrals.models import Referral
from crm.referrals.schemas import attribution_of

ALREADY_IN_CARE = "already_in_care"
# What an agency whose referral is `already_in_care` hears: the same as the API shows it.
NEUTRAL_TYPES = frozenset({"referral.stage_changed", "referral.attribution_changed"})
# A check-in alert's level, as an urgency an agency can act on (no clinical detail).
URGENCY = {"red_flag": "urgent", "high_score": "high", "rising": "moderate"}
DOCUMENT_ASKED_FOR_AT_AWAITING_MRI = "mri_study"


def when(moment: datetime | date | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return moment.isoformat()


def referral_part(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.id,
        "reference": referral.reference,
        "agency_reference": referral.agency_reference,
        "attribution": attribution_of(referral),
    }


def allowed_for(referral: Referral, event_type: str) -> bool:
    """Whether the referral's agency hears of this event at all."""
    if referral.agency_id is None:
        return False
    if attribution_of(referral) == ALREADY_IN_CARE:
        return event_type in NEUTRAL_TYPES
    return True


def stage_changed(referral: Referral, from_stage: str, to_stage: str, reason: str | None):
    """The move as the referral's history shows an agency: stages, when, the reason code
    (for `lost`); never the staff's note."""
    return {
        "referral": referral_part(referral),
        "from_stage": from_stage,
        "to_stage": to_stage,
        "stage_entered_at": when(referral.stage_entered_at),
        "reason": reason,
    }


def review_decided(referral: Referral, decision: str, decided_at: datetime) -> dict[str, Any]:
    """The decision and when, as the API's review list shows an agency: no findings."""
    return {
        "referral": referral_part(referral),
        "decision": decision,
        "decided_at": when(decided_at),
    }


def plan_part(plan: Any) -> dict[str, Any]:
    return {
        "id": plan.id,
        "version": plan.version,
        "total_minor": plan.total_minor,
        "deposit_minor": plan.deposit_minor,
        "currency": plan.currency,
        "valid_until": when(plan.valid_until),
    }


def plan_offered(referral: Referral, plan: Any, previous_version: int | None) -> dict[str, Any]:
    return {
        "referral": referral_part(referral),
        "plan": plan_part(plan),
        "previous_version": previous_version,
    }


def plan_accepted(referral: Referral, plan: Any) -> dict[str, Any]:
    return {
        "referral": referral_part(referral),
        "plan": plan_part(plan),
        "accepted_at": when(plan.accepted_at),
    }


def document_requested(referral: Referral) -> dict[str, Any]:
    return {
        "referral": referral_part(referral),
        "document": DOCUMENT_ASKED_FOR_AT_AWAITING_MRI,
        "requested_at": when(referral.stage_entered_at),
    }


def travel_booked(referral: Referral, trip: Any, created: bool) -> dict[str, Any]:
    """The trip's dates (UTC): when the patient arrives and leaves; no flights, hotel or
    companion."""
    return {
        "referral": referral_part(referral),
        "created": created,
        "arrival_at": when(trip.arrival_at),
        "departure_at": when(trip.departure_at),
    }


def checkin_alert(referral: Referral, level: str, raised_at: datetime) -> dict[str, Any]:
    """That an alert exists and how urgent: no answers, scores or summary."""
    return {
        "referral": referral_part(referral),
        "urgency": URGENCY.get(level, "high"),
        "raised_at": when(raised_at),
    }


def attribution_changed(referral: Referral, changed_at: datetime) -> dict[str, Any]:
    """Only the new word the API now shows the agency (`referral.attribution`), never who
    the other agency is."""
    return {"referral": referral_part(referral), "changed_at": when(changed_at)}
