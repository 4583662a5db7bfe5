"""The agency's referrals list and a referral's page: the API's own queries with the
agency Actor, in the user's time zone, with the neutral status for a patient another
agency already owns."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from crm.core.audit import AuditEvent
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import Stage
from tests.duplicates.support import person
from tests.helpers import API
from tests.panel.support import signed_in_agency, text

LIST = "/agency/referrals"


def _references(page) -> list[str]:
    return re.findall(r'class="ref" href="/agency/referrals/\d+">(R-\d+)<', text(page))


def test_the_list_shows_the_agencys_own_referrals_with_their_facts(client, session, factory):
    ours, theirs = factory.agency(), factory.agency()
    mine = factory.referral(ours, agency_reference="BMT-1042")
    other = factory.referral(theirs)
    signed_in_agency(client, session, ours.actor.agency_id)
    page = client.get(LIST)
    assert page.status_code == 200
    assert _references(page) == [mine.reference]
    html = text(page)
    assert "BMT-1042" in html and mine.patient.full_name in html
    assert "Microdiscectomy" in html and "Enquiry" in html
    assert other.reference not in html


def test_the_list_filters_by_stage(client, session, factory, without_clinical_guards, coordinator):
    agency = factory.agency()
    waiting = factory.referral(agency)
    factory.referral(agency)
    move_to_stage(waiting, Stage.AWAITING_MRI, coordinator.actor)
    session.commit()
    signed_in_agency(client, session, agency.actor.agency_id)
    page = client.get(f"{LIST}?stage=awaiting_mri")
    assert _references(page) == [waiting.reference]
    assert '<option value="awaiting_mri" selected>' in text(page)


def test_the_list_searches_like_the_apis_q_within_the_agencys_own(client, session, factory):
    ours, theirs = factory.agency(), factory.agency()
    muller = factory.referral(ours, patient={"given_name": "José", "family_name": "Müller"})
    factory.referral(ours)
    factory.referral(theirs, patient={"given_name": "Jose", "family_name": "Muller"})
    signed_in_agency(client, session, ours.actor.agency_id)
    assert _references(client.get(f"{LIST}?q=muller")) == [muller.reference]
    assert _references(client.get(f"{LIST}?q={muller.reference}")) == [muller.reference]


def test_an_agency_key_searches_its_own_referrals_with_q(client, factory):
    ours, theirs = factory.agency(), factory.agency()
    target = factory.referral(ours, patient={"family_name": "Kowalski"})
    factory.referral(ours)
    factory.referral(theirs, patient={"family_name": "Kowalski"})
    found = client.get(f"{API}/referrals?q=kowalski", headers=ours.headers()).json["items"]
    assert [item["id"] for item in found] == [target.id]


def test_a_filter_the_api_refuses_is_shown_beside_its_field(client, session, factory):
    agency = factory.agency()
    signed_in_agency(client, session, agency.actor.agency_id)
    page = client.get(f"{LIST}?q=x")
    assert page.status_code == 422
    assert 'id="q-error"' in text(page)
    assert "Length must be between 2 and 100" in text(page)


def test_the_list_pages_by_the_apis_cursor(client, session, factory, monkeypatch):
    monkeypatch.setattr("crm.panel.referrals.PAGE_SIZE", 2)
    agency = factory.agency()
    made = [factory.referral(agency) for _ in range(3)]
    signed_in_agency(client, session, agency.actor.agency_id)
    first = client.get(LIST)
    link = re.search(r'href="(/agency/referrals\?cursor=[^"]+)" rel="next"', text(first))
    assert link, text(first)
    second = client.get(link.group(1).replace("&amp;", "&"))
    shown = _references(first) + _references(second)
    assert sorted(shown) == sorted(r.reference for r in made)
    assert "First page" in text(second)


def test_the_list_is_audited_as_the_apis(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    signed_in_agency(client, session, agency.actor.agency_id)
    client.get(LIST)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "referral.list").order_by(AuditEvent.id)
    ).all()[-1]
    assert event.actor_type == "agency" and referral.id in event.detail["referral_ids"]


def _same_patient(client, first, second) -> tuple[dict, dict]:
    same = {"phone": "+4915177770099", "date_of_birth": "1971-02-03"}
    owner = client.post(
        f"{API}/referrals",
        json=person(**same, given_name="Hidden", family_name="Owner"),
        headers=first.headers(),
    ).json
    late = client.post(f"{API}/referrals", json=person(**same), headers=second.headers()).json
    return owner, late


def test_a_patient_another_agency_owns_shows_only_already_in_care(client, session, factory):
    first, second = factory.agency("Owner Agency"), factory.agency("Late Agency")
    owner, late = _same_patient(client, first, second)
    assert late["attribution"] == "already_in_care"
    signed_in_agency(client, session, second.actor.agency_id)
    listed = text(client.get(LIST))
    assert "Already in care at the hospital" in listed
    page = text(client.get(f"/agency/referrals/{late['id']}"))
    assert "Already in care at the hospital" in page
    for secret in ("Owner Agency", owner["reference"], "Hidden", "attributed_agency"):
        assert secret not in listed and secret not in page, secret


def test_the_owning_agency_sees_no_neutral_status(client, session, factory):
    first, second = factory.agency(), factory.agency()
    owner, _ = _same_patient(client, first, second)
    signed_in_agency(client, session, first.actor.agency_id)
    assert "Already in care" not in text(client.get(f"/agency/referrals/{owner['id']}"))


def test_the_page_shows_the_history_in_the_users_time_zone(
    client, session, factory, coordinator, without_clinical_guards
):
    agency = factory.agency()
    referral = factory.referral(agency)
    move_to_stage(referral, Stage.AWAITING_MRI, coordinator.actor, note="staff-only note")
    session.commit()
    signed_in_agency(client, session, agency.actor.agency_id, time_zone="Asia/Tokyo")
    page = text(client.get(f"/agency/referrals/{referral.id}"))
    assert "Stage history" in page
    assert "Enquiry → <strong>Awaiting MRI</strong>" in page
    assert "JST" in page  # Asia/Tokyo's times
    assert "staff-only note" not in page  # as the API, agencies never see staff's notes


def test_the_page_says_the_hospital_waits_for_the_mri(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    signed_in_agency(client, session, agency.actor.agency_id)
    page = text(client.get(f"/agency/referrals/{referral.id}"))
    assert "The hospital is waiting for:</strong> The MRI of the affected area" in page


def test_days_in_stage_count_from_when_the_stage_was_entered(client, session, factory):
    from datetime import timedelta

    from crm.core.db import utcnow

    agency = factory.agency()
    referral = factory.referral(agency)
    session.execute(
        update(Referral)
        .where(Referral.id == referral.id)
        .values(stage_entered_at=utcnow() - timedelta(days=4, hours=1))
    )
    session.commit()
    signed_in_agency(client, session, agency.actor.agency_id)
    assert "<td>4</td>" in text(client.get(LIST))
