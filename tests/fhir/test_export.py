from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.fhir import codes
from tests.fhir.support import (
    HOSPITAL_ONLY_BODY,
    PATIENT_WROTE,
    fhir_url,
    resources,
    rich_referral,
)
from tests.helpers import assert_problem

pytestmark = pytest.mark.usefixtures("without_clinical_guards")

EVERY_KIND = {
    "Patient",
    "Organization",
    "ServiceRequest",
    "Task",
    "DocumentReference",
    "Communication",
    "QuestionnaireResponse",
    "Consent",
}


@pytest.fixture
def referral(factory, agency, coordinator):
    return rich_referral(factory, agency, coordinator)


def export(client, caller, referral_id, **query):
    response = client.get(fhir_url(referral_id), headers=caller.headers(), query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_a_rich_referral_exports_a_bundle_that_fhir_resources_parses_in_full(
    client, coordinator, referral
):
    response = export(client, coordinator, referral.id)
    assert response.mimetype == "application/fhir+json"
    bundle = Bundle.model_validate(response.get_json(force=True))
    assert bundle.type == "collection"
    kinds = {entry.resource.get_resource_type() for entry in bundle.entry}
    assert kinds == EVERY_KIND


def test_the_format_parameter_json_is_accepted(client, coordinator, referral):
    response = export(client, coordinator, referral.id, _format="json")
    Bundle.model_validate(response.get_json(force=True))


def test_an_unknown_format_is_a_422(client, coordinator, referral):
    response = client.get(
        fhir_url(referral.id), headers=coordinator.headers(), query_string={"_format": "xml"}
    )
    assert_problem(response, 422, "validation-failed")


def test_the_patient_carries_both_references_language_and_contact(client, agency, referral):
    bundle = export(client, agency, referral.id).get_json(force=True)
    (patient,) = resources(bundle, "Patient")
    identifiers = {i["system"]: i["value"] for i in patient["identifier"]}
    assert identifiers[codes.HOSPITAL_REFERENCE] == referral.reference
    assert identifiers[codes.AGENCY_REFERENCE] == referral.agency_reference
    assert patient["birthDate"] == "1980-04-02"
    assert patient["communication"][0]["language"]["coding"][0]["code"] == "de"
    assert {t["system"] for t in patient["telecom"]} == {"phone", "email"}


def test_the_service_request_names_the_procedure_and_the_agency_as_requester(
    client, agency, referral
):
    bundle = export(client, agency, referral.id).get_json(force=True)
    (request,) = resources(bundle, "ServiceRequest")
    (organization,) = resources(bundle, "Organization")
    assert request["code"]["coding"][0] == {
        "system": codes.PROCEDURE,
        "code": "microdiscectomy",
        "display": referral.procedure.name,
    }
    assert request["requester"]["reference"] == codes.full_url("Organization", organization["id"])
    assert organization["name"] == agency.actor.label
    assert (request["status"], request["intent"]) == ("active", "order")


def test_the_task_holds_the_stage_and_every_stage_entered(client, agency, referral):
    bundle = export(client, agency, referral.id).get_json(force=True)
    (task,) = resources(bundle, "Task")
    assert task["businessStatus"]["coding"][0]["code"] == "plan_accepted"
    assert task["status"] == "accepted"
    entered = [o["type"]["coding"][0]["code"] for o in task["output"]]
    assert entered == ["enquiry", "awaiting_mri", "mri_review", "plan_offered", "plan_accepted"]


def test_a_document_is_metadata_and_a_download_url_never_its_bytes(client, agency, referral):
    bundle = export(client, agency, referral.id).get_json(force=True)
    (document,) = resources(bundle, "DocumentReference")
    attachment = document["content"][0]["attachment"]
    assert attachment["contentType"] == "application/zip"
    assert attachment["size"] == 123456
    assert attachment["url"].endswith("/content")
    assert "data" not in attachment
    assert document["identifier"][0] == {"system": codes.DOCUMENT_SHA256, "value": "ab" * 32}


def test_a_check_in_is_a_questionnaire_response_answered_by_question_code(
    client, coordinator, referral
):
    bundle = export(client, coordinator, referral.id).get_json(force=True)
    (response,) = resources(bundle, "QuestionnaireResponse")
    answers = {item["linkId"]: item["answer"][0] for item in response["item"]}
    assert answers["pain_score"] == {"valueInteger": 3}
    assert answers["fever"] == {"valueBoolean": False}
    assert answers["free_text"] == {"valueString": "feeling better"}


def test_the_consents_are_each_channel_and_the_plans_information_by_its_hash(
    client, agency, referral
):
    bundle = export(client, agency, referral.id).get_json(force=True)
    consents = resources(bundle, "Consent")
    channels = {
        c["category"][0]["coding"][0]["code"]: c["provision"]["type"]
        for c in consents
        if c["scope"]["coding"][0]["code"] == "patient-privacy"
    }
    assert channels == {"sms": "permit", "email": "permit"}
    (plan,) = [c for c in consents if c["scope"]["coding"][0]["code"] == "treatment"]
    assert plan["policy"][0]["uri"].endswith(f":v1:de:sha256:{'cd' * 32}")


def test_staff_see_the_patient_thread_and_every_message(client, coordinator, referral):
    bundle = export(client, coordinator, referral.id).get_json(force=True)
    bodies = [
        payload["contentString"]
        for c in resources(bundle, "Communication")
        for payload in c.get("payload", [])
    ]
    assert PATIENT_WROTE in bodies
    assert HOSPITAL_ONLY_BODY in bodies


def test_an_agency_sees_no_hospital_internal_message_no_thread_and_no_body(
    client, agency, referral
):
    response = export(client, agency, referral.id)
    bundle = response.get_json(force=True)
    communications = resources(bundle, "Communication")
    audiences = {c["category"][1]["coding"][0]["code"] for c in communications}
    assert "patient" in audiences
    assert audiences <= {"patient", "agency"}
    assert all("payload" not in c for c in communications)
    text = response.get_data(as_text=True)
    assert HOSPITAL_ONLY_BODY not in text
    assert PATIENT_WROTE not in text


def test_an_agency_sees_no_check_in_answers(client, agency, referral):
    bundle = export(client, agency, referral.id).get_json(force=True)
    assert resources(bundle, "QuestionnaireResponse") == []


def test_another_agencys_referral_is_a_404(client, factory, referral):
    response = client.get(fhir_url(referral.id), headers=factory.agency().headers())
    assert_problem(response, 404, "not-found")


def test_a_missing_referral_is_the_same_404(client, agency):
    assert_problem(client.get(fhir_url(999999), headers=agency.headers()), 404, "not-found")


def test_the_export_is_audited_as_a_referral_read(client, session, agency, referral):
    export(client, agency, referral.id)
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.referral_id == referral.id, AuditEvent.action == "referral.read"
        )
    ).all()
    assert [(e.actor_type, e.actor_id, e.detail) for e in events] == [
        ("agency", agency.actor.agency_id, {"format": "fhir"})
    ]


def test_the_agency_that_lost_attribution_sees_already_in_care_and_no_other_agency(
    client, factory, agency, referral
):
    second = factory.agency()
    duplicate = factory.referral(
        second,
        patient={
            "given_name": referral.patient.given_name,
            "family_name": referral.patient.family_name,
            "email": referral.patient.email,
        },
    )
    response = export(client, second, duplicate.id)
    bundle = response.get_json(force=True)
    (request,) = resources(bundle, "ServiceRequest")
    assert request["extension"] == [{"url": codes.ATTRIBUTION, "valueCode": "already_in_care"}]
    (organization,) = resources(bundle, "Organization")
    assert organization["name"] == second.actor.label
    assert agency.actor.label not in response.get_data(as_text=True)


def test_a_direct_enquiry_has_no_requester(client, factory, coordinator):
    referral = factory.referral(coordinator, agency_reference=None)
    bundle = export(client, coordinator, referral.id).get_json(force=True)
    Bundle.model_validate(bundle)
    (request,) = resources(bundle, "ServiceRequest")
    assert "requester" not in request
    assert resources(bundle, "Organization") == []
