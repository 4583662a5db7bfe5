from __future__ import annotations

from crm.auth.guards import any_caller, caller_scope, current_actor, staff_only
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.referrals.queries import referral_for
from crm.reviews import operations, queries
from crm.reviews.schemas import (
    QueueArgs,
    QueueItemSchema,
    ReviewArgs,
    ReviewSchema,
)

blp = Blueprint("reviews", __name__, description="Specialist review queue and decisions")


@blp.get("/reviews/queue")
@staff_only("specialist", "coordinator", "manager")
@blp.arguments(QueueArgs, location="query")
@blp.response(200, QueueItemSchema(many=True))
def review_queue(args):
    """Referrals in mri_review, oldest first, with the review SLA and breaches marked."""
    queue = queries.review_queue(args["limit"], args["breached_only"])
    if queue:  # it names patients: a read of their data, audited like the referral list
        ids = [item["referral_id"] for item in queue]
        audit.record(current_actor(), "review.queue", None, referral_ids=ids)
    return queue


@blp.post("/referrals/<int:referral_id>/reviews")
@idempotent(caller_scope)
@staff_only("specialist")
@blp.arguments(ReviewArgs)
@blp.response(201, ReviewSchema)
def record_review(args, referral_id: int):
    """Record the specialist's decision: candidate, not a candidate, or need more information."""
    referral = referral_for(current_actor(), referral_id, for_update=True)
    return operations.record_review(referral, args, current_actor())


@blp.get("/referrals/<int:referral_id>/reviews")
@any_caller
@blp.response(200, ReviewSchema(many=True))
def list_reviews(referral_id: int):
    """Staff see the full reviews; agencies get the decisions and dates only."""
    actor = current_actor()
    referral = referral_for(actor, referral_id)
    reviews = queries.reviews_of(referral.id)
    audit.record(actor, "review.read", referral.id)
    if actor.is_agency:  # the decision and when; the clinical text stays with the hospital
        return [{"decision": r.decision, "created_at": r.created_at} for r in reviews]
    return reviews
