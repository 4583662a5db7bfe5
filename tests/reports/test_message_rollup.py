"""The messaging report's rollup, kept by MessageStatusChanged: written, sent by the
dispatcher, delivered by Twilio's callback, cancelled, suppressed; equal to a recount."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, update
from twilio.request_validator import RequestValidator

from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.transports import Transports
from crm.messaging.events import StatusChange
from crm.messaging.models import OutboxMessage
from crm.patients.operations import set_consent
from crm.referrals.operations import move_to_stage
from crm.referrals.sla import service_levels
from crm.reports.models import MessageDaily
from crm.reports.rollups import count_message_changes, rebuild
from tests.conftest import postgres_only
from tests.messaging.support import NO_QUIET_HOURS, RecordingGateway, RecordingMailer
from tests.reports.support import API, rollup_rows

TOKEN = "rollup-test-token"


@pytest.fixture
def dispatcher(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    transports = Transports(RecordingGateway(), RecordingMailer(), None)
    return Dispatcher(transports, DispatchSettings(quiet_hours=NO_QUIET_HOURS), name="rollup")


def _counted(session, **where) -> int:
    query = select(func.coalesce(func.sum(MessageDaily.messages), 0))
    for name, value in where.items():
        query = query.where(getattr(MessageDaily, name) == value)
    return int(session.scalar(query))


def _outbox(session, **where) -> int:
    query = select(func.count(OutboxMessage.id))
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return int(session.scalar(query))


def _equals_a_recount(app, session) -> None:
    kept = rollup_rows(session)["report_message_daily"]
    rebuild(service_levels(app.config["CRM"]))
    assert rollup_rows(session)["report_message_daily"] == kept


def test_the_messages_a_referral_writes_are_counted_as_queued(session, factory, agency):
    factory.referral(agency)
    assert _outbox(session, status="queued") >= 1
    assert _counted(session, status="queued") == _outbox(session, status="queued")


def test_a_dispatched_batch_moves_from_queued_to_sent(app, session, factory, agency, dispatcher):
    factory.referral(agency)
    waiting = _outbox(session, status="queued")
    assert dispatcher.run_once() == waiting
    assert _counted(session, status="queued") == 0
    assert _counted(session, status="sent") == _outbox(session, status="sent") == waiting
    _equals_a_recount(app, session)


def test_sent_sms_carry_their_segments_into_the_report(
    client, session, factory, agency, coordinator, dispatcher
):
    factory.referral(agency)
    dispatcher.run_once()
    body = client.get(f"{API}/messaging", headers=coordinator.headers()).json
    sms = next(row for row in body["channels"] if row["channel"] == "sms")
    segments = session.scalar(
        select(func.sum(OutboxMessage.segments)).where(OutboxMessage.channel == "sms")
    )
    assert sms["sent"] >= 1 and sms["sms_segments"] == segments


def test_a_delivery_callback_moves_a_message_from_sent_to_delivered(
    app, client, session, factory, agency, dispatcher, monkeypatch
):
    factory.referral(agency)
    dispatcher.run_once()
    sms = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms")).first()
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    form = {"MessageSid": sms.provider_id, "MessageStatus": "delivered"}
    url = app.config["CRM"]["PUBLIC_BASE_URL"] + "/webhooks/twilio/status"
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    response = client.post(
        "/webhooks/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 204
    assert _counted(session, channel="sms", status="delivered") == 1
    assert _counted(session, channel="sms", status="sent") == _outbox(
        session, channel="sms", status="sent"
    )
    _equals_a_recount(app, session)


def test_messages_cancelled_when_the_referral_moves_on_leave_queued(
    app, session, factory, agency, coordinator
):
    referral = factory.referral(agency)
    move_to_stage(referral, "lost", coordinator.actor, reason="price")
    cancelled = _outbox(session, status="cancelled")
    assert cancelled >= 1
    assert _counted(session, status="cancelled") == cancelled
    _equals_a_recount(app, session)


def test_a_consent_withdrawn_before_sending_is_counted_suppressed_with_its_reason(
    app, session, factory, agency, dispatcher
):
    referral = factory.referral(agency)
    set_consent(referral.patient, "sms", False, "phone call")
    session.commit()
    dispatcher.run_once()
    assert _counted(session, status="suppressed", reason="consent_withdrawn") == _outbox(
        session, status="suppressed", suppressed_reason="consent_withdrawn"
    )
    assert _outbox(session, status="suppressed") >= 1
    _equals_a_recount(app, session)


def test_the_messaging_report_reads_the_rollup_not_the_outbox(
    client, session, factory, agency, coordinator
):
    factory.referral(agency)
    before = client.get(f"{API}/messaging", headers=coordinator.headers()).json
    session.execute(update(OutboxMessage).values(status="failed"))  # no event: not counted
    session.commit()
    after = client.get(f"{API}/messaging", headers=coordinator.headers()).json
    assert after == before


@postgres_only
def test_the_rollup_upsert_is_one_statement_text_whatever_the_number_of_cells(session, connection):
    """Cells go as arrays: the same SQL for one cell or many, so SQLAlchemy compiles it once
    and PostgreSQL prepares it once (a multi-row VALUES was compiled again at every batch)."""
    day = datetime(2026, 12, 1, 9, tzinfo=UTC)
    seen: list[str] = []

    def upserts(_conn, _cursor, statement, *_):
        if "report_message_daily" in statement:
            seen.append(statement)

    def changes(n: int) -> list[StatusChange]:
        return [
            StatusChange(i, day, "sms", None, None, 1, "sending", None, status, None)
            for i, status in enumerate(("sent", "failed", "cancelled")[:n])
        ]

    event.listen(connection, "before_cursor_execute", upserts)
    try:
        count_message_changes(changes(1), {})
        count_message_changes(changes(3), {})
    finally:
        event.remove(connection, "before_cursor_execute", upserts)
    assert len(seen) == 2 and seen[0] == seen[1]
    assert _counted(session, status="failed") == 1
    assert _counted(session, status="sent") == 2
    assert _counted(session, status="queued") == -4
