"""Writing to the outbox: consent, fallback, addresses, idempotency, quiet hours, spend caps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from crm.core.db import utcnow
from crm.core.errors import RateLimited
from crm.extensions import db
from crm.messaging.composing.outbox import enqueue
from crm.messaging.composing.spend import sms_counted
from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.transports import Transports
from crm.patients.operations import set_consent
from crm.tasks.models import Task
from tests.messaging.support import (
    NO_QUIET_HOURS,
    RecordingGateway,
    RecordingMailer,
    new_referral,
    outbox_count,
    outbox_for,
    utc,
)

NOON_BERLIN = utc(2030, 1, 15, 11, 0)  # 12:00 in Berlin, 14:00 in Istanbul


@pytest.fixture
def no_quiet_hours(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)


def _consents(sms: bool, email: bool) -> dict:
    return {"patient": {"consents": {"sms": sms, "email": email, "source": "intake form"}}}


def _enqueue(referral, channels, key="test:1", **kwargs):
    kwargs.setdefault("now", NOON_BERLIN)
    return enqueue(
        referral, kind="mri_reminder", audience="patient", channels=channels, key=key, **kwargs
    )


def test_no_consent_for_the_only_channel_is_suppressed_and_never_handed_to_a_provider(
    factory, session
):
    referral = new_referral(factory, **_consents(sms=False, email=True))
    result = _enqueue(referral, ["sms"], fallback=False)
    [message] = result.messages
    assert (message.channel, message.status) == ("sms", "suppressed")
    assert message.suppressed_reason == "no_consent"
    gateway, mailer = RecordingGateway(), RecordingMailer()
    Dispatcher(Transports(gateway, mailer, None), DispatchSettings()).run_once(
        NOON_BERLIN + timedelta(days=3)
    )
    assert gateway.sent == []
    assert all(email.to != referral.patient.phone for email in mailer.sent)
    session.refresh(message)
    assert message.status == "suppressed" and message.attempts == 0


def test_fallback_uses_the_first_permitted_channel_only(factory):
    referral = new_referral(factory, **_consents(sms=False, email=True))
    [message] = _enqueue(referral, ["sms", "email"], fallback=True).messages
    assert (message.channel, message.status) == ("email", "queued")

    referral = new_referral(factory, **_consents(sms=True, email=True))
    [message] = _enqueue(referral, ["sms", "email"], key="test:2", fallback=True).messages
    assert (message.channel, message.status) == ("sms", "queued")


def test_without_fallback_every_permitted_channel_gets_a_message(factory):
    referral = new_referral(factory, **_consents(sms=True, email=True))
    messages = _enqueue(referral, ["sms", "email"], fallback=False).messages
    assert sorted(m.channel for m in messages) == ["email", "sms"]
    assert {m.idempotency_key for m in messages} == {"test:1:sms", "test:1:email"}


def test_no_consent_anywhere_suppresses_the_first_channel_with_its_reason(factory):
    referral = new_referral(factory, **_consents(sms=False, email=False))
    [message] = _enqueue(referral, ["email", "sms"], fallback=True).messages
    assert (message.channel, message.status, message.suppressed_reason) == (
        "email",
        "suppressed",
        "no_consent",
    )


def test_a_patient_without_a_phone_gets_no_sms_and_the_reason_says_so(factory):
    referral = new_referral(factory, patient={"phone": None})
    [message] = _enqueue(referral, ["sms"], fallback=False).messages
    assert (message.status, message.suppressed_reason) == ("suppressed", "no_address")
    assert message.to_address == ""
    [email] = _enqueue(referral, ["sms", "email"], key="test:2", fallback=True).messages
    assert (email.channel, email.status) == ("email", "queued")


def test_the_same_key_twice_writes_nothing_new(factory):
    referral = new_referral(factory)
    first = _enqueue(referral, ["sms", "email"], fallback=False).messages
    before = outbox_count()
    second = _enqueue(referral, ["sms", "email"], fallback=False).messages
    assert [m.id for m in second] == [m.id for m in first]
    assert outbox_count() == before


def test_the_same_key_is_a_no_op_even_when_fallback_would_now_pick_another_channel(factory):
    referral = new_referral(factory)
    [first] = _enqueue(referral, ["sms", "email"], fallback=True).messages
    assert first.channel == "sms"
    set_consent(referral.patient, "sms", False, "STOP")
    before = outbox_count()
    [again] = _enqueue(referral, ["sms", "email"], fallback=True).messages
    assert again.id == first.id
    assert outbox_count() == before, "one cause, one message: no extra email for the same key"


def test_quiet_hours_hold_a_patient_sms_until_the_morning_in_the_patients_zone(factory):
    referral = new_referral(factory, patient={"time_zone": "Europe/Berlin"})
    late = utc(2030, 1, 15, 21, 30)  # 22:30 in Berlin
    written = _enqueue(referral, ["sms", "email"], fallback=False, now=late).messages
    messages = {m.channel: m for m in written}
    assert messages["sms"].next_attempt_at == utc(2030, 1, 16, 7, 30)  # 08:30 in Berlin
    assert messages["email"].next_attempt_at == late


def test_quiet_hours_follow_the_patients_own_zone_not_the_servers(factory):
    evening = utc(2030, 1, 15, 19, 0)  # 20:00 in Berlin, 22:00 in Istanbul
    berlin = new_referral(factory, patient={"time_zone": "Europe/Berlin"})
    istanbul = new_referral(factory, patient={"time_zone": "Europe/Istanbul"})
    [in_berlin] = _enqueue(berlin, ["sms"], now=evening).messages
    [in_istanbul] = _enqueue(istanbul, ["sms"], key="test:2", now=evening).messages
    assert in_berlin.next_attempt_at == evening
    assert in_istanbul.next_attempt_at == utc(2030, 1, 16, 5, 30)  # 08:30 in Istanbul
    assert in_istanbul.time_zone == "Europe/Istanbul"


def test_staff_email_ignores_quiet_hours(factory):
    referral = new_referral(factory)
    late = utc(2030, 1, 15, 23, 0)
    [message] = enqueue(
        referral,
        kind="mri_review_overdue",
        audience="coordinator",
        channels=["email"],
        key="staff:1",
        now=late,
    ).messages
    assert message.next_attempt_at == late
    assert message.patient_id is None


def _set_caps(app, monkeypatch, *, agency_daily=None, global_hourly=None) -> None:
    if agency_daily is not None:
        monkeypatch.setitem(app.config["CRM"], "SMS_CAP_AGENCY_DAILY", agency_daily)
    if global_hourly is not None:
        monkeypatch.setitem(app.config["CRM"], "SMS_CAP_GLOBAL_HOURLY", global_hourly)


def test_over_the_agency_daily_cap_an_api_send_is_rejected_with_429(
    app, factory, monkeypatch, no_quiet_hours
):
    referral = new_referral(factory)
    now = utcnow()
    used = sms_counted(now, referral.agency_id)
    _set_caps(app, monkeypatch, agency_daily=used + 1, global_hourly=10_000)
    _enqueue(referral, ["sms"], key="cap:1", over_cap="reject", now=now)
    with pytest.raises(RateLimited) as raised:
        _enqueue(referral, ["sms"], key="cap:2", over_cap="reject", now=now)
    assert raised.value.status == 429
    assert raised.value.extensions == {"cap": "agency_daily"}
    # another agency's referral is not held back by this agency's cap
    other = new_referral(factory)
    [message] = _enqueue(other, ["sms"], key="cap:3", over_cap="reject", now=utcnow()).messages
    assert message.status == "queued"


def test_over_the_global_hourly_cap_an_api_send_is_rejected(
    app, factory, monkeypatch, no_quiet_hours
):
    referral = new_referral(factory)
    now = utcnow()
    _set_caps(app, monkeypatch, global_hourly=sms_counted(now))
    with pytest.raises(RateLimited) as raised:
        _enqueue(referral, ["sms"], key="cap:1", over_cap="reject", now=now)
    assert raised.value.extensions == {"cap": "global_hourly"}


def test_email_is_not_subject_to_the_sms_caps(app, factory, monkeypatch, no_quiet_hours):
    referral = new_referral(factory)
    _set_caps(app, monkeypatch, agency_daily=1, global_hourly=1)
    [message] = _enqueue(referral, ["email"], over_cap="reject", now=utcnow()).messages
    assert message.status == "queued"


def test_suppressed_messages_do_not_count_against_the_cap(app, factory, monkeypatch):
    referral = new_referral(factory, **_consents(sms=False, email=True))
    now = utcnow()
    before = sms_counted(now)
    _enqueue(referral, ["sms"], key="cap:s", fallback=False, now=now)
    assert sms_counted(now) == before


@pytest.mark.parametrize(
    ("cap", "window"), [("global_hourly", timedelta(hours=1)), ("agency_daily", timedelta(days=1))]
)
def test_over_a_cap_a_held_message_waits_for_the_next_window(
    app, factory, monkeypatch, no_quiet_hours, cap, window
):
    referral = new_referral(factory)
    now = utcnow()
    if cap == "global_hourly":
        _set_caps(app, monkeypatch, global_hourly=sms_counted(now))
    else:
        used = sms_counted(now, referral.agency_id)
        _set_caps(app, monkeypatch, agency_daily=used, global_hourly=10_000)
    result = _enqueue(referral, ["sms"], key="hold:1", over_cap="hold", now=now)
    [message] = result.messages
    assert result.held_by_cap == cap
    assert message.status == "queued"
    assert message.next_attempt_at == now + window


def test_a_nudge_over_the_cap_is_held_and_the_coordinator_gets_a_task(
    app, factory, monkeypatch, no_quiet_hours, session
):
    now = utcnow()
    _set_caps(app, monkeypatch, global_hourly=sms_counted(now))
    referral = new_referral(factory)  # submitting fires the enquiry thank-you at once
    [sms] = outbox_for(referral.id, channel="sms", rule_code="enquiry_thank_you")
    assert sms.status == "queued"
    assert sms.next_attempt_at >= now + timedelta(minutes=59)
    [email] = outbox_for(referral.id, channel="email", rule_code="enquiry_thank_you")
    assert email.next_attempt_at <= utcnow()
    tasks = list(session.scalars(select(Task).where(Task.referral_id == referral.id)))
    assert [(t.source, t.status) for t in tasks] == [("system", "open")]
    assert "spend cap" in tasks[0].title
    assert "global_hourly" in tasks[0].detail


def test_a_rendered_sms_knows_its_segments_and_carries_no_health_detail(factory):
    referral = new_referral(
        factory, patient={"language": "en"}, intake={"notes": "pain worse when sitting"}
    )
    messages = {m.channel: m for m in outbox_for(referral.id, rule_code="enquiry_thank_you")}
    sms, email = messages["sms"], messages["email"]
    assert sms.segments is not None and sms.segments >= 1
    assert email.segments is None
    procedure = referral.procedure.name
    forbidden = [procedure, procedure.lower(), "pain", "MRI", "back", "leg", "diagnos", "€", "$"]
    assert not [word for word in forbidden if word in sms.body_text], sms.body_text
    assert "/s/" in sms.body_text  # the private link (its short code) carries the news
    assert "/p/" not in sms.body_text
    assert sms.to_address == referral.patient.phone
    assert email.to_address == referral.patient.email and email.subject


def test_an_ad_hoc_text_goes_in_the_email_but_never_in_the_sms(factory):
    referral = new_referral(factory, patient={"language": "en"})
    secret = "Your L4-L5 disc herniation needs surgery"
    messages = enqueue(
        referral,
        kind="ad_hoc",
        audience="patient",
        channels=["sms", "email"],
        key="adhoc:x",
        fallback=False,
        extra={"subject": "Your results", "message": secret},
        now=NOON_BERLIN,
    ).messages
    by_channel = {m.channel: m for m in messages}
    assert secret not in by_channel["sms"].body_text
    assert secret in by_channel["email"].body_text
    assert by_channel["email"].subject == "Your results"


def test_rows_are_only_flushed_so_they_commit_or_roll_back_with_their_cause(factory, session):
    referral = new_referral(factory)
    before = outbox_count()
    _enqueue(referral, ["sms", "email"], key="tx:1", fallback=False)
    assert outbox_count() == before + 2
    session.rollback()
    assert outbox_count() == before
    assert db.session.scalar(select(Task.id).where(Task.referral_id == referral.id)) is None


def test_a_cap_check_reads_one_counter_row_not_the_outbox(
    app, factory, monkeypatch, no_quiet_hours, connection
):
    referral = new_referral(factory)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(connection, "before_cursor_execute", record)
    try:
        _enqueue(referral, ["sms"], key="counter:1", now=utcnow())
    finally:
        event.remove(connection, "before_cursor_execute", record)
    counters = [s for s in statements if "sms_spend_counters" in s]
    assert len(counters) == 1 and counters[0].startswith("INSERT"), statements
    assert not [s for s in statements if "count(" in s.lower()], statements


def test_a_refused_sms_is_not_counted_and_a_new_window_starts_empty(
    app, factory, monkeypatch, no_quiet_hours
):
    referral = new_referral(factory)  # its thank-you SMS is this hour's first
    now = utcnow()
    before = sms_counted(now)
    assert before >= 1
    _set_caps(app, monkeypatch, global_hourly=before)
    with pytest.raises(RateLimited):
        _enqueue(referral, ["sms"], key="counter:2", over_cap="reject", now=now)
    assert sms_counted(now) == before
    next_hour = now + timedelta(hours=1)
    assert sms_counted(next_hour) == 0
    [message] = _enqueue(
        referral, ["sms"], key="counter:3", over_cap="reject", now=next_hour
    ).messages
    assert message.status == "queued"
    assert sms_counted(next_hour) == 1
