"""Treatment plans: versioned quotes in minor units, computed totals, frozen once accepted."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.db import utcnow
from crm.core.errors import Conflict, ValidationFailed
from crm.plans.models import TreatmentPlan
from crm.plans.operations import FrozenPlan, accept_plan
from tests.messaging.support import outbox_for
from tests.plans.support import CONSENTS, in_review
from tests.plans.support import offer as _offer
from tests.plans.support import patient_of as _patient

API = "/api/v1"


def test_the_first_offer_moves_the_referral_and_tells_patient_and_agency(
    client, session, coordinator, candidate
):
    response = _offer(client, coordinator, candidate)
    assert response.status_code == 201, response.json
    plan = response.json
    assert plan["version"] == 1
    assert plan["total_minor"] == 650000 + 2 * 30000
    assert [i["amount_minor"] for i in plan["items"]] == [650000, 60000]
    session.refresh(candidate)
    assert candidate.stage == "plan_offered"
    assert outbox_for(candidate.id, kind="plan_offered_patient")
    [to_agency] = outbox_for(candidate.id, kind="plan_offered_agency")
    assert to_agency.audience == "agency"


def test_offering_without_a_candidate_review_is_refused(client, factory, agency, coordinator):
    referral = in_review(factory, agency, coordinator)
    response = _offer(client, coordinator, referral)
    assert response.status_code == 409
    assert response.json["guards"][0]["guard"] == "specialist_decided_candidate"


def test_a_new_version_supersedes_the_offered_one(client, session, coordinator, candidate):
    first = _offer(client, coordinator, candidate).json
    second = _offer(client, coordinator, candidate, currency="USD").json
    assert second["version"] == 2
    plans = client.get(f"{API}/referrals/{candidate.id}/plans", headers=coordinator.headers())
    assert [(p["version"], p["status"]) for p in plans.json] == [(1, "superseded"), (2, "offered")]
    assert first["id"] != second["id"]


def test_a_total_cannot_be_entered(client, coordinator, candidate):
    response = _offer(client, coordinator, candidate, total_minor=1)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "total_minor"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"valid_until": utcnow().date().isoformat()}, "valid_until"),
        ({"deposit_minor": 10_000_000}, "deposit_minor"),
        ({"deposit_minor": -1}, "deposit_minor"),
        ({"items": []}, "items"),
        (
            {"items": [{"kind": "surgery", "description": "x", "unit_price_minor": 1.5}]},
            "items[0].unit_price_minor",
        ),
        (
            {
                "items": [
                    {"kind": "surgery", "description": "x", "quantity": 0, "unit_price_minor": 1}
                ]
            },
            "items[0].quantity",
        ),
        ({"items": [{"kind": "spa", "description": "x", "unit_price_minor": 1}]}, "items[0].kind"),
        ({"procedure": "teleportation"}, "procedure"),
    ],
)
def test_bad_plans_name_the_field(client, coordinator, candidate, overrides, field):
    response = _offer(client, coordinator, candidate, **overrides)
    assert response.status_code == 422, response.json
    assert field in [e["field"] for e in response.json["errors"]]


def test_accepting_records_the_consents_and_moves_the_referral(
    session, coordinator, candidate, client
):
    plan_id = _offer(client, coordinator, candidate).json["id"]
    plan = session.get(TreatmentPlan, plan_id)
    accept_plan(plan, CONSENTS, _patient(candidate))
    session.refresh(candidate)
    assert candidate.stage == "plan_accepted"
    assert plan.acceptance["consents"] == CONSENTS
    assert outbox_for(candidate.id, kind="plan_accepted_coordinator")


@pytest.mark.parametrize("missing", ["treatment_information_acknowledged", "data_processing"])
def test_accepting_without_both_consents_is_refused(
    session, client, coordinator, candidate, missing
):
    plan = session.get(TreatmentPlan, _offer(client, coordinator, candidate).json["id"])
    with pytest.raises(ValidationFailed) as refused:
        accept_plan(plan, {**CONSENTS, missing: False}, _patient(candidate))
    assert refused.value.extensions["errors"][0]["field"] == missing


def test_an_expired_or_superseded_plan_cannot_be_accepted(session, client, coordinator, candidate):
    first = session.get(TreatmentPlan, _offer(client, coordinator, candidate).json["id"])
    second = session.get(TreatmentPlan, _offer(client, coordinator, candidate).json["id"])
    with pytest.raises(Conflict):
        accept_plan(first, CONSENTS, _patient(candidate))
    second.valid_until = utcnow().date() - timedelta(days=1)
    session.flush()
    with pytest.raises(Conflict, match="expired"):
        accept_plan(second, CONSENTS, _patient(candidate))


def test_an_accepted_plan_is_frozen(session, client, coordinator, candidate):
    plan = session.get(TreatmentPlan, _offer(client, coordinator, candidate).json["id"])
    accept_plan(plan, CONSENTS, _patient(candidate))
    session.commit()
    plan.surgeon = "someone else"
    with pytest.raises(FrozenPlan):
        session.flush()
    session.rollback()
    plan = session.scalar(select(TreatmentPlan).where(TreatmentPlan.id == plan.id))
    plan.items[0].unit_price_minor = 1
    with pytest.raises(FrozenPlan):
        session.flush()
    session.rollback()


def test_no_new_version_after_acceptance(session, client, coordinator, candidate):
    plan = session.get(TreatmentPlan, _offer(client, coordinator, candidate).json["id"])
    accept_plan(plan, CONSENTS, _patient(candidate))
    session.commit()
    response = _offer(client, coordinator, candidate)
    assert response.status_code == 409


def test_agencies_read_their_own_plans_and_not_others(
    client, coordinator, candidate, agency, factory
):
    plan_id = _offer(client, coordinator, candidate).json["id"]
    assert client.get(f"{API}/plans/{plan_id}", headers=agency.headers()).status_code == 200
    other = factory.agency()
    hidden = client.get(f"{API}/plans/{plan_id}", headers=other.headers())
    assert hidden.status_code == 404
    assert "referral" not in hidden.json["detail"]
    assert client.get(f"{API}/plans/999999", headers=other.headers()).json["detail"] == (
        "no plan 999999"
    )


def test_only_coordinators_and_managers_offer_plans(client, factory, candidate, agency):
    assert _offer(client, agency, candidate).status_code == 403
    assert _offer(client, factory.staff("specialist"), candidate).status_code == 403


def test_a_new_version_tells_the_patient_what_changed_instead_of_ready_again(
    client, session, coordinator, candidate
):
    _offer(client, coordinator, candidate)
    later = (utcnow().date() + timedelta(days=60)).isoformat()
    items = [{"kind": "surgery", "description": "Microdiscectomy", "unit_price_minor": 600000}]
    assert _offer(client, coordinator, candidate, items=items, valid_until=later).status_code == 201
    assert len(outbox_for(candidate.id, kind="plan_offered_patient", channel="email")) == 1
    [email] = outbox_for(candidate.id, kind="plan_updated_patient", channel="email")
    assert email.subject == "Ihr Behandlungsplan wurde aktualisiert"  # the patient's language
    assert "6.000,00\xa0€" in email.body_text and "7.100,00\xa0€" in email.body_text
    assert "gilt jetzt bis zum" in email.body_text
    [sms] = outbox_for(candidate.id, kind="plan_updated_patient", channel="sms")
    assert "€" not in sms.body_text and "6.000" not in sms.body_text


def test_an_unchanged_price_is_not_mentioned_in_the_update(client, session, coordinator, candidate):
    _offer(client, coordinator, candidate)
    _offer(client, coordinator, candidate, inclusions=["surgery", "anaesthesia", "hotel"])
    [email] = outbox_for(candidate.id, kind="plan_updated_patient", channel="email")
    assert "€" not in email.body_text
    assert "ersetzt die zuvor gesendete" in email.body_text


def test_the_notice_of_a_superseded_version_still_queued_is_cancelled(
    client, session, coordinator, candidate
):
    _offer(client, coordinator, candidate)
    _offer(client, coordinator, candidate, currency="USD")
    first = outbox_for(candidate.id, kind="plan_offered_patient")
    assert first and {(m.status, m.suppressed_reason) for m in first} == {
        ("cancelled", "superseded")
    }


def test_each_version_is_announced_once(client, session, coordinator, candidate):
    _offer(client, coordinator, candidate)
    for currency in ("USD", "GBP"):
        _offer(client, coordinator, candidate, currency=currency)
    updates = outbox_for(candidate.id, kind="plan_updated_patient", channel="email")
    assert len(updates) == 2
