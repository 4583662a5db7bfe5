"""The patient writes to the coordinators on the private page: the message is in the
thread, a task opens through the event, the coordinators' unread count goes up; what is
refused is said in the patient's language."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.conversation.queries import thread, unread_count
from crm.core.audit import AuditEvent
from crm.tasks.models import Task
from tests.conversation.support import messages_of, page_url, unique_phone

QUESTION = "Can my wife stay with me in the hospital room?"


@pytest.fixture
def referral(factory):
    return factory.referral(factory.agency(), patient={"phone": unique_phone()})


@pytest.fixture
def english(factory):
    patient = {"phone": unique_phone(), "language": "en", "given_name": "Emma"}
    return factory.referral(factory.agency(), patient=patient)


def _write(client, referral, text: str):
    return client.post(page_url(referral, "/messages"), data={"message": text})


def test_a_message_written_on_the_page_is_in_the_thread(client, session, referral):
    response = _write(client, referral, f"  {QUESTION}\n")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("done=message#conversation")
    [entry] = thread(referral.id)
    assert (entry.direction, entry.channel, entry.body) == ("in", "page", QUESTION)
    assert entry.unread


def test_the_page_shows_the_thread_and_says_it_was_sent_in_the_patients_language(client, referral):
    _write(client, referral, QUESTION)
    page = client.get(page_url(referral) + "?done=message").get_data(as_text=True)
    assert "Nachrichten mit Ihrem Koordinator" in page  # the factory's patient reads German
    assert "Ihre Nachricht wurde gesendet." in page
    assert QUESTION in page and "<strong>Sie</strong>" in page


def test_a_message_opens_one_coordinator_task_through_the_event(client, session, referral):
    _write(client, referral, QUESTION)
    _write(client, referral, "And may I bring my own pillow?")
    tasks = session.scalars(select(Task).where(Task.referral_id == referral.id)).all()
    replies = [t for t in tasks if t.source == "reply"]
    assert len(replies) == 1 and replies[0].status == "open"
    assert replies[0].title == "The patient wrote on the private page"
    assert "wrote again" in replies[0].detail


def test_each_message_counts_as_unread_for_the_coordinators(client, referral):
    assert unread_count(referral.id) == 0
    _write(client, referral, QUESTION)
    assert unread_count(referral.id) == 1


def test_the_message_is_audited_as_the_patient(client, session, referral):
    _write(client, referral, QUESTION)
    [row] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.referral_id == referral.id, AuditEvent.action == "conversation.write"
        )
    ).all()
    assert (row.actor_type, row.actor_id) == ("patient", referral.patient_id)
    assert QUESTION not in str(row.detail)  # the audit says that, not what


def test_an_empty_message_is_refused_in_the_patients_language(client, referral):
    response = _write(client, referral, "   \n ")
    assert response.status_code == 422
    assert "Bitte schreiben Sie Ihre Nachricht, bevor Sie sie senden." in response.get_data(
        as_text=True
    )
    assert not messages_of(referral)


def test_a_message_too_long_is_refused_and_kept_for_the_patient_to_shorten(client, english):
    text = "a" * 2001
    response = _write(client, english, text)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Your message is too long: please keep it to 2000 characters or fewer." in page
    assert f">{text}</textarea>" in page
    assert not messages_of(english)


def test_a_nul_character_is_refused_on_the_page_in_the_patients_language(client, referral):
    response = _write(client, referral, "Hallo\x00Welt")
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "Ihre Nachricht enthält Zeichen, die nicht gesendet werden können." in body
    assert not messages_of(referral)


def test_too_many_messages_in_an_hour_are_refused(app, client, monkeypatch, english):
    monkeypatch.setitem(app.config["CRM"], "CONVERSATION_MESSAGES_PER_HOUR", 2)
    assert _write(client, english, "one").status_code == 303
    assert _write(client, english, "two").status_code == 303
    refused = _write(client, english, "three")
    assert refused.status_code == 429
    assert "You have sent many messages in the last hour." in refused.get_data(as_text=True)
    assert [m.body for m in messages_of(english)] == ["one", "two"]


def test_a_wrong_link_writes_nothing(client, referral):
    response = client.post("/p/not-a-token/messages", data={"message": QUESTION})
    assert response.status_code == 404
    assert not messages_of(referral)


def test_another_referrals_thread_is_never_shown(client, factory, referral):
    other = factory.referral(factory.agency(), patient={"phone": unique_phone()})
    _write(client, other, "A question only the other patient asked")
    page = client.get(page_url(referral)).get_data(as_text=True)
    assert "A question only the other patient asked" not in page
    assert thread(referral.id) == []
