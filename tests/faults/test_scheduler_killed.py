"""The long-running scheduler (`python -m crm.scheduler`) killed with SIGKILL twice: once
mid-sweep (its batch of nudges claimed and being fired, held on a lock the test
takes on the outbox so the kill lands inside the transaction) and once mid-dispatch (rows
claimed `sending`, their SMS maybe handed to the provider, the batch's outcomes not
committed). Restarted each time, it finishes the work: every nudge fires once, every SMS
reaches the (fake) provider exactly once, every message ends `sent`.

What makes it so: the sweep commits per batch and claims with FOR UPDATE SKIP LOCKED, so a
killed batch is simply pending again; each outbox row has a unique idempotency key; the
dispatcher commits its claim before calling the provider, and the reconciler later asks
the provider about rows left `sending` (adopting the copy it finds, else requeueing).
Email cannot be asked about (SMTP has no such query) and stays at-least-once: here it is
checked to be sent, not to be sent once (see docs/operations.md).
(tests/messaging/delivery/test_dispatch_processes.py kills `--once` runs mid-batch.)"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from crm.extensions import db
from tests.conftest import postgres_only
from tests.factories import Factory
from tests.fakes.twilio_server import running_fake_twilio
from tests.faults.processes import app_env, kill9, scheduler
from tests.faults.support import gone, plain, scalar, stuck_backend
from tests.live import live_app
from tests.messaging.delivery.test_dispatch_processes import seed as seed_sms

pytestmark = [pytest.mark.faults, postgres_only]
REFERRALS = 30  # two nudges each
SMS = 150


def _seed_due_nudges(url: str, tmp: Path, agency) -> tuple[int, list[str]]:
    app = live_app(url, tmp / "app")
    with app.app_context():
        factory = Factory(db.session)
        for n in range(REFERRALS):
            factory.referral(agency, patient={"phone": f"+491511234{n:04d}"})
        db.session.remove()
        db.engine.dispose()
    # The enquiry's nudges fire inside the submission (offset 0); make them due instead,
    # as nudges whose delay has passed, and their messages not yet written.
    bodies = seed_sms(url, SMS)  # queued SMS rows (and the submissions' messages gone)
    with psycopg.connect(plain(url)) as conn:
        due = conn.execute(
            "UPDATE scheduled_nudges SET status = 'pending', finished_at = NULL, "
            "due_at = now() - interval '1 minute'"
        ).rowcount
    return due, bodies


def _counts(url: str) -> tuple[int, int, Counter]:
    with psycopg.connect(plain(url)) as conn:
        fired = conn.execute("SELECT count(*) FROM scheduled_nudges WHERE status <> 'pending'")
        pending = conn.execute("SELECT count(*) FROM scheduled_nudges WHERE status = 'pending'")
        statuses = Counter(
            dict(conn.execute("SELECT status, count(*) FROM outbox_messages GROUP BY status"))
        )
        return fired.fetchone()[0], pending.fetchone()[0], statuses


def _by_channel(url: str) -> list[tuple]:
    with psycopg.connect(plain(url)) as conn:
        return conn.execute(
            "SELECT channel, audience, status, suppressed_reason, count(*) FROM outbox_messages "
            "GROUP BY 1, 2, 3, 4"
        ).fetchall()


def _wait_for(condition, within: float, what: str, step: float = 0.02):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(step)
    raise AssertionError(f"never saw {what}")


def test_a_scheduler_killed_mid_sweep_and_mid_dispatch_sends_every_sms_exactly_once(
    seeded, tmp_path
):
    due, bodies = _seed_due_nudges(seeded.url, tmp_path, seeded.agency)
    assert due == 2 * REFERRALS
    args = ("--dispatch-seconds", "0.5", "--sweep-seconds", "0.5", "--reconcile-seconds", "1")
    with running_fake_twilio() as fake:
        fake.program(delay=0.05, times=None, method="POST")  # a slow provider: long batches
        env = app_env(
            seeded.url,
            tmp_path,
            TWILIO_ACCOUNT_SID=fake.account_sid,
            TWILIO_AUTH_TOKEN=fake.auth_token or "",
            TWILIO_FROM_NUMBER="+15005550006",
            TWILIO_BASE_URL=fake.base_url,
            DISPATCH_BATCH_SIZE="10",
            DISPATCH_STALE_SECONDS="2",
        )
        log = tmp_path / "scheduler.log"

        # mid-sweep: the test locks the outbox, so the sweep's batch (its nudges claimed
        # FOR UPDATE, some fired) waits on the lock before its first message is written
        with psycopg.connect(plain(seeded.url)) as locker:
            locker.execute("LOCK TABLE outbox_messages IN EXCLUSIVE MODE")
            first = scheduler(env, log, *args)
            with psycopg.connect(plain(seeded.url), autocommit=True) as watcher:
                sweep = stuck_backend(watcher, within=60)
            kill9(first)
            locker.rollback()
        assert gone(seeded.url, sweep)
        fired, pending, statuses = _counts(seeded.url)
        assert (fired, pending) == (0, due)  # the killed batch rolled back whole
        assert statuses == Counter({"queued": SMS})

        second = scheduler(env, log, *args)
        # mid-dispatch: rows claimed `sending`, their batch not settled
        _wait_for(lambda: _counts(seeded.url)[2]["sending"] > 0, 60, "rows being sent")
        kill9(second)
        assert _counts(seeded.url)[2]["sending"] > 0

        third = scheduler(env, log, *args)
        try:
            _wait_for(
                lambda: (c := _counts(seeded.url))[1] == 0 and set(c[2]) <= {"sent", "suppressed"},
                90,
                "every nudge fired and every message settled",
                step=0.5,
            )
        finally:
            third.terminate()
            third.wait(timeout=20)
        at_provider = Counter(post.form["Body"] for post in fake.posts())
        sent_sms = scalar(
            seeded.url,
            "SELECT count(*) FROM outbox_messages WHERE channel = 'sms' AND status = 'sent'",
        )
        emails = scalar(seeded.url, "SELECT count(*) FROM outbox_messages WHERE channel = 'email'")

    fired, pending, _ = _counts(seeded.url)
    assert (fired, pending) == (due, 0)  # every nudge fired, once (unique idempotency keys)
    assert emails == REFERRALS, _by_channel(seeded.url)  # one per coordinator nudge
    assert sent_sms == SMS, _by_channel(seeded.url)
    assert sorted(at_provider) == sorted(bodies)  # none lost
    assert set(at_provider.values()) == {1}, "an SMS went twice"
    assert "failed" not in log.read_text(), log.read_text()[-3000:]
