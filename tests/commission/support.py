"""A referral brought into treatment through the real operations, and contracts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm.commission.models import CommissionEntry
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from tests.reports.support import accepted_case

PLAN_TOTAL = 650_000 + 2 * 30_000  # tests.plans.support.plan_body's items
THIS_MONTH = utcnow().strftime("%Y-%m")


def contract_body(**overrides: Any) -> dict[str, Any]:
    body = {"kind": "percentage", "basis_points": 1000, "effective_from": "2020-01-01"}
    body.update(overrides)
    return body


def add_contract(client, manager, agency, **overrides: Any):
    return client.post(
        f"/api/v1/agencies/{agency.actor.agency_id}/contracts",
        json=contract_body(**overrides),
        headers=manager.headers(),
    )


def treated(client, factory, agency, coordinator, **plan: Any):
    """Accepted, travel booked and now in treatment (the move that accrues)."""
    referral = accepted_case(client, factory, agency, coordinator, **plan)
    move_to_stage(referral, "travel_booked", coordinator.actor)
    move_to_stage(referral, "in_treatment", coordinator.actor)
    factory.session.commit()
    return referral


def entries_of(session, referral) -> list[CommissionEntry]:
    return list(
        session.scalars(
            select(CommissionEntry)
            .where(CommissionEntry.referral_id == referral.id)
            .order_by(CommissionEntry.id)
        )
    )


def accepted(client, factory, referral, agency, coordinator, **plan: Any):
    """An existing referral taken through review to an accepted plan (the real operations)."""
    from sqlalchemy import select as _select

    from crm.plans.models import TreatmentPlan
    from crm.plans.operations import accept_plan
    from crm.reviews.operations import record_review
    from tests.plans.support import CANDIDATE, CONSENTS, offer, patient_of, upload_sample_mri

    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    upload_sample_mri(referral, agency.actor)
    record_review(referral, dict(CANDIDATE), factory.staff("specialist").actor)
    factory.session.commit()
    assert offer(client, coordinator, referral, **plan).status_code == 201
    version = factory.session.scalars(
        _select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
    ).one()
    accept_plan(version, dict(CONSENTS), patient_of(referral))
    factory.session.commit()
    return referral


def into_treatment(factory, referral, coordinator):
    move_to_stage(referral, "travel_booked", coordinator.actor)
    move_to_stage(referral, "in_treatment", coordinator.actor)
    factory.session.commit()
    return referral


def refund(client, manager, referral, amount_minor: int, currency: str = "EUR", **extra):
    return client.post(
        f"/api/v1/referrals/{referral.id}/refunds",
        json={"amount_minor": amount_minor, "currency": currency, "reason": "a night less"},
        headers=manager.headers(**extra),
    )


def ledger(session, referral) -> list[tuple[int, str, int, str]]:
    """(agency, kind, amount, reason) of each entry of the referral, in order."""
    return [(e.agency_id, e.kind, e.amount_minor, e.reason) for e in entries_of(session, referral)]
