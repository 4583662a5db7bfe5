"""The edges of plans: direct referrals, stale acceptances, the freeze below the operations."""

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.core.errors import Conflict, ValidationFailed
from crm.plans.models import PlanLineItem, TreatmentPlan
from crm.plans.operations import FrozenPlan, accept_plan
from crm.plans.queries import current_plan
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from tests.messaging.support import outbox_for
from tests.plans.support import CONSENTS, reviewed_as_candidate
from tests.plans.support import offer as _offer
from tests.plans.support import patient_of as _patient

API = "/api/v1"


def _offered(session, client, coordinator, referral) -> TreatmentPlan:
    response = _offer(client, coordinator, referral)
    assert response.status_code == 201, response.json
    return session.get(TreatmentPlan, response.json["id"])


def test_a_direct_referral_has_no_agency_to_tell(client, factory, coordinator):
    direct = reviewed_as_candidate(factory, coordinator, coordinator)
    assert direct.agency_id is None
    assert _offer(client, coordinator, direct).status_code == 201
    assert outbox_for(direct.id, kind="plan_offered_patient")
    assert outbox_for(direct.id, kind="plan_offered_agency") == []


def test_each_version_has_its_own_outbox_messages(client, coordinator, candidate):
    _offer(client, coordinator, candidate)
    _offer(client, coordinator, candidate)
    keys = {m.idempotency_key for m in outbox_for(candidate.id, kind="plan_offered_agency")}
    assert len(keys) == 2


def test_the_superseded_version_records_when(session, client, coordinator, candidate):
    first = _offered(session, client, coordinator, candidate)
    _offer(client, coordinator, candidate)
    session.refresh(first)
    assert first.status == "superseded"
    assert first.superseded_at is not None


@pytest.mark.parametrize("field", ["total", "total_minor", "status", "version"])
def test_computed_and_server_fields_cannot_be_sent(client, coordinator, candidate, field):
    response = _offer(client, coordinator, candidate, **{field: 1})
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [field]


def test_a_plan_is_offered_only_from_review_or_an_offer(client, factory, agency, coordinator):
    referral = factory.referral(agency)
    response = _offer(client, coordinator, referral)
    assert response.status_code == 409
    assert "enquiry" in response.json["detail"]


def test_another_agencys_plans_are_404(client, factory, coordinator, candidate):
    _offer(client, coordinator, candidate)
    other = factory.agency()
    response = client.get(f"{API}/referrals/{candidate.id}/plans", headers=other.headers())
    assert response.status_code == 404


def test_an_id_beyond_the_column_is_404_not_a_database_error(client, agency):
    response = client.get(f"{API}/plans/{2**40}", headers=agency.headers())
    assert response.status_code == 404


def test_the_current_plan_is_the_latest_offered_then_the_accepted_one(
    session, client, coordinator, candidate
):
    assert current_plan(candidate.id) is None
    _offered(session, client, coordinator, candidate)
    second = _offered(session, client, coordinator, candidate)
    assert current_plan(candidate.id) is second
    accept_plan(second, CONSENTS, _patient(candidate))
    assert current_plan(candidate.id) is second


def test_the_acceptance_records_consents_time_and_source(session, client, coordinator, candidate):
    plan = _offered(session, client, coordinator, candidate)
    accept_plan(plan, CONSENTS, _patient(candidate))
    assert plan.acceptance["source"] == "patient_link"
    assert plan.acceptance["accepted_at"] == plan.accepted_at.isoformat()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "plan.accept")).all()
    assert event.referral_id == candidate.id


def test_a_consent_must_be_true_not_merely_truthy(session, client, coordinator, candidate):
    plan = _offered(session, client, coordinator, candidate)
    with pytest.raises(ValidationFailed):
        accept_plan(plan, {**CONSENTS, "data_processing": "yes"}, _patient(candidate))


def test_a_plan_is_not_accepted_while_the_referral_is_on_hold(
    session, client, coordinator, candidate
):
    plan = _offered(session, client, coordinator, candidate)
    move_to_stage(candidate, "on_hold", coordinator.actor)
    with pytest.raises(Conflict):
        accept_plan(plan, CONSENTS, _patient(candidate))


def test_a_second_acceptance_that_loaded_the_plan_before_the_first_is_refused(
    session, client, coordinator, candidate
):
    plan = _offered(session, client, coordinator, candidate)
    referral = session.get(Referral, candidate.id)
    first_acceptance = {"consents": CONSENTS, "source": "patient_link"}
    # What another transaction commits while this one holds the old objects in memory.
    plans, referrals = TreatmentPlan.__table__, Referral.__table__
    session.connection().execute(
        plans.update()
        .where(plans.c.id == plan.id)
        .values(status="accepted", accepted_at=utcnow(), acceptance=first_acceptance)
    )
    session.connection().execute(
        referrals.update().where(referrals.c.id == referral.id).values(stage="plan_accepted")
    )
    with pytest.raises(Conflict):
        accept_plan(plan, CONSENTS, _patient(candidate))
    assert [t.to_stage for t in referral.history].count("plan_accepted") == 0
    assert plan.acceptance == first_acceptance


def test_no_line_item_can_be_added_to_an_accepted_plan(session, client, coordinator, candidate):
    plan = _offered(session, client, coordinator, candidate)
    accept_plan(plan, CONSENTS, _patient(candidate))
    session.commit()
    extra = PlanLineItem(
        plan_id=plan.id, position=99, kind="other", description="x", quantity=1, unit_price_minor=1
    )
    session.add(extra)
    with pytest.raises(FrozenPlan):
        session.flush()
    session.rollback()


def test_an_accepted_plan_cannot_be_deleted(session, client, coordinator, candidate):
    plan = _offered(session, client, coordinator, candidate)
    accept_plan(plan, CONSENTS, _patient(candidate))
    session.commit()
    session.delete(plan)
    with pytest.raises(FrozenPlan):
        session.flush()
    session.rollback()


def test_an_offered_plan_may_still_be_corrected(session, client, coordinator, candidate):
    plan = _offered(session, client, coordinator, candidate)
    plan.items[0].description = "Microdiscectomy L5-S1"
    session.flush()
