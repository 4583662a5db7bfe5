"""Every read of a patient's data and every write leaves an audit event: who, what, which, when."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from tests.factories import referral_payload
from tests.helpers import API


def _events(session, action: str, referral_id: int | None = None) -> list[AuditEvent]:
    session.expire_all()
    statement = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if referral_id is not None:
        statement = statement.where(AuditEvent.referral_id == referral_id)
    return list(session.scalars(statement))


def _assert_by(event: AuditEvent, caller) -> None:
    assert event.actor_type == caller.actor.kind
    assert event.actor_id == caller.actor.id
    assert event.actor_label == caller.actor.label
    assert abs(utcnow() - event.occurred_at) < timedelta(minutes=1)


def test_submitting_a_referral_is_audited_as_a_create(client, factory, session):
    agency = factory.agency()
    response = client.post(f"{API}/referrals", json=referral_payload(), headers=agency.headers())
    referral_id = response.json["id"]
    [event] = _events(session, "referral.create", referral_id)
    _assert_by(event, agency)
    assert event.detail == {"procedure": "microdiscectomy"}
    assert event.request_id == response.headers["X-Request-ID"]


def test_reading_a_referral_is_audited_with_the_request(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = client.get(
        f"{API}/referrals/{referral.id}", headers=agency.headers(**{"X-Request-ID": "read-42"})
    )
    assert response.status_code == 200
    [event] = _events(session, "referral.read", referral.id)
    _assert_by(event, agency)
    assert event.request_id == "read-42"
    assert event.remote_addr


def test_staff_reads_are_audited_too(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    client.get(f"{API}/referrals/{referral.id}", headers=coordinator.headers())
    [event] = _events(session, "referral.read", referral.id)
    _assert_by(event, coordinator)


def test_listing_referrals_audits_which_ones_were_shown(client, factory, session):
    agency = factory.agency()
    shown = [factory.referral(agency) for _ in range(3)]
    response = client.get(f"{API}/referrals", query_string={"limit": 2}, headers=agency.headers())
    [event] = _events(session, "referral.list")
    _assert_by(event, agency)
    listed = [item["id"] for item in response.json["items"]]
    assert event.detail["referral_ids"] == listed
    assert set(listed) < {r.id for r in shown}


def test_an_empty_list_shows_no_patient_and_audits_nothing(client, factory, session):
    agency = factory.agency()
    client.get(f"{API}/referrals", headers=agency.headers())
    assert _events(session, "referral.list") == []


def test_a_contact_update_is_audited_with_the_fields_changed(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    client.patch(
        f"{API}/referrals/{referral.id}/patient",
        json={"email": "changed@patient.example", "time_zone": "Asia/Dubai"},
        headers=agency.headers(),
    )
    [event] = _events(session, "patient.contact_update", referral.id)
    _assert_by(event, agency)
    assert event.detail["fields"] == ["email", "time_zone"]
    assert event.detail["patient_id"] == referral.patient_id
    assert event.detail["consents"] == {}


def test_a_transition_is_audited_with_from_and_to(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "awaiting_mri"},
        headers=coordinator.headers(),
    )
    [event] = _events(session, "referral.transition", referral.id)
    _assert_by(event, coordinator)
    assert event.detail == {"from_stage": "enquiry", "to": "awaiting_mri"}


def test_assigning_an_owner_is_audited_with_before_and_after(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    client.put(
        f"{API}/referrals/{referral.id}/owner",
        json={"owner_id": coordinator.actor.id},
        headers=coordinator.headers(),
    )
    [event] = _events(session, "referral.assign", referral.id)
    _assert_by(event, coordinator)
    assert event.detail == {"previous": None, "owner_id": coordinator.actor.id}


def test_a_note_is_audited_without_its_text(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.post(
        f"{API}/referrals/{referral.id}/notes",
        json={"body": "patient anxious about anaesthesia"},
        headers=coordinator.headers(),
    )
    [event] = _events(session, "referral.note", referral.id)
    _assert_by(event, coordinator)
    assert event.detail == {"note_id": response.json["id"]}


def test_a_failed_write_leaves_no_audit_event(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "completed"},
        headers=coordinator.headers(),
    )
    assert response.status_code == 409
    assert _events(session, "referral.transition", referral.id) == []


def test_audit_details_hold_no_contact_or_health_data(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    payload = referral_payload(
        patient={"phone": "+905321234567", "email": "private.person@patient.example"},
        intake={"notes": "history of spinal stenosis"},
    )
    created = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    referral_id = created.json["id"]
    client.patch(
        f"{API}/referrals/{referral_id}/patient",
        json={"phone": "+905559876543"},
        headers=agency.headers(),
    )
    client.get(f"{API}/referrals/{referral_id}", headers=coordinator.headers())
    session.expire_all()
    trail = " ".join(
        str(event.detail)
        for event in session.scalars(
            select(AuditEvent).where(AuditEvent.referral_id == referral_id)
        )
    )
    for secret in ("5321234567", "5559876543", "private.person", "stenosis", "Weber"):
        assert secret not in trail
