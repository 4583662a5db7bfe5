"""Send a patient: the API's schema, operation, attribution and idempotency behind a form."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from crm.referrals.models import Referral
from tests.console.support import csrf_token
from tests.helpers import API
from tests.panel.support import FORM_KEY, signed_in_agency, text

NEW = "/agency/referrals/new"
FORM = {
    "procedure": "microdiscectomy",
    "agency_reference": "BMT-7",
    "patient-given_name": "Jonas",
    "patient-family_name": "Weber",
    "patient-date_of_birth": "1979-03-14",
    "patient-sex": "male",
    "patient-phone": "0151 12345678",
    "patient-email": "jonas@example.com",
    "patient-language": "de",
    "patient-country": "DE",
    "patient-time_zone": "Europe/Berlin",
    "patient-consents-sms": "on",
    "patient-consents-email": "on",
    "patient-consents-source": "signed intake form",
    "intake-complaints": "severe_persistent_low_back_pain\nradiating_leg_pain",
    "intake-symptom_duration_weeks": "20",
    "intake-pain_score": "7",
    "intake-treatments_tried-0-treatment": "physical_therapy",
    "intake-treatments_tried-0-duration_weeks": "8",
}


def _form(client) -> dict[str, str]:
    page = text(client.get(NEW))
    found = FORM_KEY.search(page)
    assert found, page
    return {"form_key": found.group(1), "csrf_token": csrf_token(client, NEW)}


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Referral))


def test_the_form_makes_the_agencys_referral_and_opens_its_page(client, session, factory):
    agency = factory.agency()
    signed_in_agency(client, session, agency.actor.agency_id)
    sent = client.post(NEW, data={**FORM, **_form(client)})
    assert sent.status_code == 303, text(sent)
    referral = session.scalars(select(Referral)).one()
    assert sent.headers["Location"].endswith(f"/agency/referrals/{referral.id}")
    assert referral.agency_id == agency.actor.agency_id
    assert referral.agency_reference == "BMT-7"
    assert referral.patient.phone == "+4915112345678"  # read in the patient's country
    assert referral.pain_score == 7 and referral.treatments_tried[0]["duration_weeks"] == 8
    assert {c.channel for c in referral.patient.consents if c.granted} == {"sms", "email"}
    page = text(client.get(sent.headers["Location"]))
    assert f"Sent: {referral.reference} for Jonas Weber." in page


def test_refusals_show_beside_their_fields_with_what_was_typed_kept(client, session, factory):
    agency = factory.agency()
    signed_in_agency(client, session, agency.actor.agency_id)
    typed = {**FORM, "patient-given_name": "", "patient-email": "jonas@", "intake-pain_score": "11"}
    refused = client.post(NEW, data={**typed, **_form(client)})
    assert refused.status_code == 422
    html = text(refused)
    assert re.search(r'id="patient-given_name-error">Missing data', html)
    assert 'id="patient-email-error"' in html and 'value="jonas@"' in html
    assert 'id="intake-pain_score-error"' in html and 'value="11"' in html
    assert 'value="Weber"' in html and "The referral was not sent." in html
    assert _count(session) == 0


def test_a_form_sent_twice_makes_one_referral(client, session, factory):
    agency = factory.agency()
    signed_in_agency(client, session, agency.actor.agency_id)
    data = {**FORM, **_form(client)}
    first = client.post(NEW, data=data)
    second = client.post(NEW, data=data)
    assert first.status_code == second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count(session) == 1


def test_a_corrected_form_after_a_refusal_is_sent(client, session, factory):
    agency = factory.agency()
    signed_in_agency(client, session, agency.actor.agency_id)
    refused = client.post(NEW, data={**FORM, "patient-country": "", **_form(client)})
    key = FORM_KEY.search(text(refused)).group(1)  # the page shown again carries a new key
    sent = client.post(NEW, data={**FORM, "form_key": key, "csrf_token": csrf_token(client, NEW)})
    assert sent.status_code == 303 and _count(session) == 1


def test_an_agency_reference_used_before_is_refused_beside_its_field(client, session, factory):
    agency = factory.agency()
    factory.referral(agency, agency_reference="BMT-7")
    signed_in_agency(client, session, agency.actor.agency_id)
    refused = client.post(NEW, data={**FORM, **_form(client)})
    assert refused.status_code == 409
    assert 'id="agency_reference-error"' in text(refused)
    assert "already used by another of your referrals" in text(refused)


def test_a_patient_another_agency_sent_first_is_already_in_care(client, session, factory):
    first, second = factory.agency("First Agency"), factory.agency()
    owner = client.post(
        f"{API}/referrals",
        json={
            "procedure": "microdiscectomy",
            "patient": {
                "given_name": "Jonas",
                "family_name": "Weber",
                "date_of_birth": "1979-03-14",
                "phone": "+4915112345678",
                "country": "DE",
                "time_zone": "Europe/Berlin",
            },
        },
        headers=first.headers(),
    ).json
    signed_in_agency(client, session, second.actor.agency_id)
    sent = client.post(NEW, data={**FORM, **_form(client)})
    page = text(client.get(sent.headers["Location"]))
    assert "Already in care at the hospital" in page
    assert "First Agency" not in page and owner["reference"] not in page


def test_the_form_offers_the_catalogues_procedures(client, session, factory):
    agency = factory.agency()
    signed_in_agency(client, session, agency.actor.agency_id)
    page = text(client.get(NEW))
    assert '<option value="microdiscectomy">Microdiscectomy</option>' in page
    assert '<label for="patient-time_zone">Time zone (required)</label>' in page
