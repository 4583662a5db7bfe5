"""Test harness: one database migrated once per run, each test in a transaction rolled back.

PostgreSQL when CRM_TEST_DATABASE_URL is set (CI), a temporary SQLite file otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from crm import create_app
from crm.auth.rate_limits import limiter_of
from crm.catalogue.operations import load_catalogue
from crm.extensions import db
from crm.features import ALL_FEATURES, Wiring, build, install
from crm.nudges.operations import load_rules
from tests.factories import Factory
from tests.messaging.support import NO_QUIET_HOURS

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("CRM_TEST_DATABASE_URL")
ON_POSTGRES = bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"))

# The features whose part in a move is a guard's fact (an MRI on file, a candidate review,
# an accepted plan, the trip and the stay): tests about later stages walk the pipeline
# without them; each guard has its own tests through the API.
CLINICAL_GUARD_FEATURES = frozenset({"documents", "reviews", "plans", "travel"})

postgres_only = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL (row locks, FOR UPDATE SKIP LOCKED): set CRM_TEST_DATABASE_URL",
)


def reset_database(url_is_postgres: bool) -> None:
    if url_is_postgres:
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _sqlite_savepoints(engine) -> None:
    """pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")


class _ConnectionBoundSession(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session picks an engine itself and ignores `bind=`: without this
    every test's session opened its own connection and its commits were real."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind if bind is not None else self.bind


def pytest_sessionstart(session: pytest.Session) -> None:
    """The gettext catalogues as the code has them now, even without `make`."""
    from crm.core.i18n import compile_catalogues

    compile_catalogues()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")


GENEROUS_LIMITS = {
    "RATE_LIMIT_PER_KEY": "100000 per minute",
    "RATE_LIMIT_PER_AGENCY": "100000 per minute",
    "PORTAL_RATE_PER_MINUTE": 100_000,
}


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-123",
            "CATALOGUE_FILE": str(ROOT / "config" / "procedures.toml"),
            "OUTBOX_FILE_DIR": str(tmp_path_factory.mktemp("outbox")),
            "DOCUMENTS_DIR": str(tmp_path_factory.mktemp("documents")),
            # the suite's many requests from one address never meet a limit; the limit
            # tests set their own (tests/core/test_rate_limits.py)
            **GENEROUS_LIMITS,
        }
    )
    app.config["TESTING"] = True
    with app.app_context():
        if not ON_POSTGRES:
            _sqlite_savepoints(db.engine)
        reset_database(ON_POSTGRES)
        upgrade(directory=str(ROOT / "migrations"))
        load_catalogue(app.config["CRM"]["CATALOGUE_FILE"])
        load_rules(ROOT / "config" / "nudge_rules.toml")
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()  # close pooled connections now, not whenever the app is collected


@pytest.fixture
def connection(app: Flask) -> Iterator[Connection]:
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = db._make_scoped_session(
            {
                "bind": connection,
                "join_transaction_mode": "create_savepoint",
                "class_": _ConnectionBoundSession,
            }
        )
        try:
            yield connection
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def session(app: Flask, connection: Connection):
    with app.app_context():
        yield db.session


@pytest.fixture
def client(app: Flask, connection: Connection) -> FlaskClient:
    limiter_of(app).reset()  # each test its own minute of requests
    return app.test_client()


@pytest.fixture
def factory(session) -> Factory:
    return Factory(session)


@pytest.fixture
def agency(factory: Factory):
    return factory.agency()


@pytest.fixture
def coordinator(factory: Factory):
    return factory.staff("coordinator")


@pytest.fixture
def specialist(factory: Factory):
    return factory.staff("specialist")


class FeatureSwitch:
    """Which features are wired for one test; the app's own wiring comes back after it."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self.wiring: Wiring = app.extensions["crm.features"]

    def only(self, *names: str) -> Wiring:
        self.wiring = build(names)
        install(self._app, self.wiring)
        return self.wiring


@pytest.fixture
def features(app: Flask) -> Iterator[FeatureSwitch]:
    """`features.only("nudges", "tasks")` switches on just those for this test;
    `features.wiring.events.subscribe(...)` listens to what the test publishes."""
    original = app.extensions["crm.features"]
    install(app, build(original.features))  # a test's subscriptions never outlive it
    switch = FeatureSwitch(app)
    try:
        yield switch
    finally:
        install(app, original)


@pytest.fixture
def without_clinical_guards(features: FeatureSwitch) -> Wiring:
    """Walk the pipeline by the state machine alone: the facts behind the document, review,
    plan and stay guards belong to those features and are tested there."""
    return features.only(*(name for name in ALL_FEATURES if name not in CLINICAL_GUARD_FEATURES))


@pytest.fixture
def no_quiet_hours(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
