"""The referral page's everyday actions: each form runs the API's operation with the API's
roles, comes back to the page (303) and says in words what it did or why it did not."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.referrals.models import ReferralNote
from crm.tasks.models import Task
from tests.console.history import REPLY_TEXT, patient_replies
from tests.console.support import csrf_token, sign_in, staff_with_password


@pytest.fixture
def referral(factory):
    return factory.referral(factory.agency())


def _signed_in(client, session, role: str = "coordinator"):
    user = staff_with_password(session, role)
    sign_in(client, user.email)
    return user


def _page(referral) -> str:
    return f"/console/referrals/{referral.id}"


def _post(client, referral, action: str, data: dict):
    token = csrf_token(client, _page(referral))
    return client.post(f"{_page(referral)}/{action}", data={**data, "csrf_token": token})


def _said(client, referral) -> str:
    """The page after the redirect, with the flashed words."""
    return client.get(_page(referral)).get_data(as_text=True)


def _audited(session, referral, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.referral_id == referral.id, AuditEvent.action == action
            )
        )
    )


def _outbox(session, referral, kind: str) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.referral_id == referral.id, OutboxMessage.kind == kind)
            .order_by(OutboxMessage.channel)
        )
    )


# -- owner -----------------------------------------------------------------------------


def test_a_coordinator_assigns_the_referral_to_themself(client, session, referral):
    me = _signed_in(client, session)
    assert re.search(rf'<option value="{me.id}">Me \(', _said(client, referral))
    response = _post(client, referral, "owner", {"owner_id": str(me.id)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(_page(referral))
    assert "Owner changed." in _said(client, referral)
    session.refresh(referral)
    assert referral.owner_id == me.id
    [row] = _audited(session, referral, "referral.assign")
    assert row.detail["owner_id"] == me.id


def test_the_owner_list_offers_me_first_and_no_specialists(client, session, referral):
    specialist = staff_with_password(session, "specialist")
    me = _signed_in(client, session)
    html = _said(client, referral)
    options = re.findall(r'<option value="(\d+)"', html[html.index('id="owner_id"') :])
    assert options[0] == str(me.id)
    assert str(specialist.id) not in options


def test_choosing_nobody_unassigns(client, session, referral):
    me = _signed_in(client, session)
    _post(client, referral, "owner", {"owner_id": str(me.id)})
    _post(client, referral, "owner", {"owner_id": ""})
    session.refresh(referral)
    assert referral.owner_id is None


def test_a_specialist_cannot_be_made_owner_and_is_told_why(client, session, referral):
    specialist = staff_with_password(session, "specialist")
    _signed_in(client, session)
    _post(client, referral, "owner", {"owner_id": str(specialist.id)})
    assert "a specialist cannot own referrals" in _said(client, referral)
    session.refresh(referral)
    assert referral.owner_id is None


def test_a_specialist_may_not_assign_owners(client, session, referral):
    me = _signed_in(client, session, "specialist")
    assert 'id="owner_id"' not in _said(client, referral)
    response = _post(client, referral, "owner", {"owner_id": str(me.id)})
    assert response.status_code == 403
    session.refresh(referral)
    assert referral.owner_id is None


# -- move ------------------------------------------------------------------------------


def test_a_coordinator_moves_the_referral_with_a_note(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "move", {"to": "awaiting_mri", "note": "asked for the CD"})
    assert "Moved to Awaiting MRI." in _said(client, referral)
    session.refresh(referral)
    assert referral.stage == "awaiting_mri"
    assert referral.history[-1].note == "asked for the CD"
    assert _audited(session, referral, "referral.transition")


def test_a_refused_move_says_which_guard_refused_it(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "move", {"to": "mri_review"})
    said = _said(client, referral)
    assert "Not done: an MRI study must be uploaded before the specialist review." in said
    session.refresh(referral)
    assert referral.stage == "enquiry"


def test_lost_without_a_reason_is_refused_in_words(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "move", {"to": "lost", "reason": ""})
    assert "a reason is required to mark a referral lost" in _said(client, referral)
    session.refresh(referral)
    assert referral.stage == "enquiry"


def test_lost_with_a_reason_records_it(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "move", {"to": "lost", "reason": "price", "note": ""})
    session.refresh(referral)
    assert (referral.stage, referral.lost_reason) == ("lost", "price")


def test_the_move_form_offers_only_the_allowed_targets(client, session, referral):
    _signed_in(client, session)
    html = _said(client, referral)
    form = html[html.index('id="move-to"') : html.index("</select>", html.index('id="move-to"'))]
    assert set(re.findall(r'value="([a-z_]+)"', form)) == {
        "awaiting_mri",
        "mri_review",
        "lost",
        "on_hold",
    }


def test_a_specialist_may_move_a_referral(client, session, referral):
    _signed_in(client, session, "specialist")
    _post(client, referral, "move", {"to": "awaiting_mri"})
    session.refresh(referral)
    assert referral.stage == "awaiting_mri"


def test_a_lost_referral_offers_no_move(client, session, referral):
    _signed_in(client, session)
    assert 'id="move-to"' in _said(client, referral)
    _post(client, referral, "move", {"to": "lost", "reason": "duplicate"})
    assert 'id="move-to"' not in _said(client, referral)


# -- notes -----------------------------------------------------------------------------


def test_any_staff_role_adds_a_note(client, session, referral):
    me = _signed_in(client, session, "specialist")
    _post(client, referral, "notes", {"body": "Looked at the intake: fine."})
    assert "Note added." in _said(client, referral)
    [note] = session.scalars(select(ReferralNote).where(ReferralNote.referral_id == referral.id))
    assert (note.body, note.author_id) == ("Looked at the intake: fine.", me.id)
    assert _audited(session, referral, "referral.note")


def test_an_empty_note_is_refused_in_words(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "notes", {"body": "   "})
    assert "Not accepted: body:" in _said(client, referral)
    assert not session.scalars(
        select(ReferralNote).where(ReferralNote.referral_id == referral.id)
    ).all()


# -- the MRI, messages -----------------------------------------------------------------


def test_asking_for_the_mri_writes_an_sms_and_an_email_to_the_patient(
    client, session, referral, no_quiet_hours
):
    _signed_in(client, session)
    _post(client, referral, "mri-request", {})
    assert "The patient is asked for the MRI" in _said(client, referral)
    sms_and_email = _outbox(session, referral, "mri_requested_patient")
    assert [m.channel for m in sms_and_email] == ["email", "sms"]
    email, sms = sms_and_email
    assert "MRT" in email.subject  # the patient's language (German)
    assert "MRT" not in sms.body_text and "Dokument" in sms.body_text  # no health detail
    assert _audited(session, referral, "message.mri_request")


def test_the_mri_is_not_asked_for_once_the_case_is_past_it(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "move", {"to": "lost", "reason": "price"})
    assert "Ask the patient for the MRI" not in _said(client, referral)
    _post(client, referral, "mri-request", {})
    assert "the MRI is not asked for in stage lost" in _said(client, referral)
    assert not _outbox(session, referral, "mri_requested_patient")


def test_a_coordinator_sends_the_patient_a_message(client, session, referral, no_quiet_hours):
    _signed_in(client, session)
    _post(
        client,
        referral,
        "messages",
        {"channels": ["email"], "subject": "Your visit", "message": "We look forward to it."},
    )
    assert "Message queued for the patient." in _said(client, referral)
    [email] = _outbox(session, referral, "ad_hoc")
    assert email.channel == "email" and "We look forward to it." in email.body_text
    assert _audited(session, referral, "message.ad_hoc")


def test_a_message_without_a_subject_is_refused_in_words(client, session, referral):
    _signed_in(client, session)
    _post(client, referral, "messages", {"channels": ["email"], "subject": "", "message": "x"})
    assert "Not accepted: subject:" in _said(client, referral)
    assert not _outbox(session, referral, "ad_hoc")


@pytest.mark.parametrize("action", ["messages", "mri-request"])
def test_a_specialist_may_not_message_the_patient(client, session, referral, action):
    _signed_in(client, session, "specialist")
    html = _said(client, referral)
    assert "Message the patient" not in html and "Ask the patient for the MRI" not in html
    data = {"channels": ["email"], "subject": "s", "message": "m"}
    assert _post(client, referral, action, data).status_code == 403
    assert not session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind.in_(["ad_hoc", "mri_requested_patient"]))
    ).all()


# -- answering a reply -----------------------------------------------------------------


@pytest.fixture
def replied(app, client, session, referral, no_quiet_hours):
    session.commit()
    patient_replies(app, client, referral.patient.phone)
    inbound = session.scalar(
        select(InboundMessage).where(InboundMessage.referral_id == referral.id)
    )
    task = session.scalar(select(Task).where(Task.dedupe_key == f"reply:{inbound.provider_id}"))
    return inbound, task


def test_the_coordinator_answers_a_reply_and_closes_its_task(client, session, referral, replied):
    _, task = replied
    _signed_in(client, session)
    html = _said(client, referral)
    assert REPLY_TEXT in html and "Read and answer it in the conversation" in html
    response = _post(client, referral, "conversation", {"message": "Yes, bring the CD."})
    assert response.status_code == 303
    assert "Answer sent: the patient sees it on their page" in _said(client, referral)
    [sms] = _outbox(session, referral, "conversation_answer")
    assert sms.channel == "sms"  # the channel the patient wrote from
    assert "Yes, bring the CD." not in sms.body_text  # the SMS says only there is an answer
    session.refresh(task)
    assert task.status == "done" and task.completed_at is not None
    assert _audited(session, referral, "task.update")


def test_reading_a_reply_without_answering_leaves_its_task_open(client, session, referral, replied):
    _, task = replied
    _signed_in(client, session)
    assert REPLY_TEXT in _said(client, referral)
    session.refresh(task)
    assert task.status == "open"


def test_an_answer_on_another_referral_leaves_this_reply_alone(
    client, session, factory, referral, replied
):
    _, task = replied
    other = factory.referral(factory.agency(), patient={"phone": "+4915199990001"})
    _signed_in(client, session)
    _post(client, other, "conversation", {"message": "Yes."})
    session.refresh(task)
    assert task.status == "open"
    assert not _outbox(session, referral, "conversation_answer")
    assert REPLY_TEXT not in _said(client, other)


# -- the form itself -------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused(client, session, referral):
    _signed_in(client, session)
    response = client.post(f"{_page(referral)}/notes", data={"body": "x"})
    assert response.status_code == 400
    assert not session.scalars(select(ReferralNote)).all()


def test_a_missing_referral_is_a_404_page(client, session, referral):
    _signed_in(client, session)
    token = csrf_token(client, _page(referral))
    response = client.post(
        "/console/referrals/999999/notes", data={"body": "x", "csrf_token": token}
    )
    assert response.status_code == 404
    assert "no referral 999999" in response.get_data(as_text=True)
