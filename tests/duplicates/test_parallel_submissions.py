"""Two agencies submitting the same patient at the same moment end with exactly one owner.

Real concurrent transactions need real commits, so this runs on a scratch PostgreSQL
database of its own, with requests in parallel threads. SQLite has no advisory locks (the
lock is a no-op there) and serialises writers anyway: the test is skipped on it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select
from sqlalchemy.engine import make_url

from crm import create_app
from crm.catalogue.operations import load_catalogue
from crm.extensions import db
from crm.referrals.models import Referral
from tests.conftest import ON_POSTGRES, ROOT, TEST_DATABASE_URL
from tests.duplicates.support import person
from tests.factories import Factory
from tests.helpers import API

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL: parallel transactions and pg_advisory_xact_lock (a no-op on"
    " SQLite); set CRM_TEST_DATABASE_URL",
)
ROUNDS = 4


def _admin() -> psycopg.Connection:
    url = make_url(TEST_DATABASE_URL)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres",
        autocommit=True,
    )


@pytest.fixture
def scratch_app(tmp_path) -> Iterator[Flask]:
    name = f"crm_duplicates_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-123",
            "CATALOGUE_FILE": str(ROOT / "config" / "procedures.toml"),
            "OUTBOX_FILE_DIR": str(tmp_path / "outbox"),
            "DOCUMENTS_DIR": str(tmp_path / "documents"),
        }
    )
    try:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            load_catalogue(app.config["CRM"]["CATALOGUE_FILE"])
            db.session.commit()
            db.session.remove()
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
