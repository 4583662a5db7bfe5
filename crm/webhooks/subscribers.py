"""Webhooks hear the domain events and write, in the same transaction, an event and its
deliveries for the referral's agency (crm.webhooks.operations.emit): the outbox.

| domain event | webhook event |
| --- | --- |
| referrals `StageEntered` | `referral.stage_changed` |
| referrals `StageEntered` into `awaiting_mri` | `document.requested` (the MRI study) |
| duplicates `ReferralReattributed` | `referral.attribution_changed` (the new word only) |
| reviews `ReviewDecided` | `review.decided` |
| plans `PlanOffered`, `PlanAccepted` | `plan.offered`, `plan.accepted` |
| travel `TripBooked` | `travel.booked` |
| follow-up `AlertRaised` | `checkin.alert` (urgency only) |

"Document requested" is the move into `awaiting_mri`: the pipeline's own "the hospital
waits for the MRI", whether a coordinator moved it there or the specialist asked for more
(crm.reviews moves it back). The console's "ask the patient for the MRI" button writes
messages to the patient only and publishes no domain event of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm.core.db import utcnow
from crm.duplicates.events import ReferralReattributed
from crm.followup.events import AlertRaised
from crm.plans.events import PlanAccepted, PlanOffered
from crm.referrals.events import StageEntered
from crm.referrals.models import Referral
from crm.referrals.stages import Stage
from crm.reviews.events import ReviewDecided
from crm.travel.events import TripBooked
from crm.webhooks import payloads
from crm.webhooks.operations import emit

if TYPE_CHECKING:
    from crm.features import Wiring


def _tell(referral: Referral, event_type: str, data: dict[str, Any]) -> None:
    if payloads.allowed_for(referral, event_type):
        emit(referral.agency_id, referral.id, event_type, data)  # type: ignore[arg-type]


def _stage_entered(event: StageEntered) -> None:
    referral = event.referral
    data = payloads.stage_changed(referral, event.from_stage, event.to_stage, event.reason)
    _tell(referral, "referral.stage_changed", data)
    if event.to_stage == Stage.AWAITING_MRI:
        _tell(referral, "document.requested", payloads.document_requested(referral))


def _review_decided(event: ReviewDecided) -> None:
    data = payloads.review_decided(event.referral, event.review.decision, event.review.created_at)
    _tell(event.referral, "review.decided", data)


def _plan_offered(event: PlanOffered) -> None:
    data = payloads.plan_offered(event.referral, event.plan, event.previous_version)
    _tell(event.referral, "plan.offered", data)


def _plan_accepted(event: PlanAccepted) -> None:
    _tell(event.referral, "plan.accepted", payloads.plan_accepted(event.referral, event.plan))


def _trip_booked(event: TripBooked) -> None:
    data = payloads.travel_booked(event.referral, event.trip, event.created)
    _tell(event.referral, "travel.booked", data)


def _alert_raised(event: AlertRaised) -> None:
    data = payloads.checkin_alert(event.referral, event.level, event.raised_at)
    _tell(event.referral, "checkin.alert", data)


def _reattributed(event: ReferralReattributed) -> None:
    data = payloads.attribution_changed(event.referral, utcnow())
    _tell(event.referral, "referral.attribution_changed", data)


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StageEntered, _stage_entered)
    wiring.events.subscribe(ReviewDecided, _review_decided)
    wiring.events.subscribe(PlanOffered, _plan_offered)
    wiring.events.subscribe(PlanAccepted, _plan_accepted)
    wiring.events.subscribe(TripBooked, _trip_booked)
    wiring.events.subscribe(AlertRaised, _alert_raised)
    wiring.events.subscribe(ReferralReattributed, _reattributed)
