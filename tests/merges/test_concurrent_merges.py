"""Two coordinators merging at the same moment end with one result.

Real concurrent transactions need real commits: this runs on a scratch PostgreSQL database
of its own, with the two requests in parallel threads. SQLite serialises writers and has
no row locks (`FOR UPDATE` is not emitted there): the test is skipped on it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from crm.duplicates.models import DuplicateMatch
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.models import Referral
from tests.conftest import ON_POSTGRES
from tests.factories import Factory
from tests.helpers import API
from tests.live import app_on_scratch_database
from tests.merges.support import patient

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL: parallel transactions and row locks (SQLite serialises"
    " writers and emits no FOR UPDATE); set CRM_TEST_DATABASE_URL",
)
ROUNDS = 3


@pytest.fixture
def scratch_app(tmp_path) -> Iterator[Flask]:
    with app_on_scratch_database(tmp_path) as app:
        yield app


def _together(app: Flask, calls) -> list[tuple[int, dict]]:
    """POST each (caller, path) at the same moment; (status, body) of each."""
    barrier = threading.Barrier(len(calls))
    answers: list[tuple[int, dict]] = []

    def post(caller, path) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(path, headers=caller.headers())
        answers.append((response.status_code, response.get_json(force=True)))

    threads = [threading.Thread(target=post, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == len(calls), "a request hung"
    return answers


def _people(app: Flask, how_many: int):
    """Coordinators, and `how_many` referrals of one phone (likely matches among them)."""
    with app.app_context():
        factory = Factory(db.session)
        coordinators = factory.staff("coordinator"), factory.staff("coordinator")
        phone = f"+49151{90000000 + uuid.uuid4().int % 1000000}"
        referrals = [
            factory.referral(factory.agency(), patient=patient(phone=phone))
            for _ in range(how_many)
        ]
        ids = [(r.id, r.patient_id) for r in referrals]
        matches = {
            (m.patient_id, m.matched_patient_id): m.id
            for m in db.session.scalars(select(DuplicateMatch))
            if m.status == "open"
        }
        db.session.remove()
    return coordinators, ids, matches


def test_two_coordinators_merging_the_same_match_at_once_merge_it_once(scratch_app):
    for round_ in range(ROUNDS):
        coordinators, [(_, known), (referral_id, new)], matches = _people(scratch_app, 2)
        path = f"{API}/duplicates/{matches[(new, known)]}/merge"
        answers = _together(scratch_app, [(c, path) for c in coordinators])
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 409], f"round {round_}: {answers}"
        [refused] = [body for status, body in answers if status == 409]
        assert refused["refusal"] == "decided"
        with scratch_app.app_context():
            assert db.session.get(Patient, new).merged_into_id == known
            assert db.session.get(Referral, referral_id).patient_id == known
            db.session.remove()


def test_merging_one_patient_into_two_others_at_once_gives_one_survivor(scratch_app):
    for round_ in range(ROUNDS):
        coordinators, [(_, a), (_, c), (_, b)], matches = _people(scratch_app, 3)
        calls = [
            (coordinators[0], f"{API}/duplicates/{matches[(b, a)]}/merge"),
            (coordinators[1], f"{API}/duplicates/{matches[(b, c)]}/merge"),
        ]
        answers = _together(scratch_app, calls)
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 409], f"round {round_}: {answers}"
        [refused] = [body for status, body in answers if status == 409]
        assert refused["refusal"] == "already_merged"
        with scratch_app.app_context():
            survivor = db.session.get(Patient, b).merged_into_id
            assert survivor in {a, c}
            owners = db.session.scalars(select(Referral.patient_id)).all()
            assert b not in owners
            db.session.remove()
