from __future__ import annotations

from crm.auth.guards import any_caller, caller_scope, current_actor, staff_only
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.plans import operations, queries
from crm.plans.schemas import PlanArgs, TreatmentPlanSchema
from crm.referrals.queries import referral_for

blp = Blueprint("plans", __name__, description="Treatment plans (versioned quotes)")


@blp.post("/referrals/<int:referral_id>/plans")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.arguments(PlanArgs)
@blp.response(201, TreatmentPlanSchema)
def offer_plan(args, referral_id: int):
    """Offer a new plan version (money in integer minor units; the total is computed)."""
    referral = referral_for(current_actor(), referral_id, for_update=True)
    return operations.offer_plan(referral, args, current_actor())


@blp.get("/referrals/<int:referral_id>/plans")
@any_caller
@blp.response(200, TreatmentPlanSchema(many=True))
def list_plans(referral_id: int):
    """Every version, oldest first, with computed totals."""
    referral = referral_for(current_actor(), referral_id)
    audit.record(current_actor(), "plan.read", referral.id)
    return queries.plans_of(referral.id)


@blp.get("/plans/<int:plan_id>")
@any_caller
@blp.response(200, TreatmentPlanSchema)
def get_plan(plan_id: int):
    plan = queries.plan_for(current_actor(), plan_id)
    audit.record(current_actor(), "plan.read", plan.referral_id)
    return plan
