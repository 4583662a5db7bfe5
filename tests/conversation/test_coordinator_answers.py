"""The coordinator reads the thread on the referral page (unread goes to nought, audited),
answers (the outbox on the patient's preferred permitted channel; the answer on the
patient's page), and an SMS reply through Twilio's signed webhook lands in the thread."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.conversation.operations import answer_patient, post_patient_message
from crm.conversation.queries import thread, unread_count, unread_counts
from crm.core.audit import AuditEvent
from crm.core.errors import ValidationFailed
from crm.messaging.models import OutboxMessage
from crm.patients.operations import set_consent
from crm.tasks.models import Task
from tests.console.history import patient_replies
from tests.console.support import csrf_token, sign_in, staff_with_password
from tests.conversation.support import page_url, patient_actor, unique_phone

QUESTION = "Can my wife stay with me in the hospital room?"
ANSWER = "Yes, a companion bed is included; tell us her name."


@pytest.fixture
def referral(factory, no_quiet_hours):
    patient = {"phone": unique_phone(), "language": "en", "given_name": "Emma"}
    return factory.referral(factory.agency(), patient=patient)


@pytest.fixture
def written(session, referral):
    post_patient_message(referral, QUESTION, patient_actor(referral))
    session.commit()
    return referral


def _console(client, session, role: str = "coordinator"):
    user = staff_with_password(session, role)
    sign_in(client, user.email)
    return user


def _referral_page(client, referral) -> str:
    return client.get(f"/console/referrals/{referral.id}").get_data(as_text=True)


def _answer(client, referral, text: str, sms_text: bool = False):
    page = f"/console/referrals/{referral.id}"
    data = {"message": text, "csrf_token": csrf_token(client, page)}
    if sms_text:
        data["sms_text"] = "on"
    return client.post(f"{page}/conversation", data=data)


def _outbox(session, referral) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.referral_id == referral.id,
                OutboxMessage.kind.in_(["conversation_answer", "free_text"]),
            )
            .order_by(OutboxMessage.id)
        )
    )


def _audited(session, referral, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.referral_id == referral.id, AuditEvent.action == action
            )
        )
    )


def test_opening_the_referral_page_shows_the_new_message_and_reads_it(client, session, written):
    _console(client, session)
    assert unread_count(written.id) == 1
    html = _referral_page(client, written)
    assert QUESTION in html and "1 new" in html and "tag-new" in html
    assert unread_count(written.id) == 0
    [row] = _audited(session, written, "conversation.marked_read")
    assert row.actor_type == "staff" and row.detail == {"marked": 1}
    assert "1 new" not in _referral_page(client, written)


def test_a_specialist_reads_the_thread_without_marking_it_read(client, session, written):
    _console(client, session, "specialist")
    html = _referral_page(client, written)
    assert QUESTION in html and "Your answer" not in html
    assert unread_count(written.id) == 1


def test_the_answer_goes_to_the_outbox_on_the_preferred_channel_and_says_only_there_is_one(
    client, session, written
):
    _console(client, session)
    response = _answer(client, written, ANSWER)
    assert response.status_code == 303
    [sms] = _outbox(session, written)
    assert (sms.channel, sms.kind, sms.status) == ("sms", "conversation_answer", "queued")
    assert ANSWER not in sms.body_text and "your coordinator answered you" in sms.body_text
    [_, answer] = thread(written.id)
    assert (answer.direction, answer.channel, answer.body) == ("out", "sms", ANSWER)


def test_the_answer_appears_on_the_patients_page(client, session, written):
    coordinator = _console(client, session)
    _answer(client, written, ANSWER)
    page = client.get(page_url(written)).get_data(as_text=True)
    assert QUESTION in page and ANSWER in page
    assert f"{coordinator.name}, your coordinator" in page
    assert page.index(QUESTION) < page.index(ANSWER)  # newest last


def test_answering_reads_the_thread_and_closes_the_reply_task(client, session, written):
    [task] = session.scalars(select(Task).where(Task.referral_id == written.id)).all()
    coordinator = _console(client, session)
    _answer(client, written, ANSWER)
    session.refresh(task)
    assert task.status == "done"
    assert unread_count(written.id) == 0
    [row] = _audited(session, written, "conversation.answer")
    assert row.actor_id == coordinator.id and row.detail["sms_carries_text"] is False


def test_a_patient_without_sms_consent_is_told_by_email_with_the_text(client, session, written):
    set_consent(written.patient, "sms", False, "test")
    session.commit()
    _console(client, session)
    _answer(client, written, ANSWER)
    [email] = _outbox(session, written)
    assert email.channel == "email" and ANSWER in email.body_text


def test_an_sms_reply_through_the_signed_webhook_lands_in_the_thread_as_unread(
    app, client, session, referral
):
    patient_replies(app, client, referral.patient.phone, sid="SMconv1", body="Is Monday OK?")
    [entry] = thread(referral.id)
    assert (entry.direction, entry.channel, entry.body) == ("in", "sms", "Is Monday OK?")
    assert unread_count(referral.id) == 1
    _console(client, session)
    assert "Is Monday OK?" in _referral_page(client, referral)
    assert unread_count(referral.id) == 0


def test_an_answer_after_an_sms_reply_goes_back_by_sms(app, client, session, referral):
    patient_replies(app, client, referral.patient.phone, sid="SMconv2", body="Is Monday OK?")
    _console(client, session)
    _answer(client, referral, "Monday is fine.")
    assert [m.channel for m in _outbox(session, referral)] == ["sms"]
    assert not session.scalars(
        select(Task).where(Task.referral_id == referral.id, Task.status == "open")
    ).all()


# -- free text in an SMS -------------------------------------------------------------------


def test_free_text_sms_with_a_health_word_is_refused_naming_it(client, session, written):
    _console(client, session)
    response = _answer(client, written, "Your pain will ease after the operation.", True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "an SMS may not carry health detail or prices: it says &#39;pain&#39;" in html
    assert "Your pain will ease after the operation.</textarea>" in html  # kept to correct
    assert not _outbox(session, written)
    assert [e.direction for e in thread(written.id)] == ["in"]


def test_free_text_sms_with_a_dose_is_refused_naming_it(session, written, factory):
    coordinator = factory.staff("coordinator")
    with pytest.raises(ValidationFailed, match="it says '400 mg'"):
        answer_patient(written, "Take 400 mg twice a day.", coordinator.actor, sms_text=True)


def test_clean_free_text_goes_in_the_sms_itself(client, session, written):
    _console(client, session)
    _answer(client, written, "The driver is waiting at gate B.", sms_text=True)
    [sms] = _outbox(session, written)
    assert sms.kind == "free_text"
    assert sms.body_text.endswith(": The driver is waiting at gate B.")


def test_the_board_counts_unread_messages_in_one_grouped_query(client, session, written):
    other = written  # the same referral written twice more, by page and by SMS
    post_patient_message(other, "Also: is there parking?", patient_actor(other))
    assert unread_counts([written.id]) == {written.id: 2}
    _console(client, session)
    board = client.get("/console/board").get_data(as_text=True)
    assert "2 unread messages from the patient" in board
