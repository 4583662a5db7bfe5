"""The agency thread over the API: the agency (its key) and the hospital's staff read and
write the same messages about a referral; another agency's referral is a 404."""

from __future__ import annotations

from crm.agency_messages import operations, queries
from crm.agency_messages.schemas import AgencyMessageArgs, AgencyMessageSchema
from crm.auth.guards import any_caller, caller_scope, current_actor
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.referrals.queries import referral_for

blp = Blueprint(
    "agency_messages", __name__, description="Messages between an agency and the coordinators"
)


@blp.get("/referrals/<int:referral_id>/agency-messages")
@any_caller
@blp.response(200, AgencyMessageSchema(many=True))
def list_agency_messages(referral_id: int):
    """The referral's thread between its agency and the coordinators, oldest first.

    Reading it marks what the other side wrote as read (for the agency, and for
    coordinators and managers; a specialist's read marks nothing)."""
    actor = current_actor()
    referral = referral_for(actor, referral_id)
    audit.record(actor, "agency_message.list", referral.id)
    messages = queries.thread(referral.id)
    operations.mark_read(referral, actor)
    return messages


@blp.post("/referrals/<int:referral_id>/agency-messages")
@idempotent(caller_scope)
@any_caller
@blp.arguments(AgencyMessageArgs)
@blp.response(201, AgencyMessageSchema)
def post_agency_message(args, referral_id: int):
    """Write in the referral's agency thread: an agency to the hospital, a coordinator or
    manager to the agency. Free text, sent as written; a direct enquiry has no agency (409)."""
    referral = referral_for(current_actor(), referral_id, for_update=True)
    return operations.post_message(referral, args["body"], current_actor())
