"""The dispatcher in process, against the fake Twilio server and a local SMTP server."""

from __future__ import annotations

import email
import random
import time
from datetime import timedelta
from email import policy

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.messaging.composing.outbox import enqueue
from crm.messaging.delivery import dispatcher as dispatcher_module
from crm.messaging.delivery.dispatcher import BACKOFF_CAP, Dispatcher, DispatchSettings, backoff
from crm.messaging.delivery.email import SmtpMailer
from crm.messaging.delivery.sms import TwilioGateway
from crm.messaging.delivery.transports import Transports
from crm.patients.operations import set_consent
from tests.messaging.conftest import FROM_NUMBER, SMTP_PASSWORD, SMTP_USER
from tests.messaging.support import NO_QUIET_HOURS, new_referral, quiet_outbox, utc

CALLBACK = "https://crm.example/webhooks/twilio/status"
STALE = timedelta(seconds=60)


@pytest.fixture
def gateway(fake_twilio):
    with TwilioGateway(
        fake_twilio.account_sid,
        fake_twilio.auth_token or "",
        from_number=FROM_NUMBER,
        timeout=1.0,
        base_url=fake_twilio.base_url,
    ) as gateway:
        yield gateway


@pytest.fixture
def transports(gateway, smtp_server):
    mailer = SmtpMailer(
        smtp_server.host,
        smtp_server.port,
        from_address="care@hospital.example",
        security="none",
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        timeout=5,
    )
    return Transports(gateway, mailer, CALLBACK)


@pytest.fixture
def dispatcher(transports):
    settings = DispatchSettings(
        batch_size=20, max_attempts=3, stale_after=STALE, quiet_hours=NO_QUIET_HOURS
    )
    return Dispatcher(transports, settings, name="test")


@pytest.fixture
def referral(app, factory, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    referral = new_referral(factory, patient={"language": "en"})
    quiet_outbox()  # only the messages a test writes itself are due
    return referral


def _queue(referral, channels=("sms",), key="d:1", audience="patient"):
    return enqueue(
        referral,
        kind="mri_reminder" if audience == "patient" else "mri_review_overdue",
        audience=audience,
        channels=list(channels),
        key=key,
        fallback=False,
    ).messages


def _later(**delta) -> object:
    return utcnow() + timedelta(**delta)


def test_an_sms_is_sent_through_the_sdk_and_its_provider_id_recorded(
    referral, dispatcher, fake_twilio, session
):
    [message] = _queue(referral)
    assert dispatcher.run_once() == 1
    session.refresh(message)
    [stored] = fake_twilio.messages
    assert (message.status, message.provider_id) == ("sent", stored["sid"])
    assert message.provider_status == "sent" and message.sent_at is not None
    assert message.attempts == 1 and message.claimed_by.startswith("test:")
    [post] = fake_twilio.posts()
    assert post.form["To"] == referral.patient.phone
    assert post.form["From"] == FROM_NUMBER
    assert post.form["Body"] == message.body_text
    assert post.form["StatusCallback"] == f"{CALLBACK}?outbox={message.id}"
    assert dispatcher.run_once() == 0, "a sent message is never claimed again"


def test_a_patient_email_is_multipart_and_carries_list_unsubscribe(
    referral, dispatcher, smtp_server, session
):
    [message] = _queue(referral, channels=["email"])
    dispatcher.run_once()
    session.refresh(message)
    [envelope] = smtp_server.recorder.envelopes
    assert envelope.rcpt_tos == [referral.patient.email]
    parsed = email.message_from_bytes(envelope.content, policy=policy.default)
    assert message.status == "sent" and message.provider_id == parsed["Message-ID"]
    assert parsed.get_content_type() == "multipart/alternative"
    assert "/unsubscribe/" in parsed["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["X-CRM-Message"] == str(message.id)


def test_a_staff_email_has_no_unsubscribe_header(referral, dispatcher, smtp_server):
    _queue(referral, channels=["email"], audience="coordinator")
    dispatcher.run_once()
    [envelope] = smtp_server.recorder.envelopes
    parsed = email.message_from_bytes(envelope.content, policy=policy.default)
    assert parsed["List-Unsubscribe"] is None


@pytest.mark.parametrize(("status", "code"), [(500, "20500"), (503, "20500"), (429, "20429")])
def test_a_transient_error_requeues_with_backoff_and_counts_the_attempt(
    referral, dispatcher, fake_twilio, session, status, code
):
    [message] = _queue(referral)
    fake_twilio.program(status=status, code=None if status != 503 else 20500)
    before = utcnow()
    dispatcher.run_once()
    session.refresh(message)
    assert (message.status, message.attempts, message.error_code) == ("queued", 1, code)
    wait = message.next_attempt_at - before
    assert timedelta(seconds=14) <= wait <= timedelta(seconds=31)  # 30 s * U(0.5, 1)
    assert dispatcher.run_once() == 0, "not due again before its backoff"
    dispatcher.run_once(message.next_attempt_at + timedelta(seconds=1))
    session.refresh(message)
    assert (message.status, message.attempts) == ("sent", 2)
    assert len(fake_twilio.messages) == 1


def test_after_max_attempts_a_message_fails(referral, dispatcher, fake_twilio, session):
    [message] = _queue(referral)
    fake_twilio.program(status=500, times=None)
    waits = []
    for _ in range(3):
        before = utcnow()
        dispatcher.run_once(_later(hours=3))
        session.refresh(message)
        waits.append(message.next_attempt_at - before)
    assert (message.status, message.attempts) == ("failed", 3)
    assert waits[1] >= timedelta(seconds=29), "the second wait is longer: 60 s * U(0.5, 1)"
    assert dispatcher.run_once(_later(days=1)) == 0
    assert len(fake_twilio.posts()) == 3


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(timedelta(seconds=30) * 2 ** (attempt - 1), BACKOFF_CAP)
        assert ceiling / 2 <= backoff(attempt, rng) <= ceiling
    draws = {backoff(3, random.Random(seed)) for seed in range(20)}
    assert len(draws) == 20, "jitter spreads retries of messages that failed together"


def test_a_timeout_leaves_the_row_for_reconciliation_and_never_sends_twice(
    referral, dispatcher, fake_twilio, session
):
    """The provider accepted the message but answered after our timeout."""
    [message] = _queue(referral)
    fake_twilio.program(delay=1.5)  # the gateway gives up after 1 s; the fake still sends
    dispatcher.run_once()
    session.refresh(message)
    assert message.status == "sending" and message.attempts == 1
    assert "transport error" in message.error_message
    deadline = time.monotonic() + 5
    while not fake_twilio.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    [stored] = fake_twilio.messages
    assert dispatcher.run_once(_later(hours=1)) == 0, "not retried blindly"
    assert dispatcher.reconcile_stale(_later(seconds=61)) == 1
    session.refresh(message)
    assert (message.status, message.provider_id) == ("sent", stored["sid"])
    dispatcher.run_once(_later(hours=1))
    assert len(fake_twilio.messages) == 1


def test_a_timeout_the_provider_never_saw_is_sent_again_after_reconciliation(
    referral, dispatcher, fake_twilio, session
):
    [message] = _queue(referral)
    real_send = dispatcher.transports.sms.send

    def lost_on_the_way(*args, **kwargs):
        from crm.messaging.delivery.sms import TransientSmsError

        raise TransientSmsError("transport error: ConnectTimeout")

    dispatcher.transports.sms.send = lost_on_the_way
    dispatcher.run_once()
    dispatcher.transports.sms.send = real_send
    dispatcher.reconcile_stale(_later(seconds=61))
    session.refresh(message)
    assert message.status == "queued"
    dispatcher.run_once(_later(seconds=62))
    session.refresh(message)
    assert message.status == "sent"
    assert len(fake_twilio.messages) == 1


def test_opted_out_at_the_carrier_fails_and_withdraws_sms_consent(
    referral, dispatcher, fake_twilio, session
):
    [message] = _queue(referral)
    fake_twilio.program(status=400, code=21610)
    dispatcher.run_once()
    session.refresh(message)
    session.refresh(referral.patient)
    assert (message.status, message.error_code, message.attempts) == ("failed", "21610", 1)
    assert referral.patient.may_contact("sms") is False
    assert "21610" in referral.patient.consent_for("sms").source
    assert referral.patient.may_contact("email") is True
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "consent.sms"))
    assert (event.actor_type, event.actor_id) == ("patient", referral.patient_id)
    assert event.detail == {"granted": False, "source": "carrier opt-out (Twilio 21610)"}
    assert dispatcher.run_once(_later(days=1)) == 0


@pytest.mark.parametrize("code", [21211, 21614])
def test_an_invalid_or_landline_number_fails_without_retry(
    referral, dispatcher, fake_twilio, session, code
):
    [message] = _queue(referral)
    fake_twilio.program(status=400, code=code)
    dispatcher.run_once()
    session.refresh(message)
    assert (message.status, message.error_code) == ("failed", str(code))
    assert dispatcher.run_once(_later(days=1)) == 0
    assert len(fake_twilio.posts()) == 1
    assert referral.patient.may_contact("sms") is True


def test_consent_withdrawn_after_enqueue_suppresses_at_send_time(
    referral, dispatcher, fake_twilio, smtp_server, session
):
    messages = _queue(referral, channels=["sms", "email"])
    set_consent(referral.patient, "sms", False, "sms keyword (STOP)")
    session.commit()
    dispatcher.run_once()
    by_channel = {m.channel: m for m in messages}
    for message in messages:
        session.refresh(message)
    assert by_channel["sms"].status == "suppressed"
    assert by_channel["sms"].suppressed_reason == "consent_withdrawn"
    assert fake_twilio.posts() == []
    assert by_channel["email"].status == "sent" and len(smtp_server.recorder.envelopes) == 1


def test_quiet_hours_at_send_time_wait_for_the_morning_without_counting_an_attempt(
    referral, transports, fake_twilio, smtp_server, session, monkeypatch
):
    messages = _queue(referral, channels=["sms", "email"])
    night = utc(2030, 1, 15, 21, 30)  # 22:30 in Berlin
    monkeypatch.setattr(dispatcher_module, "utcnow", lambda: night)
    night_owl = Dispatcher(
        transports, DispatchSettings(quiet_hours="21:00-08:30", stale_after=STALE), name="night"
    )
    assert night_owl.run_once(night) == 2
    for message in messages:
        session.refresh(message)
    by_channel = {m.channel: m for m in messages}
    sms = by_channel["sms"]
    assert (sms.status, sms.attempts) == ("queued", 0)
    assert sms.next_attempt_at == utc(2030, 1, 16, 7, 30)  # 08:30 in Berlin
    assert fake_twilio.posts() == []
    assert by_channel["email"].status == "sent", "email is not held by quiet hours"
    morning = utc(2030, 1, 16, 7, 30)
    monkeypatch.setattr(dispatcher_module, "utcnow", lambda: morning)
    assert night_owl.run_once(morning) == 1
    session.refresh(sms)
    assert (sms.status, sms.attempts) == ("sent", 1)


def test_two_dispatchers_never_claim_the_same_row(referral, transports, fake_twilio, session):
    _queue(referral, key="a")
    _queue(referral, key="b")
    settings = DispatchSettings(batch_size=1, quiet_hours=NO_QUIET_HOURS)
    first, second = Dispatcher(transports, settings, "one"), Dispatcher(transports, settings, "two")
    claimed_first = first.claim(utcnow())
    claimed_second = second.claim(utcnow())
    assert len(claimed_first) == len(claimed_second) == 1
    assert claimed_first[0].id != claimed_second[0].id
    assert second.claim(utcnow()) == []


def _crash_after_claim(dispatcher, message, session):
    """A dispatcher that claimed the row and died before recording the outcome."""
    [claimed] = dispatcher.claim(utcnow())
    assert claimed.id == message.id
    session.refresh(message)
    assert message.status == "sending"


def test_reconcile_adopts_the_providers_copy_instead_of_sending_again(
    referral, dispatcher, fake_twilio, gateway, session
):
    [message] = _queue(referral)
    _crash_after_claim(dispatcher, message, session)
    result = gateway.send(message.to_address, message.body_text)  # it did reach Twilio
    assert dispatcher.reconcile_stale(utcnow()) == 0, "not stale yet"
    assert dispatcher.reconcile_stale(_later(seconds=61)) == 1
    session.refresh(message)
    assert (message.status, message.provider_id) == ("sent", result.provider_id)
    assert dispatcher.run_once(_later(seconds=62)) == 0
    assert len(fake_twilio.posts()) == 1


def test_reconcile_requeues_a_message_the_provider_never_got(
    referral, dispatcher, fake_twilio, session
):
    [message] = _queue(referral)
    _crash_after_claim(dispatcher, message, session)
    dispatcher.reconcile_stale(_later(seconds=61))
    session.refresh(message)
    assert message.status == "queued" and message.claimed_by is None
    dispatcher.run_once(_later(seconds=62))
    session.refresh(message)
    assert message.status == "sent"
    assert len(fake_twilio.posts()) == 1


def test_reconcile_does_not_adopt_a_copy_already_adopted_by_another_row(
    referral, dispatcher, fake_twilio, gateway, session
):
    [first] = _queue(referral, key="one")
    dispatcher.run_once()
    session.refresh(first)
    [second] = _queue(referral, key="two")
    second.body_text = first.body_text  # same words to the same number
    session.commit()
    _crash_after_claim(dispatcher, second, session)
    dispatcher.reconcile_stale(_later(seconds=61))
    session.refresh(second)
    assert second.status == "queued", "the only copy at the provider belongs to the first row"


def test_reconcile_leaves_the_row_alone_when_the_provider_cannot_be_asked(
    referral, dispatcher, fake_twilio, session
):
    [message] = _queue(referral)
    _crash_after_claim(dispatcher, message, session)
    fake_twilio.program(status=500, method="GET", times=None)
    assert dispatcher.reconcile_stale(_later(seconds=61)) == 1
    session.refresh(message)
    assert message.status == "sending" and message.provider_id is None
    assert fake_twilio.posts() == []


def test_a_status_callback_that_beats_our_own_commit_is_not_overwritten(
    app, referral, dispatcher, fake_twilio, client, session, monkeypatch
):
    """Twilio may call back (with ?outbox=) before the dispatcher records `sent`."""
    token = "callback-token"
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", token)
    base = app.config["CRM"]["PUBLIC_BASE_URL"]
    [message] = _queue(referral)
    real_send = dispatcher.transports.sms.send

    def send_then_callback(to, body, status_callback=None):
        result = real_send(to, body, status_callback)
        path = f"/webhooks/twilio/status?outbox={message.id}"
        form = {"MessageSid": result.provider_id, "MessageStatus": "delivered"}
        signature = RequestValidator(token).compute_signature(base + path, form)
        response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 204
        return result

    dispatcher.transports.sms.send = send_then_callback
    dispatcher.run_once()
    session.refresh(message)
    assert message.status == "delivered" and message.provider_status == "delivered"
    assert message.provider_id == fake_twilio.messages[0]["sid"]
    assert message.sent_at is not None and message.delivered_at is not None


class _FailingOnce:
    """An SMS gateway whose first send raises what no one foresaw; later sends succeed."""

    def __init__(self, gateway) -> None:
        self.gateway, self.calls = gateway, 0

    def send(self, to, body, status_callback=None):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("an unforeseen bug in the gateway")
        return self.gateway.send(to, body, status_callback)

    def messages_to(self, to, since):
        return self.gateway.messages_to(to, since)


def test_an_unforeseen_error_on_one_message_keeps_the_outcomes_of_the_others(
    app, factory, transports, fake_twilio, session, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    withdrawn, failing, fine = (new_referral(factory, patient={"language": "en"}) for _ in "abc")
    quiet_outbox()
    [suppressed] = _queue(withdrawn, key="iso:1")  # settled first: consent is gone
    set_consent(withdrawn.patient, "sms", False, "sms keyword (STOP)")
    [broken] = _queue(failing, key="iso:2")
    [sent] = _queue(fine, key="iso:3")
    session.commit()
    isolated = Dispatcher(
        Transports(_FailingOnce(transports.sms), transports.email, CALLBACK),
        DispatchSettings(quiet_hours=NO_QUIET_HOURS),
        name="isolation",
    )
    assert isolated.run_once() == 3
    for message in (suppressed, broken, sent):
        session.refresh(message)
    assert (suppressed.status, suppressed.suppressed_reason) == ("suppressed", "consent_withdrawn")
    assert broken.status == "sending"  # left for the reconciler, as before
    assert sent.status == "sent" and sent.provider_id
    assert len(fake_twilio.messages) == 1


def test_an_error_inside_a_failed_messages_own_writes_undoes_them_alone(
    app, factory, dispatcher, fake_twilio, session, monkeypatch
):
    """A failed message writes in a savepoint of its own: when those writes break (here
    withdrawing consent after 21610), its row is left `sending` for the reconciler, as if
    nothing were written, and the other messages' outcomes are recorded."""
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    refused, fine = (new_referral(factory, patient={"language": "en"}) for _ in "ab")
    quiet_outbox()
    [broken] = _queue(refused, key="w:1")
    [sent] = _queue(fine, key="w:2")
    session.commit()
    fake_twilio.program(status=400, code=21610, to=refused.patient.phone)

    def breaks(*args, **kwargs):
        raise RuntimeError("an unforeseen bug while withdrawing consent")

    monkeypatch.setattr(dispatcher_module, "set_own_consent", breaks)
    assert dispatcher.run_once() == 2
    session.refresh(broken)
    session.refresh(sent)
    session.refresh(refused.patient)
    assert (broken.status, broken.error_code) == ("sending", None)  # `failed` undone
    assert refused.patient.may_contact("sms") is True
    assert sent.status == "sent" and sent.provider_id
