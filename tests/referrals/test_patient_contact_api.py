"""Changing the patient's contact details and consent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.errors import ValidationFailed
from crm.patients import consent_sources
from crm.patients.operations import set_consent
from crm.referrals.models import Referral
from crm.referrals.operations import update_patient_contact
from tests.factories import referral_payload
from tests.helpers import API, assert_problem, field_errors


def _patch(client, caller, referral_id: int, body: dict):
    return client.patch(
        f"{API}/referrals/{referral_id}/patient", json=body, headers=caller.headers()
    )


def test_an_agency_updates_the_patients_contact_details(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(
        client,
        agency,
        referral.id,
        {
            "phone": "+905321234567",
            "email": "new.address@patient.example",
            "language": "tr",
            "time_zone": "Europe/Istanbul",
        },
    )
    assert response.status_code == 200, response.json
    patient = response.json["patient"]
    assert patient["phone"] == "+905321234567"
    assert patient["email"] == "new.address@patient.example"
    assert patient["language"] == "tr"
    assert patient["time_zone"] == "Europe/Istanbul"
    session.expire_all()
    stored = session.get(Referral, referral.id).patient
    assert (stored.phone, stored.language, stored.time_zone) == (
        "+905321234567",
        "tr",
        "Europe/Istanbul",
    )


def test_only_the_fields_sent_are_changed(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency, patient={"email": "keep.me@patient.example"})
    response = _patch(client, agency, referral.id, {"language": "en"})
    assert response.status_code == 200
    assert response.json["patient"]["email"] == "keep.me@patient.example"
    assert response.json["patient"]["phone"] == "+4915112345678"


def test_a_consent_change_is_recorded_with_its_source_and_audited(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(
        client, agency, referral.id, {"consents": {"sms": False, "source": "patient phoned"}}
    )
    assert response.status_code == 200, response.json
    consents = {c["channel"]: c for c in response.json["patient"]["consents"]}
    assert consents["sms"]["granted"] is False
    assert consents["sms"]["source"] == "patient phoned"
    assert consents["email"]["granted"] is True
    session.expire_all()
    assert session.get(Referral, referral.id).patient.may_contact("sms") is False
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "patient.contact_update", AuditEvent.referral_id == referral.id
        )
    ).one()
    assert event.actor_type == "agency"
    assert event.actor_id == agency.actor.agency_id
    assert event.detail["consents"] == {"sms": False}


def test_a_consent_given_without_a_source_names_the_agency(client, factory):
    agency = factory.agency()
    referral = factory.referral(agency, patient={"consents": {}})
    response = _patch(client, agency, referral.id, {"consents": {"email": True}})
    consent = response.json["patient"]["consents"][0]
    assert consent["channel"] == "email"
    assert agency.actor.label in consent["source"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "+1"}, "phone"),
        ({"email": "nobody"}, "email"),
        ({"language": "klingon"}, "language"),
        ({"time_zone": "Atlantis/Capital"}, "time_zone"),
        ({"consents": {"sms": "perhaps"}}, "consents.sms"),
        ({"given_name": "Someone Else"}, "given_name"),
        ({"country": "TR"}, "country"),
    ],
)
def test_a_bad_or_forbidden_contact_change_is_422_and_changes_nothing(
    client, factory, session, body, field
):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(client, agency, referral.id, {"language": "en"} | body)
    assert field in field_errors(assert_problem(response, 422, "validation-failed"))
    session.expire_all()
    assert session.get(Referral, referral.id).patient.language == "de"


# --- the catalogue -------------------------------------------------------------------------


def test_removing_both_phone_and_email_is_422_and_keeps_the_patient_reachable(
    client, factory, session
):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(client, agency, referral.id, {"phone": None, "email": None})
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "phone number or an email" in errors["phone"]
    session.expire_all()
    patient = session.get(Referral, referral.id).patient
    assert patient.phone == "+4915112345678"
    assert patient.email


def test_removing_one_channel_while_the_other_remains_is_fine(client, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(client, agency, referral.id, {"phone": None})
    assert response.status_code == 200, response.json
    assert response.json["patient"]["phone"] is None


def _stopped(session, referral_id: int, channel: str = "sms") -> None:
    """The patient replied STOP (SMS) or followed the unsubscribe link (email), as the
    inbound webhook and the link record it."""
    patient = session.get(Referral, referral_id).patient
    how = (
        consent_sources.UNSUBSCRIBE_LINK
        if channel == "email"
        else consent_sources.keyword(channel, "SMstop1")
    )
    set_consent(patient, channel, False, how)
    session.commit()


def _granted(session, referral_id: int, channel: str = "sms") -> bool:
    session.expire_all()
    return session.get(Referral, referral_id).patient.consent_for(channel).granted


def test_an_agency_cannot_lift_the_patients_own_stop(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    _stopped(session, referral.id)
    response = _patch(
        client, agency, referral.id, {"consents": {"sms": True, "source": "new signed form"}}
    )
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "only the patient can give it again" in errors["consents.sms"]
    assert not _granted(session, referral.id)


def test_hospital_staff_lift_it_only_saying_why(factory, session):
    """No staff door changes consent today (the PATCH is the agencies'); the operation
    holds the rule for the day one does."""
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = factory.referral(agency)
    _stopped(session, referral.id, "email")
    with pytest.raises(ValidationFailed) as refused:
        update_patient_contact(referral, {"consents": {"email": True}}, coordinator.actor)
    assert "say how they asked" in field_errors(refused.value.extensions)["consents.source"]
    session.rollback()
    said = {"consents": {"email": True, "source": "the patient asked by phone, 7 Dec"}}
    update_patient_contact(session.get(Referral, referral.id), said, coordinator.actor)
    session.commit()
    assert _granted(session, referral.id, "email")


def test_a_caller_cannot_word_its_source_as_the_patients_own_reply(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    body = {"consents": {"sms": False, "source": "SMS keyword (made up)"}}
    response = _patch(client, agency, referral.id, body)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "kept for the patient's own replies" in errors["consents.source"]
    assert _granted(session, referral.id)


@pytest.mark.parametrize(
    "source",
    [
        consent_sources.PATIENT_PAGE,
        "Patient-Page (scanned)",
        consent_sources.SUBSCRIBED_AGAIN,
        "subscribed again by phone",
    ],
)
def test_a_caller_cannot_word_its_source_as_the_patients_page_or_resubscribe(
    client, factory, session, source
):
    agency = factory.agency()
    referral = factory.referral(agency)
    _stopped(session, referral.id, "email")
    body = {"consents": {"email": True, "source": source}}
    response = _patch(client, agency, referral.id, body)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "kept for the patient's own replies" in errors["consents.source"]
    assert not _granted(session, referral.id, "email")


def test_an_agency_cannot_create_a_patient_with_the_patients_page_as_source(client, factory):
    agency = factory.agency()
    payload = referral_payload(
        patient={"consents": {"sms": True, "source": consent_sources.PATIENT_PAGE}}
    )
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "kept for the patient's own replies" in errors["consents.source"]
