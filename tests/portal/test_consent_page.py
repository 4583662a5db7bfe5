"""Informed consent on the patient's page: the information before the consent checkbox in
the patient's language, its hash sent back and checked, the plan's PDF to keep, and the
checklist and pre-operative instructions once travel is booked."""

from __future__ import annotations

import hashlib
from html import unescape

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.patients import links
from crm.plans.queries import current_plan
from crm.portal.consent import plan_document
from crm.portal.plan_pdf import render_plan_pdf
from tests.plans.support import plan_body, reviewed_as_candidate
from tests.portal.shown import shown_fields
from tests.travel.support import trip_payload

API = "/api/v1"


def _offered(client, factory, language="de"):
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = reviewed_as_candidate(factory, agency, coordinator)
    referral.patient.language = language
    factory.session.flush()
    response = client.post(
        f"{API}/referrals/{referral.id}/plans", json=plan_body(), headers=coordinator.headers()
    )
    assert response.status_code == 201, response.json
    return referral, coordinator


def _url(referral, tail=""):
    return f"/p/{links.token_for(links.link_for(referral.id))}{tail}"


def _page(client, referral) -> str:
    response = client.get(_url(referral))
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def _accept(client, referral, **fields):
    data = {"plan_id": current_plan(referral.id).id, "ack_info": "yes", "ack_data": "yes"}
    return client.post(_url(referral, "/accept"), data={**data, **fields})


def test_the_information_comes_before_the_consent_in_the_patients_language(client, factory):
    referral, _ = _offered(client, factory, "de")
    page = _page(client, referral)
    for expected in (
        "Über Ihre Behandlung: Mikrodiskektomie",
        "Vollnarkose",
        "Die Operation dauert meist 45 bis 60 Minuten.",
        "Risiken, die Sie mit Ihrem Chirurgen besprechen",
        "Op. Dr. Example, Istanbul Spine Centre",
        "Planen Sie, 1 Tag vor Ihrer Aufnahme ins Krankenhaus anzukommen.",
        "Im Preis enthalten",
        "Anzahlung (Teil des Gesamtpreises)",
        "Dieses Angebot gilt bis",
    ):
        assert expected in page, expected
    assert page.index("Vollnarkose") < page.index('name="ack_info"')


def test_the_information_reads_in_arabic_for_an_arabic_speaker(client, factory):
    referral, _ = _offered(client, factory, "ar")
    page = _page(client, referral)
    assert "عن علاجك: استئصال القرص المجهري" in page
    assert "تخدير عام" in page
    assert "Über Ihre Behandlung" not in page


def test_the_page_sends_back_the_hash_of_the_information_it_shows(client, factory):
    referral, _ = _offered(client, factory, "en")
    fields = shown_fields(client, _url(referral))
    assert fields["plan_version"] == "1"
    from crm.portal.consent import information_for

    information = information_for(referral, current_plan(referral.id))
    assert fields["information_sha256"] == information.sha256
    assert information.sha256 == hashlib.sha256(information.text.encode()).hexdigest()
    page = _page(client, referral)
    for block in information.blocks:  # every word hashed is on the page
        assert block.heading in page
        assert all(paragraph in page for paragraph in block.paragraphs)


def test_accepting_on_the_page_keeps_version_language_and_hash(client, factory, session):
    referral, _ = _offered(client, factory, "tr")
    fields = shown_fields(client, _url(referral))
    response = _accept(client, referral, **fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    plan = current_plan(referral.id)
    assert plan.status == "accepted"
    assert plan.consent_plan_version == 1
    assert plan.consent_language == "tr"
    assert plan.consent_information_sha256 == fields["information_sha256"]
    assert "Mikrodiskektomi" in plan.consent_information_text


def test_a_plan_changed_since_the_page_was_shown_is_refused_asking_to_read_again(
    client, factory, session
):
    referral, coordinator = _offered(client, factory, "de")
    fields = shown_fields(client, _url(referral))
    first_plan_id = current_plan(referral.id).id
    changed = plan_body(deposit_minor=200000)
    response = client.post(
        f"{API}/referrals/{referral.id}/plans", json=changed, headers=coordinator.headers()
    )
    assert response.status_code == 201
    refused = client.post(
        _url(referral, "/accept"),
        data={"plan_id": first_plan_id, "ack_info": "yes", "ack_data": "yes", **fields},
    )
    assert refused.status_code == 409
    body = unescape(refused.get_data(as_text=True))
    assert "Bitte lesen Sie alles noch einmal, bevor Sie annehmen." in body
    assert "2.000,00" in body  # the new version's deposit is what the page shows now
    session.refresh(referral)
    assert referral.stage == "plan_offered"


def test_an_acceptance_without_the_information_hash_is_refused(client, factory, session):
    referral, _ = _offered(client, factory, "en")
    response = _accept(client, referral, plan_version="1")
    assert response.status_code == 409
    assert "Please read it again before you accept." in response.get_data(as_text=True)
    assert current_plan(referral.id).status == "offered"


def test_the_plan_pdf_is_a_real_pdf_and_its_download_is_audited(client, factory, session):
    referral, _ = _offered(client, factory, "ar")
    response = client.get(_url(referral, "/plan.pdf"))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-") and response.data.rstrip().endswith(b"%%EOF")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.referral_id == referral.id)
    ).all()
    assert "portal.plan_pdf" in actions


def test_the_plan_pdf_holds_the_plan_and_the_information(client, factory, app):
    referral, _ = _offered(client, factory, "en")
    plan = current_plan(referral.id)
    with app.test_request_context():
        document = plan_document(referral, plan, None)
    pdf = render_plan_pdf(document, font=None, compress=False)
    text = pdf.replace(b"\\(", b"(").replace(b"\\)", b")")
    for expected in (
        b"Your treatment plan, version 1",
        b"Microdiscectomy",  # a line item and the procedure
        b"Total price of the plan",
        b"7,100.00",
        b"About your treatment: Microdiscectomy",
        b"45 to 60 minutes",
        b"Risks to discuss with your surgeon",
        b"What to bring",
        b"Before the operation",
    ):
        assert expected in text, expected


def test_a_wrong_link_gets_no_pdf(client):
    response = client.get("/p/not-a-token/plan.pdf")
    assert response.status_code == 404
    assert response.mimetype == "text/html"  # the invalid-link page, not a document


def test_a_referral_without_a_plan_gets_no_pdf(client, factory):
    referral = factory.referral(factory.agency())
    assert client.get(_url(referral, "/plan.pdf")).status_code == 404


def test_the_checklist_and_instructions_appear_once_travel_is_booked(client, factory, session):
    referral, coordinator = _offered(client, factory, "de")
    assert "Vor der Reise" not in _page(client, referral)
    assert _accept(client, referral, **shown_fields(client, _url(referral))).status_code == 303
    assert "Vor der Reise" not in _page(client, referral)
    booked = client.put(
        f"{API}/referrals/{referral.id}/trip", json=trip_payload(), headers=coordinator.headers()
    )
    assert booked.status_code == 200, booked.json
    page = _page(client, referral)
    assert "Vor der Reise" in page
    assert "Ihre MRT-Bilder (auf CD, DVD oder USB-Stick)" in page
    assert "Setzen Sie kein Medikament eigenmächtig ab." in page


@pytest.mark.parametrize("language", ["en", "ar"])
def test_after_acceptance_the_page_keeps_the_pdf_link(client, factory, language):
    referral, _ = _offered(client, factory, language)
    assert _accept(client, referral, **shown_fields(client, _url(referral))).status_code == 303
    page = _page(client, referral)
    assert _url(referral, "/plan.pdf") in page
    assert 'name="ack_info"' not in page
