"""Who may see the queue, how its SLA is set, and a direct referral's decisions."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.referrals.models import Referral
from crm.reviews.models import Review
from tests.messaging.support import outbox_for
from tests.plans.support import in_review
from tests.plans.support import review as _review

API = "/api/v1"


def _queue(client, caller, **params):
    return client.get(f"{API}/reviews/queue", query_string=params, headers=caller.headers())


@pytest.mark.parametrize(
    ("role", "status"), [("specialist", 200), ("coordinator", 200), ("manager", 200)]
)
def test_specialists_coordinators_and_managers_read_the_queue(client, factory, role, status):
    assert _queue(client, factory.staff(role)).status_code == status


def test_agencies_do_not_read_the_queue(client, agency):
    assert _queue(client, agency).status_code == 403


def test_the_sla_comes_from_the_setting(
    app, client, session, factory, agency, coordinator, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "REVIEW_SLA_HOURS", 1)
    referral = in_review(factory, agency, coordinator)
    entered = utcnow() - timedelta(hours=2)
    session.execute(
        update(Referral).where(Referral.id == referral.id).values(stage_entered_at=entered)
    )
    session.commit()
    [item] = [i for i in _queue(client, coordinator).json if i["referral_id"] == referral.id]
    assert item["breached"] is True
    assert item["hours_waiting"] == 2
    assert item["due_at"].startswith((entered + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))


def test_the_queue_holds_only_referrals_in_review(client, factory, agency, coordinator):
    waiting = factory.referral(agency)
    ids = [item["referral_id"] for item in _queue(client, coordinator).json]
    assert waiting.id not in ids


def test_reading_the_queue_is_audited(client, session, factory, agency, coordinator):
    referral = in_review(factory, agency, coordinator)
    _queue(client, coordinator)
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "review.queue"))
    assert referral.id in event.detail["referral_ids"]


def test_a_direct_referral_found_not_a_candidate_tells_no_agency(
    client, session, factory, coordinator, specialist
):
    direct = in_review(factory, coordinator, coordinator)
    response = _review(
        client, specialist, direct, decision="not_a_candidate", recommended_procedure=None
    )
    assert response.status_code == 201
    session.refresh(direct)
    assert (direct.stage, direct.lost_reason) == ("lost", "not_a_candidate")
    assert outbox_for(direct.id, kind="review_outcome_agency") == []


def test_the_agency_is_not_given_the_clinical_findings(
    client, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    _review(client, specialist, referral, decision="not_a_candidate", findings="sequestration")
    [to_agency] = outbox_for(referral.id, kind="review_outcome_agency")
    assert "sequestration" not in to_agency.body_text


def test_the_latest_review_governs_the_candidate_guard(
    client, session, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    _review(client, specialist, referral)
    session.add(
        Review(
            referral_id=referral.id,
            specialist_label="second opinion",
            decision="need_more_information",
            created_at=utcnow() + timedelta(seconds=1),
        )
    )
    session.commit()
    moved = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "plan_offered"},
        headers=coordinator.headers(),
    )
    assert moved.status_code == 409
    assert moved.json["guards"][0]["guard"] == "specialist_decided_candidate"


def test_another_agency_gets_404_for_reviews_whatever_the_stage(
    client, factory, agency, coordinator
):
    referral = factory.referral(agency)
    response = client.get(
        f"{API}/referrals/{referral.id}/reviews", headers=factory.agency().headers()
    )
    assert response.status_code == 404
