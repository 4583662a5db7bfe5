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
