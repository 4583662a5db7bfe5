"""Submitting a referral: what is stored, what is refused and how it is said."""

from __future__ import annotations

import pytest

from crm.patients.models import Patient
from crm.referrals.models import Referral
from tests.factories import referral_payload
from tests.helpers import API, assert_problem, field_errors
from tests.referrals.support import (
    count_rows,
    submit,
)


def test_an_agency_submits_a_referral_and_gets_it_back_with_its_location(client, factory, session):
    agency = factory.agency()
    response = submit(client, agency, agency_reference="BMT-0001")
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/referrals/{body['id']}")
    assert body["stage"] == "enquiry"
    assert body["procedure"] == "microdiscectomy"
    assert body["agency_reference"] == "BMT-0001"
    assert body["agency"] == {"id": agency.actor.agency_id, "name": agency.actor.label}
    assert body["owner"] is None
    assert body["patient"]["phone"] == "+4915112345678"
    assert body["intake"]["pain_score"] == 7
    assert body["intake"]["treatments_tried"] == [
        {"treatment": "physical_therapy", "duration_weeks": 8}
    ]
    assert body["history"][0]["from"] is None
    assert body["history"][0]["to"] == "enquiry"
    assert body["history"][0]["actor_type"] == "agency"
    assert "awaiting_mri" in body["allowed_transitions"]
    assert "notes" not in body
    session.expire_all()
    stored = session.get(Referral, body["id"])
    assert stored.agency_id == agency.actor.agency_id
    assert stored.patient.agency_id == agency.actor.agency_id
    assert {c.channel: c.granted for c in stored.patient.consents} == {"sms": True, "email": True}


def test_staff_submit_a_direct_enquiry_that_belongs_to_no_agency(client, factory):
    coordinator = factory.staff("coordinator")
    response = submit(client, coordinator, agency_reference=None)
    assert response.status_code == 201, response.json
    assert response.json["agency"] is None
    assert response.json["history"][0]["actor_type"] == "staff"


def test_a_national_phone_number_is_stored_in_e164_using_the_patients_country(client, factory):
    agency = factory.agency()
    response = submit(client, agency, patient={"phone": "0151 12345678", "country": "DE"})
    assert response.status_code == 201, response.json
    assert response.json["patient"]["phone"] == "+4915112345678"


def test_country_language_and_email_are_normalised(client, factory):
    agency = factory.agency()
    response = submit(
        client,
        agency,
        patient={"country": "de", "language": "pt_BR", "email": "Jonas@Patient.EXAMPLE"},
    )
    assert response.status_code == 201, response.json
    patient = response.json["patient"]
    assert patient["country"] == "DE"
    assert patient["language"] == "pt-BR"
    assert patient["email"] == "Jonas@patient.example"


def test_an_email_alone_is_enough_to_reach_the_patient(client, factory):
    agency = factory.agency()
    response = submit(client, agency, patient={"phone": None})
    assert response.status_code == 201, response.json
    assert response.json["patient"]["phone"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"patient": {"phone": "+49123"}}, "patient.phone"),
        ({"patient": {"phone": "call me maybe"}}, "patient.phone"),
        ({"patient": {"email": "not-an-email"}}, "patient.email"),
        ({"patient": {"email": "jonas@"}}, "patient.email"),
        ({"patient": {"time_zone": "Mars/Olympus_Mons"}}, "patient.time_zone"),
        ({"patient": {"time_zone": "europe/berlin"}}, "patient.time_zone"),
        ({"patient": {"language": "klingon"}}, "patient.language"),
        ({"patient": {"language": "zz"}}, "patient.language"),
        ({"patient": {"country": "XX"}}, "patient.country"),
        ({"patient": {"country": "Germany"}}, "patient.country"),
        ({"patient": {"date_of_birth": "2999-01-01"}}, "patient.date_of_birth"),
        ({"patient": {"date_of_birth": "1850-01-01"}}, "patient.date_of_birth"),
        ({"patient": {"date_of_birth": "1980-13-45"}}, "patient.date_of_birth"),
        ({"patient": {"sex": "robot"}}, "patient.sex"),
        ({"patient": {"given_name": ""}}, "patient.given_name"),
        ({"intake": {"pain_score": 11}}, "intake.pain_score"),
        ({"intake": {"pain_score": -1}}, "intake.pain_score"),
        ({"intake": {"pain_score": "severe"}}, "intake.pain_score"),
        ({"intake": {"symptom_duration_weeks": -3}}, "intake.symptom_duration_weeks"),
        (
            {"intake": {"treatments_tried": [{"treatment": "rest", "duration_weeks": -1}]}},
            "intake.treatments_tried[0].duration_weeks",
        ),
        ({"procedure": "time_travel"}, "procedure"),
    ],
)
def test_a_bad_value_is_422_naming_the_field_and_nothing_is_stored(
    client, factory, session, overrides, field
):
    agency = factory.agency()
    before = (count_rows(session, Referral), count_rows(session, Patient))
    response = submit(client, agency, **overrides)
    body = assert_problem(response, 422, "validation-failed")
    errors = field_errors(body)
    assert field in errors, errors
    assert errors[field]
    assert field in body["detail"]
    assert (count_rows(session, Referral), count_rows(session, Patient)) == before


def test_a_patient_with_neither_phone_nor_email_is_422_saying_how_to_reach_them(client, factory):
    agency = factory.agency()
    response = submit(client, agency, patient={"phone": None, "email": None})
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "phone number or an email" in errors["patient.phone"]


def test_a_missing_required_field_is_named(client, factory):
    agency = factory.agency()
    payload = referral_payload()
    del payload["patient"]["time_zone"]
    del payload["procedure"]
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert {"patient.time_zone", "procedure"} <= set(errors)


def test_every_bad_field_is_named_in_one_response(client, factory):
    agency = factory.agency()
    response = submit(
        client,
        agency,
        patient={"email": "nope", "time_zone": "Nowhere/Town", "country": "QQ"},
        intake={"pain_score": 99},
    )
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert {
        "patient.email",
        "patient.time_zone",
        "patient.country",
        "intake.pain_score",
    } <= set(errors)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"stage": "completed"}, "stage"),
        ({"agency_id": 1}, "agency_id"),
        ({"owner_id": 1}, "owner_id"),
        ({"patient": {"agency_id": 1}}, "patient.agency_id"),
    ],
)
def test_a_field_a_client_may_not_set_is_refused(client, factory, overrides, field):
    agency = factory.agency()
    response = submit(client, agency, **overrides)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert field in errors


def test_an_agency_reference_used_twice_by_the_same_agency_is_409(client, factory, session):
    agency = factory.agency()
    assert submit(client, agency, agency_reference="DUP-1").status_code == 201
    before = count_rows(session, Referral)
    again = submit(client, agency, agency_reference="DUP-1")
    body = assert_problem(again, 409, "conflict")
    assert body["field"] == "agency_reference"
    assert count_rows(session, Referral) == before


# --- listing and paging -----------------------------------------------------------------
