"""Two agencies submitting the same patient at the same moment end with exactly one owner.

Real concurrent transactions need real commits, so this runs on a scratch PostgreSQL
database of its own, with requests in parallel threads. SQLite has no advisory locks (the
lock is a no-op there) and serialises writers anyway: the test is skipped on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from crm.extensions import db
from crm.referrals.models import Referral
from tests.conftest import ON_POSTGRES
from tests.duplicates.support import person
from tests.factories import Factory
from tests.helpers import API
from tests.live import app_on_scratch_database

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL: parallel transactions and pg_advisory_xact_lock (a no-op on"
    " SQLite); set CRM_TEST_DATABASE_URL",
)
ROUNDS = 4


@pytest.fixture
def scratch_app(tmp_path) -> Iterator[Flask]:
    with app_on_scratch_database(tmp_path) as app:
        yield app


def _submit_together(app: Flask, callers, payloads) -> list[int]:
    barrier = threading.Barrier(len(callers))
    ids: list[int] = []
    errors: list[str] = []

    def post(caller, payload) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(f"{API}/referrals", json=payload, headers=caller.headers())
        if response.status_code == 201:
            ids.append(response.json["id"])
        else:
            errors.append(response.get_data(as_text=True))

    threads = [
        threading.Thread(target=post, args=pair) for pair in zip(callers, payloads, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return ids


def test_two_agencies_submitting_the_same_patient_at_once_end_with_one_owner(scratch_app):
    with scratch_app.app_context():
        factory = Factory(db.session)
        first, second = factory.agency(), factory.agency()
        db.session.remove()
    for round_ in range(ROUNDS):
        same = {"phone": f"+49151555{round_:05d}", "date_of_birth": "1966-05-05"}
        ids = _submit_together(scratch_app, [first, second], [person(**same), person(**same)])
        with scratch_app.app_context():
            referrals = db.session.scalars(select(Referral).where(Referral.id.in_(ids))).all()
            owners = {referral.attributed_agency_id for referral in referrals}
            db.session.remove()
        assert len(referrals) == 2
        assert len(owners) == 1, f"round {round_}: each agency owns the patient"
        assert owners <= {first.actor.agency_id, second.actor.agency_id}
