"""The specialist's review: the queue, the decisions and what each sets in motion."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from crm.core.db import utcnow
from crm.referrals.models import Referral
from tests.messaging.support import outbox_for
from tests.plans.support import in_review
from tests.plans.support import review as _review

API = "/api/v1"


def test_the_queue_is_oldest_first_with_breaches_of_the_sla_marked(
    client, session, factory, agency, coordinator, specialist
):
    old, new = in_review(factory, agency, coordinator), in_review(factory, agency, coordinator)
    session.execute(
        update(Referral)
        .where(Referral.id == old.id)
        .values(stage_entered_at=utcnow() - timedelta(hours=50))
    )
    session.commit()
    queue = client.get(f"{API}/reviews/queue", headers=specialist.headers()).json
    ids = [item["referral_id"] for item in queue]
    assert ids.index(old.id) < ids.index(new.id)
    by_id = {item["referral_id"]: item for item in queue}
    assert by_id[old.id]["breached"] is True
    assert by_id[new.id]["breached"] is False
    breached = client.get(
        f"{API}/reviews/queue?breached_only=true", headers=specialist.headers()
    ).json
    assert [i["referral_id"] for i in breached if i["referral_id"] in (old.id, new.id)] == [old.id]


def test_only_specialists_record_reviews(client, factory, agency, coordinator):
    referral = in_review(factory, agency, coordinator)
    assert _review(client, coordinator, referral).status_code == 403
    assert _review(client, agency, referral).status_code == 403


def test_a_candidate_decision_keeps_the_stage_and_lets_a_plan_be_offered(
    client, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    assert _review(client, specialist, referral).status_code == 201
    detail = client.get(f"{API}/referrals/{referral.id}", headers=coordinator.headers()).json
    assert detail["stage"] == "mri_review"
    moved = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "plan_offered"},
        headers=coordinator.headers(),
    )
    assert moved.status_code == 201


def test_offering_without_a_candidate_review_is_refused_by_name(
    client, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    moved = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "plan_offered"},
        headers=coordinator.headers(),
    )
    assert moved.status_code == 409
    assert moved.json["guards"][0]["guard"] == "specialist_decided_candidate"


def test_not_a_candidate_ends_the_referral_lost_and_tells_the_agency(
    client, session, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    response = _review(
        client, specialist, referral, decision="not_a_candidate", recommended_procedure=None
    )
    assert response.status_code == 201, response.json
    session.refresh(referral)
    assert (referral.stage, referral.lost_reason) == ("lost", "not_a_candidate")
    [to_agency] = outbox_for(referral.id, kind="review_outcome_agency")
    assert "not a candidate" in to_agency.body_text


def test_need_more_information_goes_back_to_awaiting_mri_and_asks_the_patient(
    client, session, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    response = _review(
        client,
        specialist,
        referral,
        decision="need_more_information",
        request_to_patient="Please send the sagittal T2 series.",
    )
    assert response.status_code == 201
    session.refresh(referral)
    assert referral.stage == "awaiting_mri"
    emails = outbox_for(referral.id, kind="more_information_needed_patient", channel="email")
    assert "sagittal T2" in emails[0].body_text
    [sms] = outbox_for(referral.id, kind="more_information_needed_patient", channel="sms")
    assert "sagittal" not in sms.body_text  # the request is health detail: email only


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"decision": "need_more_information", "request_to_patient": None}, "request_to_patient"),
        ({"recommended_procedure": None}, "recommended_procedure"),
        ({"recommended_procedure": "teleportation"}, "recommended_procedure"),
        ({"disc_level": "somewhere"}, "disc_level"),
    ],
)
def test_bad_reviews_name_the_field(client, factory, agency, coordinator, specialist, body, field):
    referral = in_review(factory, agency, coordinator)
    response = _review(client, specialist, referral, **body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json["errors"]]


def test_a_review_outside_mri_review_is_a_conflict(client, factory, agency, specialist):
    referral = factory.referral(agency)
    assert _review(client, specialist, referral).status_code == 409


def test_agencies_see_the_decision_but_not_the_clinical_text(
    client, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    _review(client, specialist, referral)
    seen = client.get(f"{API}/referrals/{referral.id}/reviews", headers=agency.headers()).json
    assert seen == [{"decision": "candidate", "created_at": seen[0]["created_at"]}]
    full = client.get(f"{API}/referrals/{referral.id}/reviews", headers=coordinator.headers())
    assert full.json[0]["findings"] == "L5-S1 herniation"


def test_another_agencys_reviews_are_404(client, factory, agency, coordinator):
    referral = in_review(factory, agency, coordinator)
    other = factory.agency()
    response = client.get(f"{API}/referrals/{referral.id}/reviews", headers=other.headers())
    assert response.status_code == 404
