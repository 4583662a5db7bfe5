"""The dispatch job's drain on committed data (a scratch PostgreSQL database): one pooled
connection for all its batches, each claim committed before its sends, and what a stop or
a broken connection between a claim and its record leaves is recovered once.

The SMS go to the file transport (no Twilio settings), through a witness that reads, from a
connection of its own, what the database has committed for each message as it is sent."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy import event

from crm.extensions import db
from crm.scheduler.jobs import Jobs
from tests.conftest import postgres_only
from tests.live import live_app, scratch_database
from tests.messaging.delivery.test_dispatch_processes import outbox_statuses, seed

pytestmark = postgres_only
BATCH = 5


@pytest.fixture(scope="module")
def drain_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str, Path]]:
    tmp = tmp_path_factory.mktemp("drain")
    with scratch_database() as url:
        app = live_app(url, tmp, DISPATCH_BATCH_SIZE=BATCH)
        try:
            yield app, url, tmp / "outbox" / "sms.jsonl"
        finally:
            with app.app_context():
                db.engine.dispose()


@pytest.fixture
def drain(drain_db) -> Iterator[tuple[Flask, str, Path]]:
    app, url, sent_file = drain_db
    sent_file.unlink(missing_ok=True)
    yield app, url, sent_file


class StopHere(BaseException):
    """The process stopping at this point (nothing in the dispatcher catches it)."""


class Witness:
    """Wraps the SMS gateway: before each send, the row's committed status, read from another
    connection; optionally something done at the n-th send (1-based)."""

    def __init__(self, gateway, url: str, at: int = 0, then=None) -> None:
        self.gateway, self.url, self.at, self.then = gateway, url, at, then
        self.committed: list[str] = []

    def send(self, to, body, status_callback=None, **kwargs):
        with psycopg.connect(self.url.replace("+psycopg", "")) as conn:
            row = conn.execute("SELECT status FROM outbox_messages WHERE body_text = %s", (body,))
            self.committed.append(row.fetchone()[0])
            if len(self.committed) == self.at:
                self.then(conn)
        return self.gateway.send(to, body, status_callback, **kwargs)

    def messages_to(self, to, since):
        return self.gateway.messages_to(to, since)


def _jobs(app: Flask, url: str, **witness) -> tuple[Jobs, Witness]:
    jobs = Jobs(app, name="drain-test")
    spy = Witness(jobs.dispatcher.transports.sms, url, **witness)
    jobs.dispatcher.transports.sms = spy
    return jobs, spy


def _bodies_sent(sent_file: Path) -> Counter:
    lines = sent_file.read_text().splitlines() if sent_file.exists() else []
    return Counter(json.loads(line)["body"] for line in lines)


def _reconcile_now(app: Flask, jobs: Jobs) -> None:
    """The reconciler's pass, as if the rows left `sending` were already stale."""
    jobs.dispatcher.settings = replace(jobs.dispatcher.settings, stale_after=timedelta(0))
    with app.app_context():
        jobs.dispatcher.reconcile_stale()
        db.session.remove()


def test_a_drain_takes_one_connection_for_all_its_batches_and_commits_each_claim_first(drain):
    app, url, sent_file = drain
    bodies = seed(url, 3 * BATCH + 2)  # four batches
    jobs, witness = _jobs(app, url)
    checkouts = []

    def count(*_):
        checkouts.append(1)

    pool = jobs.engine.pool
    event.listen(pool, "checkout", count)
    try:
        assert jobs.dispatch() == len(bodies)
    finally:
        event.remove(pool, "checkout", count)
    assert len(checkouts) == 1
    # every message was `sending` in committed data when it went: its claim had committed
    assert witness.committed == ["sending"] * len(bodies)
    assert _bodies_sent(sent_file) == Counter(bodies)
    assert outbox_statuses(url) == Counter({"sent": len(bodies)})
    assert jobs.failures == 0


def test_a_batch_claimed_with_the_last_record_and_never_sent_is_sent_once_after_reconcile(
    drain,
):
    """Batch 1's outcomes and batch 2's claim commit together; the process stops before the
    first send of batch 2: its rows stay `sending`, the reconciler finds no copy at the
    provider and requeues them, and the next drain sends each message once."""
    app, url, sent_file = drain
    bodies = seed(url, 3 * BATCH)

    def stop(_conn):
        raise StopHere

    jobs, _ = _jobs(app, url, at=BATCH + 1, then=stop)
    with pytest.raises(StopHere):
        jobs.dispatch()
    assert outbox_statuses(url) == Counter({"sent": BATCH, "sending": BATCH, "queued": BATCH})
    _reconcile_now(app, jobs)
    assert outbox_statuses(url) == Counter({"sent": BATCH, "queued": 2 * BATCH})
    assert Jobs(app, name="drain-test-2").dispatch() == 2 * BATCH
    assert _bodies_sent(sent_file) == Counter(bodies)
    assert outbox_statuses(url) == Counter({"sent": 3 * BATCH})


def test_a_connection_broken_between_claim_and_record_ends_the_drain_and_loses_nothing(drain):
    """The drain's connection is cut while batch 2 is being sent: its record fails, the drain
    ends (counted as a failed job), the broken connection is not reused, and the reconciler
    adopts what reached the provider: every message goes once."""
    app, url, sent_file = drain
    bodies = seed(url, 3 * BATCH)

    def cut(conn):
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    jobs, _ = _jobs(app, url, at=BATCH + 3, then=cut)
    assert jobs.dispatch() == 0  # the drain failed
    assert jobs.failures == 1
    assert outbox_statuses(url) == Counter({"sent": BATCH, "sending": BATCH, "queued": BATCH})
    _reconcile_now(app, jobs)  # batch 2 went out whole (sends need no database): adopted
    assert outbox_statuses(url) == Counter({"sent": 2 * BATCH, "queued": BATCH})
    assert jobs.dispatch() == BATCH  # on a fresh connection
    assert jobs.failures == 1
    assert _bodies_sent(sent_file) == Counter(bodies)
    assert outbox_statuses(url) == Counter({"sent": 3 * BATCH})
