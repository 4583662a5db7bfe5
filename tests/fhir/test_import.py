from __future__ import annotations

import copy
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.factories import referral_payload
from tests.fhir.bundles import fhir_bundle
from tests.helpers import API, assert_problem, field_errors

FHIR_JSON = "application/fhir+json"
SUBMIT = f"{API}/referrals/fhir"
# What the FHIR mapping carries of the intake (the rest is the JSON API's only).
INTAKE = {"complaints": ["radiating_leg_pain"], "notes": "pain worse when sitting"}


def payload(**overrides):
    return {**referral_payload(**overrides), "intake": dict(INTAKE)}


def post_fhir(client, caller, bundle, **headers):
    return client.post(
        SUBMIT,
        data=json.dumps(bundle),
        headers=caller.headers(**headers),
        content_type=FHIR_JSON,
    )


def comparable(body):
    """A referral's detail with what differs between two submissions blanked."""
    body = copy.deepcopy(body)
    for key in (
        "id",
        "reference",
        "created_at",
        "updated_at",
        "stage_entered_at",
        "time_in_stages",
    ):
        body.pop(key)
    for key in ("id", "family_name", "email", "phone"):
        body["patient"].pop(key)
    body.pop("agency_reference")
    for consent in body["patient"]["consents"]:
        consent.pop("recorded_at")
    for move in body["history"]:
        move.pop("occurred_at")
    return body


def test_the_bundle_sent_is_itself_valid_fhir():
    Bundle.model_validate(fhir_bundle(payload()))


def test_a_bundle_is_submitted_as_the_same_referral_as_the_json_submit(client, agency):
    as_json = client.post(f"{API}/referrals", json=payload(), headers=agency.headers())
    second = payload(patient={"phone": "+4915199887766"})
    as_fhir = post_fhir(client, agency, fhir_bundle(second))
    assert (as_json.status_code, as_fhir.status_code) == (201, 201)
    assert as_fhir.mimetype == as_json.mimetype == "application/json"
    assert comparable(as_fhir.get_json()) == comparable(as_json.get_json())
    body = as_fhir.get_json()
    assert as_fhir.headers["Location"] == f"{API}/referrals/{body['id']}"
    assert body["agency_reference"] == second["agency_reference"]
    assert body["patient"]["phone"] == "+4915199887766"


def test_a_collection_bundle_is_taken_too(client, agency):
    response = post_fhir(client, agency, fhir_bundle(payload(), "collection"))
    assert response.status_code == 201, response.get_data(as_text=True)


def test_a_denied_consent_is_recorded_as_refused(client, agency):
    bundle = fhir_bundle(payload(patient={"consents": {"sms": False, "source": "phone call"}}))
    body = post_fhir(client, agency, bundle).get_json()
    assert [(c["channel"], c["granted"], c["source"]) for c in body["patient"]["consents"]] == [
        ("sms", False, "phone call")
    ]


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(client, agency):
    bundle = fhir_bundle(payload())
    first = post_fhir(client, agency, bundle, **{"Idempotency-Key": "fhir-1"})
    again = post_fhir(client, agency, bundle, **{"Idempotency-Key": "fhir-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]


def test_an_unknown_procedure_names_the_service_requests_code(client, agency):
    bundle = fhir_bundle(payload(procedure="heart_transplant"))
    body = assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    assert "heart_transplant" in field_errors(body)["Bundle.entry[1].resource.code"]


def test_a_procedure_in_another_code_system_names_the_code(client, agency):
    bundle = fhir_bundle(payload())
    bundle["entry"][1]["resource"]["code"]["coding"][0]["system"] = "http://snomed.info/sct"
    body = assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    assert "Bundle.entry[1].resource.code" in field_errors(body)


def test_a_bad_phone_names_the_telecom_it_came_from(client, agency):
    bundle = fhir_bundle(payload())
    bundle["entry"][0]["resource"]["telecom"][0]["value"] = "not a phone"
    body = assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    assert "Bundle.entry[0].resource.telecom[0].value" in field_errors(body)


def test_a_missing_time_zone_and_family_name_are_both_named(client, agency):
    bundle = fhir_bundle(payload())
    patient = bundle["entry"][0]["resource"]
    del patient["extension"]
    del patient["name"][0]["family"]
    errors = field_errors(
        assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    )
    assert {"Bundle.entry[0].resource.extension", "Bundle.entry[0].resource.name[0].family"} <= set(
        errors
    )


def test_a_bundle_without_a_service_request_says_so(client, agency):
    bundle = fhir_bundle(payload())
    del bundle["entry"][1]
    errors = field_errors(
        assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    )
    assert "ServiceRequest" in errors["Bundle.entry"]


def test_a_service_request_about_someone_else_names_its_subject(client, agency):
    bundle = fhir_bundle(payload())
    bundle["entry"][1]["resource"]["subject"] = {"reference": "Patient/elsewhere"}
    errors = field_errors(
        assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    )
    assert "Bundle.entry[1].resource.subject" in errors


def test_a_batch_bundle_is_refused_by_its_type(client, agency):
    bundle = fhir_bundle(payload())
    bundle["type"] = "batch"
    errors = field_errors(
        assert_problem(post_fhir(client, agency, bundle), 422, "validation-failed")
    )
    assert "Bundle.type" in errors


def test_something_not_a_bundle_is_refused(client, agency):
    response = post_fhir(client, agency, {"resourceType": "Patient"})
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "Bundle.resourceType" in errors


def test_a_reused_agency_reference_is_a_409_naming_the_identifier(client, agency):
    first = payload()
    assert post_fhir(client, agency, fhir_bundle(first)).status_code == 201
    again = payload(agency_reference=first["agency_reference"])
    body = assert_problem(post_fhir(client, agency, fhir_bundle(again)), 409, "conflict")
    assert body["field"] == "Bundle.entry[0].resource.identifier[0].value"


def test_plain_text_is_refused_as_the_wrong_media_type(client, agency):
    response = client.post(
        SUBMIT, data="hello", headers=agency.headers(), content_type="text/plain"
    )
    assert_problem(response, 415, "unsupported-media-type")


def test_the_exported_bundle_of_a_submitted_referral_names_what_was_sent(client, agency):
    sent = payload()
    created = post_fhir(client, agency, fhir_bundle(sent)).get_json()
    exported = client.get(f"{API}/referrals/{created['id']}/fhir", headers=agency.headers())
    patient = exported.get_json(force=True)["entry"][0]["resource"]
    assert patient["name"][0]["family"] == sent["patient"]["family_name"]
    assert patient["extension"][0]["valueCode"] == "Europe/Berlin"


@pytest.mark.parametrize("path", ["/referrals/fhir", "/referrals/{referral_id}/fhir"])
def test_both_endpoints_are_in_the_openapi_document(client, path):
    spec = client.get(f"{API}/openapi.json").get_json()
    assert f"{API}{path}" in spec["paths"]


def test_the_submit_documents_its_fhir_request_body(client):
    spec = client.get(f"{API}/openapi.json").get_json()
    operation = spec["paths"][f"{API}/referrals/fhir"]["post"]
    assert list(operation["requestBody"]["content"]) == [FHIR_JSON]
    get = spec["paths"][f"{API}/referrals/{{referral_id}}/fhir"]["get"]
    assert list(get["responses"]["200"]["content"]) == [FHIR_JSON]


def test_text_the_database_cannot_store_is_a_422_naming_where_it_is(client, agency):
    raw = json.dumps(fhir_bundle(payload())).replace('"Jonas"', '"Jo\\ud800nas"', 1)
    response = client.post(SUBMIT, data=raw, headers=agency.headers(), content_type=FHIR_JSON)
    body = assert_problem(response, 422, "validation-failed")
    assert "entry[0].resource.name[0].given[0]" in field_errors(body)
