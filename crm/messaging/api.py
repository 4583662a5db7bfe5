from __future__ import annotations

from crm.auth.guards import any_caller, caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.messaging import operations, queries
from crm.messaging.schemas import (
    AdHocMessageArgs,
    DeliverySummarySchema,
    OutboundSchema,
    TimelineSchema,
)
from crm.referrals.queries import referral_for

blp = Blueprint("messages", __name__, description="Messages to and from patients")


@blp.get("/referrals/<int:referral_id>/messages")
@staff_only()
@blp.response(200, TimelineSchema)
def message_timeline(referral_id: int):
    """Every message about this referral: outbound with delivery status, inbound replies."""
    return queries.timeline(current_actor(), referral_id)


@blp.post("/referrals/<int:referral_id>/messages")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.arguments(AdHocMessageArgs)
@blp.response(201, OutboundSchema(many=True))
def send_message(args, referral_id: int):
    """Send the patient a message now (consent, quiet hours and spend caps apply; 429 over cap)."""
    referral = referral_for(current_actor(), referral_id, for_update=True)
    return operations.send_ad_hoc(referral, args, current_actor())


@blp.get("/referrals/<int:referral_id>/deliveries")
@any_caller
@blp.response(200, DeliverySummarySchema)
def delivery_summary(referral_id: int):
    """How messages about this referral went: kinds, channels and statuses, never bodies."""
    return queries.delivery_summary(current_actor(), referral_id)
