from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from crm.core.actors import Actor
from crm.core.errors import NotFound
from crm.extensions import db
from crm.plans.models import TreatmentPlan
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID, referral_for

REQUIRED_CONSENTS = ("treatment_information_acknowledged", "data_processing")


def plans_of(referral_id: int) -> Sequence[TreatmentPlan]:
    return db.session.scalars(
        select(TreatmentPlan)
        .where(TreatmentPlan.referral_id == referral_id)
        .order_by(TreatmentPlan.version)
    ).all()


def current_plan(referral_id: int) -> TreatmentPlan | None:
    """The version that counts: the accepted one, else the latest offered."""
    return db.session.scalar(
        select(TreatmentPlan)
        .where(
            TreatmentPlan.referral_id == referral_id,
            TreatmentPlan.status.in_(["offered", "accepted"]),
        )
        .order_by((TreatmentPlan.status == "accepted").desc(), TreatmentPlan.version.desc())
        .limit(1)
    )


def plan_for(actor: Actor, plan_id: int) -> TreatmentPlan:
    # ids are `integer` columns: a larger number would fail in PostgreSQL, not find nothing
    plan = db.session.get(TreatmentPlan, plan_id) if 0 < plan_id <= MAX_ROW_ID else None
    try:
        if plan is None:
            raise NotFound
        referral_for(actor, plan.referral_id)
    except NotFound as exc:  # another agency's plan is 404, exactly as a missing one
        raise NotFound(f"no plan {plan_id}") from exc
    return plan


def accepted_with_consent(referral: Referral) -> dict[str, Any]:
    """The facts behind the guards `plan_acceptance_recorded` and `accepted_plan_and_consent`."""
    plan = db.session.scalar(
        select(TreatmentPlan).where(
            TreatmentPlan.referral_id == referral.id, TreatmentPlan.status == "accepted"
        )
    )
    consents = (plan.acceptance or {}).get("consents", {}) if plan else {}
    return {
        "plan_accepted": plan is not None,
        "plan_accepted_with_consent": all(consents.get(n) for n in REQUIRED_CONSENTS),
    }
