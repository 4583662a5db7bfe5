"""A person's export: one ZIP with data.json and their documents, only theirs, audited."""

from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.documents.models import Document
from crm.documents.upload import storage
from tests.helpers import assert_problem
from tests.privacy.support import API, new_referral


def export(client, caller, patient_id):
    return client.get(f"{API}/patients/{patient_id}/export", headers=caller.headers())


def unzip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def data_of(archive: zipfile.ZipFile) -> dict:
    return json.loads(archive.read("data.json"))


def test_the_export_is_a_zip_of_data_json_with_every_section(client, manager, case):
    data = data_of(unzip(export(client, manager, case.patient_id)))
    assert data["format"] == "crm.patient-export/1"
    assert set(data) >= {"patients", "referrals", "exported_at"}
    (referral,) = data["referrals"]
    assert set(referral) >= {
        "stage_history",
        "messages",
        "conversation",
        "check_ins",
        "plans",
        "travel",
        "documents",
        "intake",
        "notes",
        "reviews",
    }
    assert referral["reference"] == case.reference and referral["stage"] == "completed"


def test_the_export_carries_the_persons_details_messages_and_answers(client, manager, case):
    data = data_of(unzip(export(client, manager, case.patient_id)))
    (patient,) = data["patients"]
    assert patient["phone"] == case.patient.phone and patient["email"] == case.patient.email
    assert {c["channel"] for c in patient["consents"]} >= {"sms", "email"}
    (referral,) = data["referrals"]
    assert referral["messages"]["sent"] and all(
        m["body_text"] for m in referral["messages"]["sent"]
    )
    assert referral["messages"]["received"][0]["body"].startswith("It is Amira")
    assert referral["conversation"][0]["body"] == "Question from me"
    assert referral["check_ins"][0]["free_text"] == "the wound itches at night"
    (plan,) = referral["plans"]
    assert plan["status"] == "accepted" and plan["consent"]["plan_version"] == 1
    assert referral["travel"]["companion_name"] == "Karim Privacy"
    assert [t["to"] for t in referral["stage_history"]][-1] == "completed"


def test_the_documents_files_are_in_the_zip_as_stored(client, session, manager, case):
    archive = unzip(export(client, manager, case.patient_id))
    (document,) = session.scalars(select(Document).where(Document.referral_id == case.id))
    (listed,) = data_of(archive)["referrals"][0]["documents"]
    assert listed["sha256"] == document.sha256
    given = archive.read(listed["file"])
    assert given == storage().read_bytes(document.sha256, document.sealed)
    assert not given.startswith(b"CRMDOCv1")  # as the patient gave it, not as stored


def test_each_referral_comes_as_a_fhir_bundle_too(client, manager, case):
    archive = unzip(export(client, manager, case.patient_id))
    bundle = json.loads(archive.read(f"fhir/{case.reference}.json"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert {"Patient", "ServiceRequest", "Task", "DocumentReference"} <= kinds


def test_another_patients_data_is_absent(client, factory, agency, manager, case):
    other = new_referral(factory, agency, given_name="Zeynep", family_name="Elsewhere")
    body = unzip(export(client, manager, case.patient_id)).read("data.json").decode()
    assert "Elsewhere" not in body and other.patient.phone not in body
    assert other.reference not in body


def test_a_patient_linked_as_the_same_person_brings_their_referral(
    client, factory, agency, manager, case
):
    again = factory.referral(
        factory.agency(),
        patient={
            "given_name": case.patient.given_name,
            "family_name": case.patient.family_name,
            "phone": case.patient.phone,
            "email": "other.address@privacy.example",
            "date_of_birth": case.patient.date_of_birth.isoformat(),
        },
    )
    assert again.patient_id != case.patient_id
    data = data_of(unzip(export(client, manager, again.patient_id)))
    assert {r["id"] for r in data["referrals"]} == {case.id, again.id}
    assert {p["id"] for p in data["patients"]} == {case.patient_id, again.patient_id}


def test_the_export_is_streamed(client, manager, case):
    response = export(client, manager, case.patient_id)
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]


def test_the_export_is_audited_on_each_referral(client, session, manager, case):
    export(client, manager, case.patient_id).get_data()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "privacy.export")).one()
    assert event.referral_id == case.id and event.actor_id == manager.actor.id
    assert event.detail["patient_ids"] == [case.patient_id]


def test_an_agency_may_not_export(client, agency, case):
    assert_problem(export(client, agency, case.patient_id), 403, "forbidden")


def test_a_coordinator_may_not_export(client, coordinator, case):
    assert_problem(export(client, coordinator, case.patient_id), 403, "forbidden")


def test_an_admin_may_export(client, factory, case):
    assert export(client, factory.staff("admin"), case.patient_id).status_code == 200


def test_an_unknown_patient_is_a_404(client, manager):
    assert_problem(export(client, manager, 999_999), 404, "not-found")


def test_a_stored_file_gone_missing_is_named_not_fatal(client, session, manager, case):
    (document,) = session.scalars(select(Document).where(Document.referral_id == case.id))
    storage().path(document.sha256).unlink()
    archive = unzip(export(client, manager, case.patient_id))
    (listed,) = data_of(archive)["referrals"][0]["documents"]
    assert archive.read("missing.txt").decode() == listed["file"] + "\n"
    assert listed["file"] not in archive.namelist()
