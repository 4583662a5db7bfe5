"""A specialist's decision and what it sets in motion."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from crm.catalogue.check_in import review_fields_schema
from crm.catalogue.queries import procedure_by_code
from crm.core import audit
from crm.core.actors import Actor
from crm.core.errors import Conflict, NotFound, ValidationFailed, flatten_marshmallow
from crm.core.events import publish
from crm.extensions import db
from crm.messaging.composing.outbox import enqueue
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import Stage
from crm.reviews.events import ReviewDecided
from crm.reviews.models import Review
from crm.reviews.schemas import ReviewArgs

OUTCOME_WORDS = {
    "candidate": "the patient is a candidate; a treatment plan will follow",
    "not_a_candidate": "the patient is not a candidate for this procedure",
    "need_more_information": "the specialist needs more information from the patient",
}


def record_review(referral: Referral, data: dict[str, Any], actor: Actor) -> Review:
    """`data` as `ReviewArgs` loads it: the review's own fields, and the procedure's
    findings (catalogue `review_fields`) beside them, checked here against the referral's
    procedure."""
    if referral.stage != Stage.MRI_REVIEW:
        raise Conflict(
            f"a review is recorded while the referral is in mri_review, not {referral.stage}"
        )
    own = set(ReviewArgs().fields)
    findings = procedure_fields(referral, {k: v for k, v in data.items() if k not in own})
    data = {k: v for k, v in data.items() if k in own}
    if data.get("recommended_procedure"):
        try:
            procedure_by_code(data["recommended_procedure"])
        except NotFound as exc:
            raise ValidationFailed({"recommended_procedure": "not in the catalogue"}) from exc
    review = Review(
        referral_id=referral.id,
        specialist_id=actor.id,
        specialist_label=actor.label,
        procedure_fields=findings,
        **data,
    )
    db.session.add(review)
    db.session.flush()
    audit.record(actor, "review.record", referral.id, decision=review.decision)
    _act_on(review, referral, actor)
    publish(ReviewDecided(referral, review, actor))
    return review


def procedure_fields(referral: Referral, given: dict[str, Any]) -> dict[str, str]:
    """The findings the referral's procedure asks for, each one of its values; a field the
    procedure does not have is refused by name (422)."""
    schema = review_fields_schema(referral.procedure.review_field_list)
    try:
        loaded = schema.load(given)
    except ValidationError as exc:
        raise ValidationFailed(flatten_marshmallow(exc.messages)) from exc
    return {code: value for code, value in loaded.items() if value is not None}


def _act_on(review: Review, referral: Referral, actor: Actor) -> None:
    key = f"review:{review.id}"
    if review.decision == "not_a_candidate":
        move_to_stage(referral, Stage.LOST, actor, reason="not_a_candidate", note=review.findings)
    elif review.decision == "need_more_information":
        move_to_stage(referral, Stage.AWAITING_MRI, actor, note="specialist asked for more")
        enqueue(
            referral,
            kind="more_information_needed_patient",
            audience="patient",
            channels=["sms", "email"],
            fallback=False,
            key=f"{key}:patient",
            extra={"message": review.request_to_patient},
        )
    if referral.agency_id is not None:
        enqueue(
            referral,
            kind="review_outcome_agency",
            audience="agency",
            channels=["email"],
            key=f"{key}:agency",
            extra={"message": OUTCOME_WORDS[review.decision]},
        )
