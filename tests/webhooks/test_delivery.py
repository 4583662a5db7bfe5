"""Delivering webhooks to a real receiver on 127.0.0.1: signatures, concurrency, retries
with backoff, the 72-hour limit, disabling an endpoint and telling the agency."""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.email import SmtpMailer
from crm.messaging.delivery.transports import Transports
from crm.messaging.models import OutboxMessage
from crm.webhooks.delivery import BACKOFF_CAP, backoff
from crm.webhooks.jobs import deliver_webhooks
from crm.webhooks.models import WebhookAttempt
from crm.webhooks.signing import new_secret
from tests.fakes.webhook_receiver import running_receiver
from tests.messaging import conftest as messaging_fixtures
from tests.messaging.conftest import SMTP_PASSWORD, SMTP_USER
from tests.webhooks import delivery_support as support
from tests.webhooks.delivery_support import START, fresh

smtp_server = messaging_fixtures.smtp_server  # the local SMTP server the messaging tests use


@pytest.fixture
def secret() -> str:
    return new_secret()


def attempts_of(delivery) -> list[WebhookAttempt]:
    return list(
        db.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.id)
        )
    )


def agency_emails(agency_id: int) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.agency_id == agency_id,
                OutboxMessage.kind == "webhook_disabled_agency",
            )
        )
    )


def test_a_delivered_webhook_verifies_with_the_packages_own_verifier(session, secret):
    with running_receiver(secret) as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        assert support.dispatcher().run_once(START) == 1
    [received] = receiver.received
    assert received.verified, received.error
    assert received.id == delivery.event.public_id
    assert json.loads(received.body) == delivery.event.payload
    assert received.header("content-type") == "application/json"
    assert received.header("user-agent").startswith("ReferralCRM-Webhooks/")
    row = fresh(delivery)
    assert (row.status, row.last_status_code, row.delivered_at) == ("delivered", 200, START)
    [attempt] = attempts_of(delivery)
    assert attempt.status_code == 200 and attempt.error is None


def test_the_body_is_the_same_bytes_on_every_attempt(session, secret):
    with running_receiver(secret, mode="failing") as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        dispatcher = support.dispatcher()
        dispatcher.run_once(START)
        dispatcher.run_once(fresh(delivery).next_attempt_at)
    first, second = receiver.received
    assert first.body == second.body and first.id == second.id


def test_during_a_rotation_overlap_both_secrets_sign_and_each_verifies(session):
    old, new = new_secret(), new_secret()
    with running_receiver([old, new]) as receiver:  # verifies with each secret on its own
        support.delivery(support.endpoint(receiver.url, secrets=[old, new]))
        support.dispatcher().run_once(START)
    [received] = receiver.received
    assert received.verified, received.error
    assert len(received.header("webhook-signature").split(" ")) == 2


def test_a_secret_past_its_expiry_no_longer_signs(session):
    old, new = new_secret(), new_secret()
    with running_receiver(old) as receiver:
        support.delivery(support.endpoint(receiver.url, secrets=[new], expired=[old]))
        support.dispatcher().run_once(START)
    [received] = receiver.received
    assert not received.verified
    assert len(received.header("webhook-signature").split(" ")) == 1


def test_a_slow_receiver_does_not_delay_a_fast_ones_deliveries_in_the_same_batch(session, secret):
    with (
        running_receiver(secret, mode="slow", delay=1.5) as slow,
        running_receiver(secret) as fast,
    ):
        support.delivery(support.endpoint(slow.url, secrets=[secret]))
        for _ in range(5):
            support.delivery(support.endpoint(fast.url, secrets=[secret]))
        started = time.monotonic()
        assert support.dispatcher(concurrency=4).run_once(START) == 6
        took = time.monotonic() - started
    assert took >= 1.5  # the batch waited for the slow one...
    assert len(fast.received) == 5  # ...but the fast one had all of its at once
    assert max(r.at for r in fast.received) - started < 1.5  # before the slow one answered


def test_the_pump_never_lets_a_slow_receiver_hold_up_a_fast_one(session, secret):
    with (
        running_receiver(secret, mode="slow", delay=4.0) as slow,
        running_receiver(secret) as fast,
    ):
        slow_endpoint = support.endpoint(slow.url, secrets=[secret])
        fast_endpoint = support.endpoint(fast.url, secrets=[secret])
        for _ in range(4):
            support.delivery(slow_endpoint)
        for _ in range(12):
            support.delivery(fast_endpoint)
        assert support.dispatcher(concurrency=4, batch_size=10).pump() == 16
    assert len(fast.received) == 12 and len(slow.received) == 4
    fast_done = max(r.at for r in fast.received)
    first_slow_answer = min(r.at for r in slow.received) + 4.0
    assert fast_done < first_slow_answer  # the fast one never waited for a slow answer
    # one slot is always kept from the slow one: it never had the whole pool
    assert sum(r.at < first_slow_answer for r in slow.received) == 3


def test_the_scheduler_job_delivers_everything_due(session, secret):
    with running_receiver(secret) as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        rows = [support.delivery(hook) for _ in range(3)]
        assert deliver_webhooks(support.dispatcher()) == 3
    assert {fresh(row).status for row in rows} == {"delivered"}


def test_full_jitter_waits_lie_under_a_doubling_ceiling():
    rng = random.Random(7)
    for attempts in range(1, 16):
        ceiling = min(timedelta(seconds=30) * 2 ** (attempts - 1), BACKOFF_CAP)
        waits = [backoff(attempts, rng) for _ in range(50)]
        assert all(timedelta(seconds=1) <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 40  # random, not a fixed schedule


def test_a_failing_receiver_is_retried_with_growing_waits_then_failed_after_72_hours(
    session, secret
):
    with running_receiver(secret, mode="failing") as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        dispatcher = support.dispatcher()
        now, tried_at = START, []
        while (row := fresh(delivery)).status == "pending":
            now = row.next_attempt_at
            tried_at.append(now)
            dispatcher.run_once(now)
    waits = [later - earlier for earlier, later in pairwise(tried_at)]
    assert waits[:5] == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480)]
    assert all(a <= b for a, b in pairwise(waits[:-1]))  # the last is cut at 72 h
    assert max(waits) == BACKOFF_CAP
    assert tried_at[-1] == START + timedelta(hours=72)  # one last try at the limit
    row = fresh(delivery)
    assert row.status == "failed" and row.last_status_code == 500
    assert "given up" in row.last_error
    assert len(attempts_of(delivery)) == len(receiver.received) == row.attempts == len(tried_at)


def test_retry_after_of_a_throttling_receiver_is_honoured(session, secret):
    with running_receiver(secret, mode="throttled", retry_after="120") as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        support.dispatcher().run_once(START)
    row = fresh(delivery)
    assert (row.status, row.last_status_code) == ("pending", 429)
    assert row.next_attempt_at == START + timedelta(seconds=120)


def test_throttling_answers_do_not_count_towards_disabling(session, secret):
    with running_receiver(secret, mode="throttled", retry_after="60") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        for _ in range(3):
            support.delivery(hook)
        support.dispatcher(disable_after=2).run_once(START)
    hook = fresh(hook)
    assert hook.disabled_at is None and hook.consecutive_failures == 0


def test_a_retry_after_beyond_the_cap_is_held_to_the_cap(session, secret):
    with running_receiver(secret, mode="throttled", retry_after="9999999") as receiver:
        delivery = support.delivery(support.endpoint(receiver.url, secrets=[secret]))
        support.dispatcher().run_once(START)
    assert fresh(delivery).next_attempt_at == START + BACKOFF_CAP


def test_repeated_failures_disable_the_endpoint_and_email_the_agency_once(session, secret):
    with running_receiver(secret, mode="failing") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        rows = [support.delivery(hook) for _ in range(3)]
        dispatcher = support.dispatcher(disable_after=3)
        dispatcher.run_once(START)
        later = START + timedelta(hours=1)
        assert dispatcher.run_once(later) == 0  # a disabled endpoint is not sent to
    hook = fresh(hook)
    assert hook.disabled_at == START and hook.consecutive_failures == 3
    assert "3 deliveries failed in a row" in hook.disabled_reason
    assert "HTTP 500" in hook.disabled_reason
    [email] = agency_emails(hook.agency_id)
    assert email.to_address == "ops@agency.example" and email.status == "queued"
    assert hook.url in email.body_text and "failed in a row" in email.body_text
    assert "/agency/webhooks" in email.body_text
    assert {fresh(row).status for row in rows} == {"pending"}  # they wait for the agency


def test_a_success_resets_the_count_of_failures_in_a_row(session, secret):
    with running_receiver(secret, mode="failing") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        support.delivery(hook)
        support.delivery(hook)
        dispatcher = support.dispatcher()
        dispatcher.run_once(START)
        assert fresh(hook).consecutive_failures == 2
        receiver.mode = "ok"
        dispatcher.run_once(START + timedelta(hours=1))
    assert fresh(hook).consecutive_failures == 0


def test_410_gone_disables_the_endpoint_at_once_and_says_so(session, secret):
    with running_receiver(secret, mode="gone") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        delivery = support.delivery(hook)
        support.dispatcher().run_once(START)
    hook = fresh(hook)
    assert hook.disabled_at == START and "410 Gone" in hook.disabled_reason
    assert fresh(delivery).status == "pending"
    assert len(agency_emails(hook.agency_id)) == 1


def test_deliveries_to_a_disabled_endpoint_go_out_once_it_is_enabled_again(session, secret):
    with running_receiver(secret) as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        hook.disabled_at, hook.disabled_reason = START, "switched off by a test"
        delivery = support.delivery(hook)
        dispatcher = support.dispatcher()
        assert dispatcher.run_once(START) == 0
        hook.disabled_at = None  # the agency switches it on
        db.session.commit()
        assert dispatcher.run_once(START + timedelta(days=1)) == 1
    assert fresh(delivery).status == "delivered" and len(receiver.received) == 1


def test_an_agency_without_a_contact_address_is_disabled_without_an_email(session, secret):
    with running_receiver(secret, mode="gone") as receiver:
        hook = support.endpoint(
            receiver.url, owner=support.agency(contact_email=None), secrets=[secret]
        )
        support.delivery(hook)
        support.dispatcher().run_once(START)
    assert fresh(hook).disabled_at == START
    assert agency_emails(hook.agency_id) == []


def test_a_batch_posts_concurrently_not_one_after_another(session, secret):
    with running_receiver(secret, mode="slow", delay=1.0) as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        for _ in range(4):
            support.delivery(hook)
        started = time.monotonic()
        support.dispatcher(concurrency=4).run_once(START)
        took = time.monotonic() - started
    assert took < 2.0  # four sleeps of a second overlapped (one after another: 4 s)
    assert len(receiver.received) == 4


def test_the_disabling_email_goes_out_through_the_message_dispatcher_once(
    session, secret, smtp_server
):
    with running_receiver(secret, mode="gone") as receiver:
        hook = support.endpoint(receiver.url, secrets=[secret])
        support.delivery(hook)
        support.dispatcher().run_once(START)
    mailer = SmtpMailer(
        smtp_server.host,
        smtp_server.port,
        from_address="care@hospital.example",
        security="none",
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        timeout=5,
    )
    messages = Dispatcher(Transports(None, mailer, None), DispatchSettings(), name="test")
    messages.run_once()
    messages.run_once()
    [envelope] = smtp_server.recorder.envelopes
    assert envelope.rcpt_tos == ["ops@agency.example"]
    assert b"410 Gone" in envelope.content
    [email] = agency_emails(hook.agency_id)
    assert email.status == "sent"


def test_every_attempt_is_counted_in_the_metrics_by_outcome(session, secret):
    from prometheus_client import REGISTRY

    def counted(outcome: str) -> float:
        value = REGISTRY.get_sample_value("crm_webhook_attempts_total", {"outcome": outcome})
        return value or 0.0

    delivered, failed = counted("delivered"), counted("http_500")
    with running_receiver(secret) as good, running_receiver(secret, mode="failing") as bad:
        support.delivery(support.endpoint(good.url, secrets=[secret]))
        support.delivery(support.endpoint(bad.url, secrets=[secret]))
        assert support.dispatcher().run_once(START) == 2
    assert counted("delivered") == delivered + 1
    assert counted("http_500") == failed + 1
