"""The SMS spend caps hold under concurrency: parallel ad-hoc SMS against a real server on
PostgreSQL queue exactly the cap, and every other request is answered 429."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, update

from crm.extensions import db
from crm.messaging.models import OutboxMessage, SmsSpendCounter
from tests.conftest import postgres_only
from tests.factories import Factory
from tests.live import LiveServer, live_app, scratch_database, serving

pytestmark = postgres_only

CAP, REQUESTS = 5, 20


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


def _setup(app: Flask, agencies: int) -> tuple[dict[str, str], list[int]]:
    """A coordinator's headers and REQUESTS referrals spread over `agencies` agencies, all
    committed; the messages their submission wrote are cancelled and the spend counters
    emptied so only ours count."""
    with app.app_context():
        factory = Factory(db.session)
        coordinator = factory.staff("coordinator")
        callers = [factory.agency() for _ in range(agencies)]
        referrals = [factory.referral(callers[n % agencies]).id for n in range(REQUESTS)]
        db.session.execute(update(OutboxMessage).values(status="cancelled"))
        db.session.execute(delete(SmsSpendCounter))
        db.session.commit()
        db.session.remove()
    return coordinator.headers(), referrals


def _burst(server: LiveServer, headers: dict[str, str], referrals: list[int]) -> Counter:
    """One ad-hoc SMS per referral, all released at once; the count of each status."""
    start = threading.Barrier(len(referrals))

    def send(referral_id: int) -> int:
        start.wait()
        return server.request(
            "POST",
            f"/api/v1/referrals/{referral_id}/messages",
            {"channels": ["sms"], "subject": "Your appointment", "message": "Please call us."},
            headers,
        ).status

    with ThreadPoolExecutor(max_workers=len(referrals)) as pool:
        return Counter(pool.map(send, referrals))


def _sms_queued(app: Flask) -> int:
    with app.app_context():
        count = db.session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.channel == "sms", OutboxMessage.kind == "ad_hoc"
            )
        )
        db.session.remove()
        return count or 0


@pytest.mark.parametrize(
    ("settings", "agencies"),
    [
        ({"SMS_CAP_AGENCY_DAILY": CAP, "SMS_CAP_GLOBAL_HOURLY": 10_000}, 1),
        ({"SMS_CAP_AGENCY_DAILY": 10_000, "SMS_CAP_GLOBAL_HOURLY": CAP}, 4),
    ],
    ids=["agency-daily", "global-hourly"],
)
def test_parallel_ad_hoc_sms_queue_exactly_the_cap_and_the_rest_are_429(
    database, tmp_path: Path, settings, agencies
):
    app = live_app(database, tmp_path, QUIET_HOURS="00:00-00:00", **settings)
    headers, referrals = _setup(app, agencies)
    before = _sms_queued(app)
    with serving(app) as server:
        statuses = _burst(server, headers, referrals)
    assert statuses == Counter({201: CAP, 429: REQUESTS - CAP})
    assert _sms_queued(app) - before == CAP
    with app.app_context():
        db.engine.dispose()
