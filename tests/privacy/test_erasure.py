"""Erasure on request: the person pseudonymised in every table, the books and numbers kept."""

from __future__ import annotations

from sqlalchemy import select

from crm.commission.models import CommissionEntry
from crm.conversation.models import ConversationMessage
from crm.core.audit import AuditEvent
from crm.documents.models import Document
from crm.followup.models import CheckIn
from crm.messaging.models import InboundMessage
from crm.patients.models import Patient, PatientLink
from crm.privacy.models import PatientErasure
from crm.referrals.models import ReferralNote
from crm.referrals.sla import service_levels
from crm.reports.rollups import rebuild
from crm.travel.models import Trip
from tests.helpers import assert_problem
from tests.privacy.support import API, new_referral, patient_messages, stored_files, treated
from tests.reports.support import rollup_rows

REASON = {"reason": "request DSR-2026-014 by email"}


def erase(client, caller, patient_id, body=None):
    return client.post(
        f"{API}/patients/{patient_id}/erasure", json=body or REASON, headers=caller.headers()
    )


def erased(client, session, manager, case):
    response = erase(client, manager, case.patient_id)
    assert response.status_code == 200, response.get_data(as_text=True)
    session.expire_all()
    return response.get_json()


def test_the_patients_identity_is_replaced(client, session, manager, case):
    erased(client, session, manager, case)
    patient = session.get(Patient, case.patient_id)
    assert (patient.given_name, patient.family_name) == ("Erased", "patient")
    assert (patient.phone, patient.email, patient.date_of_birth) == (None, None, None)
    assert patient.country == "DE"  # what the reports group by stays


def test_the_search_no_longer_finds_the_name(client, session, manager, case):
    name = case.patient.family_name.lower()
    erased(client, session, manager, case)
    assert name not in case.search_text


def test_messages_sent_lose_their_address_and_bodies(client, session, manager, case):
    assert patient_messages(session, case)
    erased(client, session, manager, case)
    for message in patient_messages(session, case):
        assert (message.to_address, message.body_text, message.body_html) == ("", "", None)
        assert message.subject is None and message.template_values is None


def test_replies_and_the_conversation_are_blanked(client, session, manager, case):
    erased(client, session, manager, case)
    reply = session.scalars(select(InboundMessage).where(InboundMessage.referral_id == case.id))
    assert [(r.body, r.from_address) for r in reply] == [("", "")]
    bodies = session.scalars(
        select(ConversationMessage.body).where(ConversationMessage.referral_id == case.id)
    )
    assert set(bodies) == {""}


def test_check_in_free_text_goes_and_the_scores_stay(client, session, manager, case):
    erased(client, session, manager, case)
    check_ins = session.scalars(select(CheckIn).where(CheckIn.referral_id == case.id)).all()
    assert all(c.free_text is None for c in check_ins)
    assert any(c.answered_at for c in check_ins)


def test_notes_intake_and_the_companion_are_blanked(client, session, manager, case):
    erased(client, session, manager, case)
    notes = session.scalars(select(ReferralNote.body).where(ReferralNote.referral_id == case.id))
    assert set(notes) == {""}
    assert case.intake_notes == ""
    trip = session.scalars(select(Trip).where(Trip.referral_id == case.id)).one()
    assert trip.companion_name is None and trip.hotel_name == "Hotel Example"


def test_documents_are_deleted_from_the_table_and_the_storage(client, session, manager, case):
    files = stored_files(case, session)
    assert files and all(f.exists() for f in files)
    body = erased(client, session, manager, case)
    assert body["documents_removed"] == 1 and body["files_removed"] == 1
    assert not session.scalars(select(Document).where(Document.referral_id == case.id)).all()
    assert not any(f.exists() for f in files)


def test_a_file_another_document_shares_stays_in_storage(
    client, session, factory, agency, manager, case
):
    (document,) = session.scalars(select(Document).where(Document.referral_id == case.id))
    other = new_referral(factory, agency)
    twin = {c.name: getattr(document, c.name) for c in Document.__table__.columns if c.name != "id"}
    session.add(Document(**{**twin, "referral_id": other.id}))
    session.commit()
    body = erased(client, session, manager, case)
    assert body["documents_removed"] == 1 and body["files_removed"] == 0
    assert stored_files(other, session)[0].exists()


def test_the_private_links_are_revoked(client, session, manager, case):
    erased(client, session, manager, case)
    links = session.scalars(select(PatientLink).where(PatientLink.referral_id == case.id)).all()
    assert links and all(link.revoked_at is not None for link in links)


def test_the_commission_ledger_is_untouched(client, session, manager, case):
    def ledger():
        columns = list(CommissionEntry.__table__.columns)
        return session.execute(select(*columns).order_by(CommissionEntry.id)).all()

    before = ledger()
    assert session.scalars(
        select(CommissionEntry).where(CommissionEntry.referral_id == case.id)
    ).all()
    erased(client, session, manager, case)
    assert ledger() == before


def test_the_audit_trail_keeps_every_event_and_adds_the_erasure(client, session, manager, case):
    def trail():
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        return [(e.id, e.action, e.referral_id, e.actor_label) for e in rows]

    before = trail()
    erased(client, session, manager, case)
    after = trail()
    assert after[: len(before)] == before
    (erasure,) = [e for e in after[len(before) :] if e[1] == "privacy.erase"]
    assert erasure[2] == case.id and erasure[3] == manager.actor.label


def _message_totals(rows) -> dict[tuple, tuple[int, int]]:
    """report_message_daily summed over status: (day, channel, agency, procedure)."""
    totals: dict[tuple, tuple[int, int]] = {}
    for day, channel, _status, _reason, agency_id, procedure, messages, segments in rows:
        key = (day, channel, agency_id, procedure)
        old = totals.get(key, (0, 0))
        totals[key] = (old[0] + messages, old[1] + segments)
    return totals


def test_the_report_rollups_are_the_same_and_a_rebuild_agrees(app, client, session, manager, case):
    before = rollup_rows(session)
    funnel = client.get(f"{API}/reports/funnel", headers=manager.headers()).get_json()
    agencies = client.get(f"{API}/reports/agencies", headers=manager.headers()).get_json()
    erased(client, session, manager, case)
    kept = rollup_rows(session)
    rebuild(service_levels(app.config["CRM"]))
    for after in (kept, rollup_rows(session)):
        messages_before = before["report_message_daily"]
        assert _message_totals(after.pop("report_message_daily")) == _message_totals(
            messages_before
        )
        assert after == {k: v for k, v in before.items() if k != "report_message_daily"}
    assert client.get(f"{API}/reports/funnel", headers=manager.headers()).get_json() == funnel
    assert client.get(f"{API}/reports/agencies", headers=manager.headers()).get_json() == agencies


def test_what_was_still_queued_is_cancelled_and_counted_so(client, session, manager, case):
    queued = [m.id for m in patient_messages(session, case) if m.status == "queued"]
    assert queued  # the completion's own messages, not sent yet
    erased(client, session, manager, case)
    statuses = {m.id: (m.status, m.suppressed_reason) for m in patient_messages(session, case)}
    assert {statuses[i] for i in queued} == {("cancelled", "patient erased")}


def test_erasing_twice_is_fine_and_keeps_the_first_record(client, session, manager, case):
    erased(client, session, manager, case)
    first = session.get(PatientErasure, case.patient_id).erased_at
    again = erase(client, manager, case.patient_id, {"reason": "asked again"})
    assert again.status_code == 200 and again.get_json()["already_erased"] is True
    session.expire_all()
    record = session.get(PatientErasure, case.patient_id)
    assert record.erased_at == first and record.reason == REASON["reason"]


def test_another_patient_is_untouched(client, session, factory, agency, manager, case):
    other = new_referral(factory, agency, family_name="Untouched")
    erased(client, session, manager, case)
    assert session.get(Patient, other.patient_id).family_name == "Untouched"
    assert session.get(Patient, other.patient_id).phone is not None


def test_an_open_treatment_refuses_with_the_reason(
    client, session, factory, agency, coordinator, manager, no_stay_guards
):
    referral = treated(client, factory, agency, coordinator)
    response = erase(client, manager, referral.patient_id)
    body = assert_problem(response, 409, "erasure-refused")
    assert body["refusal"] == "open_treatment" and "in_treatment" in body["detail"]
    session.expire_all()
    assert session.get(Patient, referral.patient_id).phone is not None


def test_a_referral_still_in_the_pipeline_refuses(client, factory, agency, manager):
    referral = new_referral(factory, agency)
    body = assert_problem(erase(client, manager, referral.patient_id), 409, "erasure-refused")
    assert body["refusal"] == "active_referral" and "lost" in body["detail"]


def test_a_reason_is_required(client, manager, case):
    response = erase(client, manager, case.patient_id, {"reason": ""})
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["field"] == "reason"


def test_an_agency_may_not_erase(client, agency, case):
    assert_problem(erase(client, agency, case.patient_id), 403, "forbidden")


def test_a_coordinator_may_not_erase(client, coordinator, case):
    assert_problem(erase(client, coordinator, case.patient_id), 403, "forbidden")
