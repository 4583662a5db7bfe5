"""The outbox page: failed with the provider's error, suppressed with the reason, held by a
cap or by the night, masked numbers, paging, and a retry that requeues exactly once."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.messaging.composing.outbox import enqueue
from crm.messaging.models import OutboxMessage
from crm.messaging.queries import mask_address, outbox_page
from crm.referrals.operations import move_to_stage
from tests.console.support import csrf_token, sign_in, staff_with_password
from tests.messaging.support import PHONE

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

MASKED = "+49*********78"


def _sms(referral, **kw) -> OutboxMessage:
    """A patient SMS written by the real outbox (consent, quiet hours, caps applied)."""
    result = enqueue(
        referral,
        kind="ad_hoc",
        audience="patient",
        channels=["sms"],
        key=f"test:{uuid.uuid4().hex}",
        extra={"subject": "News", "message": "Your plan is ready"},
        **kw,
    )
    return result.messages[0]


def _failed(session, referral, code: str = "21211") -> OutboxMessage:
    """As the dispatcher leaves a permanent failure: an attempt counted, the error kept."""
    message = _sms(referral)
    message.status, message.attempts = "failed", 1
    message.error_code, message.error_message = code, f"twilio 400 code {code}: invalid To"
    session.commit()
    return message


def _coordinator_signed_in(client, session, role: str = "coordinator"):
    user = staff_with_password(session, role)
    sign_in(client, user.email)
    return user


def _html(client, path: str = "/console/outbox") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return page.get_data(as_text=True)


def _retry(client, message: OutboxMessage):
    return client.post(
        f"/console/outbox/{message.id}/retry",
        data={"csrf_token": csrf_token(client, "/console/outbox"), "tab": "failed"},
    )


def test_a_failed_message_shows_the_providers_error_the_recipient_and_a_masked_number(
    client, session, factory, agency
):
    referral = factory.referral(agency)
    _failed(session, referral)
    _coordinator_signed_in(client, session)
    html = _html(client)  # the failed tab is the first
    assert "twilio 400 code 21211: invalid To" in html
    assert referral.patient.full_name in html and "SMS" in html
    assert MASKED in html and PHONE not in html
    assert "Retry" in html


def test_a_suppressed_message_shows_its_reason(client, session, factory, agency):
    referral = factory.referral(agency, patient={"consents": {"sms": False, "email": True}})
    message = _sms(referral)
    session.commit()
    assert message.status == "suppressed"
    _coordinator_signed_in(client, session)
    html = _html(client, "/console/outbox?tab=suppressed")
    assert "reason: no consent" in html and referral.patient.full_name in html
    assert f"/console/outbox/{message.id}/retry" not in html


def test_a_message_held_by_the_spend_cap_can_be_retried(
    app: Flask, client, session, factory, agency, monkeypatch
):
    referral = factory.referral(agency)
    monkeypatch.setitem(app.config["CRM"], "SMS_CAP_GLOBAL_HOURLY", 0)
    message = _sms(referral)
    session.commit()
    assert message.next_attempt_at > utcnow()
    _coordinator_signed_in(client, session)
    html = _html(client, "/console/outbox?tab=held")
    assert "spend cap until" in html
    assert f"/console/outbox/{message.id}/retry" in html


def test_a_message_held_by_quiet_hours_is_not_offered_a_retry_and_is_refused_in_words(
    app: Flask, client, session, factory, agency, monkeypatch
):
    referral = factory.referral(agency)
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", "00:00-23:59")
    message = _sms(referral)
    session.commit()
    _coordinator_signed_in(client, session)
    html = _html(client, "/console/outbox?tab=held")
    assert "quiet hours until" in html and "for the patient" in html
    assert f"/console/outbox/{message.id}/retry" not in html
    page = client.get(_retry(client, message).headers["Location"])
    assert "held by quiet hours" in page.get_data(as_text=True)
    session.refresh(message)
    assert message.next_attempt_at > utcnow()


def test_retry_requeues_a_failed_message_exactly_once(client, session, factory, agency):
    referral = factory.referral(agency)
    message = _failed(session, referral)
    user = _coordinator_signed_in(client, session)
    first = _retry(client, message)
    assert first.status_code == 303
    assert "Queued again" in client.get(first.headers["Location"]).get_data(as_text=True)
    session.refresh(message)
    assert (message.status, message.attempts, message.error_message) == ("queued", 0, None)
    assert message.next_attempt_at <= utcnow()
    second = client.get(_retry(client, message).headers["Location"]).get_data(as_text=True)
    assert "already queued" in second
    session.refresh(message)
    assert (message.status, message.attempts) == ("queued", 0)
    retries = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "message.retry", AuditEvent.actor_id == user.id
        )
    ).all()
    assert len(retries) == 1 and retries[0].detail["outcome"] == "requeued"
    assert retries[0].detail["error"] == "21211"


def test_retry_refuses_a_sent_message_in_words(client, session, factory, agency):
    referral = factory.referral(agency)
    message = _sms(referral)
    message.status, message.sent_at = "sent", utcnow()
    session.commit()
    _coordinator_signed_in(client, session)
    page = client.get(_retry(client, message).headers["Location"]).get_data(as_text=True)
    assert "Not retried: It was already sent; retrying would send it twice." in page
    session.refresh(message)
    assert message.status == "sent"


def test_a_failed_message_whose_referral_moved_on_stays_unsent_and_is_cancelled(
    client, session, factory, agency, coordinator
):
    referral = factory.referral(agency)
    message = _failed(session, referral)  # written for the enquiry
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    session.commit()
    _coordinator_signed_in(client, session)
    page = client.get(_retry(client, message).headers["Location"]).get_data(as_text=True)
    assert "the referral has moved on" in page
    session.refresh(message)
    assert (message.status, message.suppressed_reason) == ("cancelled", "moved on")


def test_reading_the_outbox_is_audited(client, session, factory, agency):
    referral = factory.referral(agency)
    _failed(session, referral)
    user = _coordinator_signed_in(client, session)
    _html(client)
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.action == "outbox.read", AuditEvent.actor_id == user.id)
    )
    assert event.detail["tab"] == "failed" and referral.id in event.detail["referral_ids"]


def test_the_tabs_count_what_they_hold(client, session, factory, agency):
    referral = factory.referral(agency)
    _failed(session, referral)
    failed = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "failed")
    )
    _coordinator_signed_in(client, session)
    assert f'Failed <span class="count">{failed}</span>' in _html(client)


def test_the_outbox_pages_newest_first_without_overlap(session, factory, agency, coordinator):
    referral = factory.referral(agency)
    made = [_failed(session, referral).id for _ in range(3)]
    first = outbox_page(coordinator.actor, "failed", limit=2)
    assert [row.message.id for row in first.rows] == [made[2], made[1]]
    older = outbox_page(coordinator.actor, "failed", before=first.next_before, limit=2)
    assert older.rows[0].message.id == made[0]


def test_a_specialist_may_not_open_the_outbox(client, session):
    _coordinator_signed_in(client, session, "specialist")
    assert client.get("/console/outbox").status_code == 403


def test_a_coordinator_reaches_the_outbox_from_today(client, session):
    _coordinator_signed_in(client, session, "coordinator")
    assert 'href="/console/outbox"' in _html(client, "/console/today")


def test_an_email_address_is_masked_too():
    assert mask_address("email", "jonas1@patient.example") == "j***@patient.example"
    assert mask_address("sms", PHONE) == MASKED


def test_the_outbox_reads_as_much_for_many_messages_as_for_one(
    client, connection, session, factory, agency
):
    _failed(session, factory.referral(agency))
    _coordinator_signed_in(client, session)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def selects() -> int:
        statements.clear()
        event.listen(connection, "before_cursor_execute", record)
        try:
            _html(client)
        finally:
            event.remove(connection, "before_cursor_execute", record)
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    with_one = selects()
    for _ in range(4):
        _failed(session, factory.referral(agency))
    assert with_one > 0 and selects() == with_one
