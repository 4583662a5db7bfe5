"""Attribution: the first agency with a complete referral of a patient within the window
owns the patient; a later agency sees only a neutral status."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from crm.core.db import utcnow
from crm.referrals.models import Referral
from tests.duplicates.support import person
from tests.helpers import API


def _submit(client, caller, payload) -> dict:
    response = client.post(f"{API}/referrals", json=payload, headers=caller.headers())
    assert response.status_code == 201, response.json
    return response.json


SAME = {"phone": "+4915177770001", "date_of_birth": "1971-02-03"}


def test_the_first_agency_owns_a_new_patient(client, factory):
    agency = factory.agency()
    body = _submit(client, agency, person(**SAME))
    assert body["attribution"] == "attributed"


def test_a_second_agency_sending_the_same_patient_records_the_first_as_owner(
    client, factory, session
):
    first, second = factory.agency(), factory.agency()
    _submit(client, first, person(**SAME))
    later = _submit(client, second, person(**SAME))
    session.expire_all()
    assert session.get(Referral, later["id"]).attributed_agency_id == first.actor.agency_id


def test_the_losing_agency_sees_already_in_care_and_nothing_of_the_other_agency(client, factory):
    first, second = factory.agency("Owner Agency"), factory.agency("Late Agency")
    earlier = _submit(client, first, person(**SAME, given_name="Hidden", family_name="Name"))
    later = _submit(client, second, person(**SAME))
    response = client.get(f"{API}/referrals/{later['id']}", headers=second.headers())
    assert response.json["attribution"] == "already_in_care"
    text = response.get_data(as_text=True)
    assert "Owner Agency" not in text
    assert earlier["reference"] not in text
    assert "attributed_agency_id" not in text
    assert (
        client.get(f"{API}/referrals/{earlier['id']}", headers=second.headers()).status_code == 404
    )


def test_the_first_agency_keeps_its_attribution_when_another_sends_the_same_patient(
    client, factory
):
    first, second = factory.agency(), factory.agency()
    earlier = _submit(client, first, person(**SAME))
    _submit(client, second, person(**SAME))
    response = client.get(f"{API}/referrals/{earlier['id']}", headers=first.headers())
    assert response.json["attribution"] == "attributed"


def test_a_referral_older_than_the_window_no_longer_owns_the_patient(client, factory, session, app):
    first, second = factory.agency(), factory.agency()
    earlier = _submit(client, first, person(**SAME))
    days = app.config["CRM"]["ATTRIBUTION_WINDOW_DAYS"]
    session.execute(
        update(Referral)
        .where(Referral.id == earlier["id"])
        .values(created_at=utcnow() - timedelta(days=days + 1))
    )
    session.commit()
    later = _submit(client, second, person(**SAME))
    assert later["attribution"] == "attributed"


def test_a_lost_referral_does_not_own_the_patient(client, factory, coordinator):
    first, second = factory.agency(), factory.agency()
    earlier = _submit(client, first, person(**SAME))
    moved = client.post(
        f"{API}/referrals/{earlier['id']}/transitions",
        json={"to": "lost", "reason": "patient_withdrew"},
        headers=coordinator.headers(),
    )
    assert moved.status_code == 201, moved.json
    later = _submit(client, second, person(**SAME))
    assert later["attribution"] == "attributed"


def test_a_direct_enquiry_has_no_attribution(client, coordinator):
    body = _submit(client, coordinator, person(**SAME))
    assert body["attribution"] is None
