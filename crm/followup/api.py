"""Follow-up endpoints for staff; patients answer on their private link (crm.portal)."""

from __future__ import annotations

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.followup import operations, queries
from crm.followup.schemas import CheckInAnswersArgs, CheckInSchema
from crm.referrals.queries import referral_for

blp = Blueprint("followup", __name__, description="Follow-up check-ins")


@blp.get("/referrals/<int:referral_id>/check-ins")
@staff_only("coordinator", "specialist", "manager")
@blp.response(200, CheckInSchema(many=True))
def list_check_ins(referral_id: int):
    """The referral's check-ins in schedule order, with answers and alerts."""
    return queries.check_ins_for(current_actor(), referral_id)


@blp.post("/referrals/<int:referral_id>/check-ins/<string:label>/answers")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.arguments(CheckInAnswersArgs)
@blp.response(200, CheckInSchema)
def answer_check_in(args, referral_id: int, label: str):
    """Enter a check-in's answers (from a phone call); 409 if it is already answered.

    An alert (red flag, a score of 7 or more, a rise of 3 or more) opens an urgent task
    and emails the coordinator; the last check-in answered completes the referral.
    """
    referral = referral_for(current_actor(), referral_id, for_update=True)
    check_in = queries.check_in_by_label(referral, label)
    return operations.record_answers(check_in, args, current_actor())
