"""How we contact you, on the patient's private page (crm/portal/contact.py): each channel
with an address, on or off, switched by the patient; turning one on is their own act and
lifts their own STOP or unsubscribe, which an agency never can."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.messaging.models import InboundMessage
from crm.patients import consent_sources, links
from crm.patients.models import Patient
from crm.patients.operations import set_consent
from tests.helpers import assert_problem, field_errors

OTHER_SITE = {"Origin": "https://evil.example"}
SECTION = re.compile(r'<section id="contact".*?</section>', re.S)


def _token(referral) -> str:
    return links.token_for(links.link_for(referral.id))


def _section(client, referral) -> str:
    page = client.get(f"/p/{_token(referral)}")
    assert page.status_code == 200
    found = SECTION.search(page.get_data(as_text=True))
    assert found, "the page has the section"
    return found.group(0)


def _switch(client, referral, channel: str, on: bool, **headers: str):
    form = {"channel": channel, "on": "yes" if on else "no"}
    return client.post(f"/p/{_token(referral)}/contact", data=form, headers=headers)


def _consent(session, referral, channel: str):
    session.expire_all()
    return session.get(Patient, referral.patient_id).consent_for(channel)


def _referral(factory, **patient):
    return factory.referral(factory.agency(), patient={"language": "en", **patient})


def test_the_section_lists_each_channel_with_an_address_and_whether_it_is_on(client, factory):
    referral = _referral(factory, consents={"sms": True, "email": False, "source": "form"})
    section = _section(client, referral)
    assert "How we contact you" in section
    sms = re.search(r'<li class="channel" id="contact-sms">.*?</li>', section, re.S).group(0)
    email = re.search(r'<li class="channel" id="contact-email">.*?</li>', section, re.S).group(0)
    assert "On" in sms and "Turn off SMS messages" in sms
    assert "+49 1511 2345678" in sms, "the number as a person reads it"
    assert "Off" in email and "Turn on emails" in email
    assert referral.patient.email in email
    assert "contact-whatsapp" not in section, "WhatsApp only for a patient who uses it"


def test_a_channel_without_an_address_is_not_offered(client, factory):
    referral = _referral(factory, phone=None)
    section = _section(client, referral)
    assert "contact-sms" not in section and "contact-email" in section


def test_whatsapp_is_offered_once_the_patient_writes_to_us_there(client, factory, session):
    referral = _referral(factory)
    session.add(
        InboundMessage(
            provider_id="SMwa-contact-1",
            from_address=referral.patient.phone,
            channel="whatsapp",
            body="Hello",
            classification="reply",
            patient_id=referral.patient_id,
        )
    )
    session.commit()
    section = _section(client, referral)
    assert 'id="contact-whatsapp"' in section and "Turn on WhatsApp messages" in section


def test_turning_email_off_is_saved_audited_and_said(client, factory, session):
    referral = _referral(factory)
    response = _switch(client, referral, "email", False)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("done=contact#contact")
    consent = _consent(session, referral, "email")
    assert (consent.granted, consent.source) == (False, consent_sources.PATIENT_PAGE)
    [event] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.referral_id == referral.id, AuditEvent.action == "consent.email"
        )
    )
    assert (event.actor_type, event.actor_id) == ("patient", referral.patient_id)
    assert event.detail == {"granted": False, "source": consent_sources.PATIENT_PAGE}
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your choice has been saved." in page
    assert "Turn on emails" in page


def test_a_stopped_sms_is_turned_on_again_from_the_page(client, factory, session):
    referral = _referral(factory)
    set_consent(referral.patient, "sms", False, consent_sources.keyword("sms", "SMstop9"))
    session.commit()
    assert "Turn on SMS messages" in _section(client, referral)
    assert _switch(client, referral, "sms", True).status_code == 303
    consent = _consent(session, referral, "sms")
    assert (consent.granted, consent.source) == (True, consent_sources.PATIENT_PAGE)


def test_an_agency_cannot_lift_what_the_patient_turned_off_on_the_page(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    _switch(client, referral, "sms", False)
    response = client.patch(
        f"/api/v1/referrals/{referral.id}/patient",
        json={"consents": {"sms": True, "source": "new signed form"}},
        headers=agency.headers(),
    )
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "only the" in errors["consents.sms"] and "their private page" in errors["consents.sms"]
    assert not _consent(session, referral, "sms").granted


def test_a_post_from_another_site_changes_nothing(client, factory, session):
    referral = _referral(factory)
    response = _switch(client, referral, "email", False, **OTHER_SITE)
    assert response.status_code == 403
    assert _consent(session, referral, "email").granted


@pytest.mark.parametrize(
    ("channel", "on", "patient"),
    [("whatsapp", "yes", {}), ("sms", "yes", {"phone": None}), ("email", "maybe", {})],
    ids=["whatsapp-not-used", "no-phone", "not-yes-or-no"],
)
def test_a_channel_the_section_does_not_offer_changes_nothing(
    client, factory, session, channel, on, patient
):
    referral = _referral(factory, **patient)
    before = _consent(session, referral, channel)
    before = None if before is None else before.granted
    response = client.post(f"/p/{_token(referral)}/contact", data={"channel": channel, "on": on})
    assert response.status_code == 303 and "done=" not in response.headers["Location"]
    after = _consent(session, referral, channel)
    assert (None if after is None else after.granted) == before


def test_a_wrong_link_is_the_invalid_page(client):
    response = client.post("/p/not-a-token/contact", data={"channel": "sms", "on": "no"})
    assert response.status_code == 404


def test_with_every_channel_off_the_section_says_the_page_still_has_the_news(client, factory):
    referral = _referral(factory, consents={"sms": False, "email": False, "source": "form"})
    assert "We do not send you any messages now." in _section(client, referral)


def test_in_arabic_the_section_reads_right_to_left_with_the_addresses_as_written(client, factory):
    referral = _referral(factory, language="ar")
    page = client.get(f"/p/{_token(referral)}").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    section = SECTION.search(page).group(0)
    assert "كيف نتواصل معك" in section and "إيقاف الرسائل النصية" in section
    assert '<bdi class="address" dir="ltr">+49 1511 2345678</bdi>' in section
    assert "How we contact you" not in section and "Turn off" not in section
