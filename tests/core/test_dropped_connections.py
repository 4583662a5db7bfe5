"""A database connection dropped under the app (pg_terminate_backend, a restart, a
failover) is replaced at checkout: the next requests succeed as if nothing happened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from crm.config import flask_settings, load_config
from crm.extensions import db
from tests.conftest import postgres_only
from tests.factories import Factory
from tests.live import live_app, scratch_database, serving


def test_postgresql_connections_are_pinged_before_use():
    settings = load_config(overrides={"DATABASE_URL": "postgresql+psycopg://db/crm"})
    assert flask_settings(settings)["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


def _terminate_app_connections(url: str) -> int:
    """Kill every backend connected to the app's database (the pooled ones), from outside."""
    name = url.rsplit("/", 1)[1]
    plain = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(plain, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


@postgres_only
def test_requests_after_the_apps_connections_are_terminated_succeed(database, tmp_path: Path):
    app = live_app(database, tmp_path)
    with app.app_context():
        agency = Factory(db.session).agency()
        db.session.remove()
    headers = agency.headers()
    with serving(app) as server:
        for _ in range(3):  # the pool holds connections now
            assert server.request("GET", "/api/v1/procedures", headers=headers).status == 200
        assert _terminate_app_connections(database) >= 1
        for _ in range(5):  # each checkout finds a dead connection until the pool is fresh
            answer = server.request("GET", "/api/v1/procedures", headers=headers)
            assert answer.status == 200, answer.body
        assert server.request("GET", "/readyz").status == 200
    with app.app_context():
        db.engine.dispose()
