"""Refunds recorded by a manager: money given back to the patient on the accepted plan,
in the plan's currency. The commission on it is reversed in proportion (ledger.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from crm.commission.ledger import accepted_plan, accruals_of, apply_refunds, refunds_of
from crm.commission.models import CommissionEntry, Refund
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, ValidationFailed
from crm.extensions import db
from crm.referrals.models import Referral


def refunded_so_far(referral_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
                Refund.referral_id == referral_id
            )
        )
        or 0
    )


def record_refund(
    referral: Referral, data: dict[str, Any], actor: Actor, now: datetime | None = None
) -> tuple[Refund, list[CommissionEntry]]:
    """The refund, and the reversals it wrote. The referral's row is locked first, so two
    refunds of one referral are added one at a time and never exceed the plan together."""
    now = now or utcnow()
    db.session.scalar(select(Referral.id).where(Referral.id == referral.id).with_for_update())
    plan = accepted_plan(referral.id)
    if plan is None:
        raise Conflict("the referral has no accepted plan, so nothing was paid to refund")
    if data["currency"] != plan.currency:
        raise ValidationFailed(
            {
                "currency": f"the accepted plan is in {plan.currency}; a refund is recorded "
                "in the plan's currency, never converted"
            }
        )
    left = plan.total_minor - refunded_so_far(referral.id)
    if data["amount_minor"] > left:
        raise ValidationFailed(
            {"amount_minor": f"at most {left} ({plan.currency}, minor units) is left to refund"}
        )
    refund = Refund(
        referral_id=referral.id,
        plan_id=plan.id,
        amount_minor=data["amount_minor"],
        currency=plan.currency,
        reason=data["reason"],
        recorded_by_label=actor.label,
        created_at=now,
    )
    db.session.add(refund)
    db.session.flush()
    audit.record(
        actor,
        "commission.refund_recorded",
        referral.id,
        refund_id=refund.id,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
    )
    written: list[CommissionEntry] = []
    for accrual in accruals_of(referral.id):
        written.extend(apply_refunds(accrual, now))
    return refund, written


def refunds_with_reversals(referral_id: int) -> list[dict[str, Any]]:
    return [view_of(refund) for refund in refunds_of(referral_id)]


def view_of(refund: Refund) -> dict[str, Any]:
    reversals = db.session.scalars(
        select(CommissionEntry)
        .where(CommissionEntry.cause.startswith(f"refund:{refund.id}:"))
        .order_by(CommissionEntry.id)
    )
    return {
        "id": refund.id,
        "referral_id": refund.referral_id,
        "amount_minor": refund.amount_minor,
        "currency": refund.currency,
        "reason": refund.reason,
        "recorded_by": refund.recorded_by_label,
        "created_at": refund.created_at,
        "reversed": [
            {"amount_minor": e.amount_minor, "currency": e.currency, "agency_id": e.agency_id}
            for e in reversals
        ],
    }
