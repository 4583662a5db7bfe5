"""A real server on a scratch PostgreSQL database, for the tests that need committed data
and many connections at once (concurrency, dropped connections).

The per-test harness binds every session to one connection and rolls it back, so it cannot
show what two transactions do to each other. Here a fresh database is created and migrated
for the module, an app is built on it, and werkzeug serves that app on 127.0.0.1 from a
thread, one thread per request: every request has its own pooled connection, as under
gunicorn. The database is dropped afterwards.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from flask_migrate import upgrade
from werkzeug.serving import make_server

from crm import create_app
from crm.catalogue.operations import load_catalogue
from tests.conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database beside the test one; its SQLAlchemy URL."""
    name = f"crm_live_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_plain(TEST_DATABASE_URL or ""), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{(TEST_DATABASE_URL or '').rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(_plain(TEST_DATABASE_URL or ""), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def live_app(url: str, tmp: Path, **settings: Any) -> Flask:
    """An app on `url`, migrated, with the catalogue loaded."""
    from crm.extensions import db

    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": url,
            "SECRET_KEY": "live-test-secret-key-that-is-long-enough",
            "CATALOGUE_FILE": str(ROOT / "config" / "procedures.toml"),
            "OUTBOX_FILE_DIR": str(tmp / "outbox"),
            "DOCUMENTS_DIR": str(tmp / "documents"),
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_PER_KEY": "100000 per minute",
            "RATE_LIMIT_PER_AGENCY": "100000 per minute",
            **settings,
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        load_catalogue(app.config["CRM"]["CATALOGUE_FILE"])
        db.session.commit()
        db.session.remove()
    return app


@contextmanager
def app_on_scratch_database(tmp: Path, **settings: Any) -> Iterator[Flask]:
    """`live_app` on a fresh `scratch_database`; its connections closed before the drop."""
    from crm.extensions import db

    with scratch_database() as url:
        app = live_app(url, tmp, **settings)
        try:
            yield app
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass(frozen=True)
class LiveServer:
    port: int

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        sent = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, _json(response.read()))
        finally:
            connection.close()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


@contextmanager
def serving(app: Flask) -> Iterator[LiveServer]:
    """`app` served on 127.0.0.1 (a free port), a thread per request, until the block ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(server.server_port)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
