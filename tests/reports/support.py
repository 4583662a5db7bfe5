"""Reading the rollups back, and a realistic series of operations to fill them."""

from __future__ import annotations

from sqlalchemy import select

from crm.plans.models import TreatmentPlan
from crm.plans.operations import accept_plan
from crm.referrals.operations import move_to_stage
from crm.reports.models import MessageDaily, PlanDaily, SlaMonthly, StageDaily, StageDuration
from tests.plans.support import CONSENTS, offer, patient_of, reviewed_as_candidate

API = "/api/v1/reports"


def rollup_rows(session) -> dict[str, set[tuple]]:
    found = {}
    for model in (StageDaily, StageDuration, PlanDaily, SlaMonthly, MessageDaily):
        columns = list(model.__table__.columns)
        rows = {tuple(row) for row in session.execute(select(*columns))}
        if model is MessageDaily:  # a cell every message left (messages 0, segments 0)
            rows = {row for row in rows if row[-2] or row[-1]}
        found[model.__tablename__] = rows
    return found


def accepted_case(client, factory, agency, coordinator, **plan):
    """Submitted, MRI reviewed, a plan offered through the API and accepted by the patient."""
    referral = reviewed_as_candidate(factory, agency, coordinator)
    assert offer(client, coordinator, referral, **plan).status_code == 201
    version = factory.session.scalars(
        select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
    ).one()
    accept_plan(version, dict(CONSENTS), patient_of(referral))
    factory.session.commit()
    return referral


def a_realistic_day(client, factory, agency, coordinator) -> None:
    """Enquiries, some moved on, one lost, one on hold and back, two plans accepted."""
    for _ in range(2):
        factory.referral(agency)
    waiting = factory.referral(agency)
    move_to_stage(waiting, "awaiting_mri", coordinator.actor)
    lost = factory.referral(agency)
    move_to_stage(lost, "lost", coordinator.actor, reason="price")
    held = factory.referral(agency)
    move_to_stage(held, "on_hold", coordinator.actor)
    move_to_stage(held, "enquiry", coordinator.actor)
    factory.session.commit()
    accepted_case(client, factory, agency, coordinator)
    accepted_case(client, factory, agency, coordinator, currency="USD")
