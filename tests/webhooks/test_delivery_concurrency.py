"""Two webhook dispatchers at once never send one delivery twice, and keep each referral's
order between them.

Real concurrent claims need real commits, so this runs on a scratch PostgreSQL database of
its own, with a dispatcher in each of two threads (each its own app context, session and
connection). SQLite serialises writers and has no FOR UPDATE SKIP LOCKED: skipped there.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from crm.extensions import db
from crm.webhooks.dispatcher import WebhookDispatcher
from crm.webhooks.models import WebhookDelivery
from crm.webhooks.signing import new_secret
from tests.conftest import ON_POSTGRES
from tests.fakes.webhook_receiver import running_receiver
from tests.live import app_on_scratch_database
from tests.webhooks import delivery_support as support

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL: concurrent claims with FOR UPDATE SKIP LOCKED (SQLite has one"
    " writer at a time); set CRM_TEST_DATABASE_URL",
)
KEYS, PER_KEY = 40, 6


@pytest.fixture
def scratch_app(tmp_path) -> Iterator[Flask]:
    with app_on_scratch_database(tmp_path) as app:
        yield app


def _run(app: Flask, start: threading.Barrier, handled: list[int], name: str) -> None:
    with app.app_context():
        dispatcher = WebhookDispatcher(support.settings(concurrency=4, batch_size=7), name=name)
        start.wait()
        try:
            handled.append(dispatcher.pump())
        finally:
            dispatcher.close()
            db.session.remove()


def test_two_dispatchers_at_once_send_every_delivery_exactly_once_in_order(scratch_app):
    secret = new_secret()
    with running_receiver(secret, mode="slow", delay=0.005) as receiver:
        with scratch_app.app_context():
            hooks = [support.endpoint(receiver.url, secrets=[secret]) for _ in range(2)]
            expected: dict[str, tuple[int, str]] = {}
            for _ in range(PER_KEY):  # each referral's events interleaved with the others'
                for key in range(KEYS):
                    row = support.delivery(hooks[key % 2], ordering_key=f"referral:{key}")
                    expected[row.event.public_id] = (row.endpoint_id, row.ordering_key)
            db.session.remove()
        start, handled = threading.Barrier(2), []
        threads = [
            threading.Thread(target=_run, args=(scratch_app, start, handled, f"d{n}"))
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        received = receiver.received
    counts = Counter(r.id for r in received)
    assert sorted(counts) == sorted(expected) and set(counts.values()) == {1}
    assert all(r.verified for r in received)
    assert sum(handled) == KEYS * PER_KEY and min(handled) > 0  # both took a share
    with scratch_app.app_context():
        rows = db.session.scalars(select(WebhookDelivery)).all()
        assert {row.status for row in rows} == {"delivered"}
        order = {row.event.public_id: row.id for row in rows}
        db.session.remove()
    arrived: dict[tuple[int, str], list[int]] = defaultdict(list)
    for r in sorted(received, key=lambda r: r.at):
        arrived[expected[r.id]].append(order[r.id])
    assert all(ids == sorted(ids) for ids in arrived.values())
