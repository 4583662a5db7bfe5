"""Legal holds: set and lifted by managers, audited, and an erasure refused while one lasts."""

from __future__ import annotations

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.patients.models import Patient
from tests.helpers import assert_problem
from tests.privacy.support import API

WHY = {"reason": "claim 2026/77 pending at the court"}


def hold(client, caller, patient_id, body=None):
    return client.post(
        f"{API}/patients/{patient_id}/legal-hold", json=body or WHY, headers=caller.headers()
    )


def lift(client, caller, patient_id):
    return client.delete(
        f"{API}/patients/{patient_id}/legal-hold",
        json={"reason": "claim settled"},
        headers=caller.headers(),
    )


def erase(client, caller, patient_id):
    return client.post(
        f"{API}/patients/{patient_id}/erasure", json={"reason": "DSR-9"}, headers=caller.headers()
    )


def test_a_hold_records_who_why_and_when(client, manager, case):
    response = hold(client, manager, case.patient_id)
    assert response.status_code == 201
    body = response.get_json()
    assert body["set_by"] == manager.actor.label and body["reason"] == WHY["reason"]
    assert body["set_at"] and body["lifted_at"] is None


def test_an_erasure_under_a_hold_is_refused_with_the_reason(client, session, manager, case):
    hold(client, manager, case.patient_id)
    body = assert_problem(erase(client, manager, case.patient_id), 409, "erasure-refused")
    assert body["refusal"] == "legal_hold" and WHY["reason"] in body["detail"]
    session.expire_all()
    assert session.get(Patient, case.patient_id).phone is not None


def test_once_lifted_the_erasure_goes_ahead(client, manager, case):
    hold(client, manager, case.patient_id)
    lifted = lift(client, manager, case.patient_id)
    assert lifted.status_code == 200
    assert lifted.get_json()[0]["lifted_by"] == manager.actor.label
    assert erase(client, manager, case.patient_id).status_code == 200


def test_lifting_without_a_hold_is_a_409(client, manager, case):
    assert_problem(lift(client, manager, case.patient_id), 409, "conflict")


def test_setting_and_lifting_are_audited(client, session, manager, case):
    hold(client, manager, case.patient_id)
    lift(client, manager, case.patient_id)
    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("privacy.hold.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["privacy.hold.set", "privacy.hold.lift"]


def test_the_status_says_why_an_erasure_would_be_refused(client, manager, case):
    hold(client, manager, case.patient_id)
    status = client.get(f"{API}/patients/{case.patient_id}/privacy", headers=manager.headers())
    body = status.get_json()
    assert body["erasable"] is False and "legal hold" in body["refusal"]
    assert body["holds"][0]["reason"] == WHY["reason"]


def test_a_coordinator_may_not_set_a_hold(client, coordinator, case):
    assert_problem(hold(client, coordinator, case.patient_id), 403, "forbidden")


def test_an_agency_may_not_set_a_hold(client, agency, case):
    assert_problem(hold(client, agency, case.patient_id), 403, "forbidden")
