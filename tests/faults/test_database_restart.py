"""PostgreSQL restarted under a running gunicorn: during the outage every request is a
clear 503 problem+json (nothing half-saved, retry later), and once the database is back
the same workers serve again without being restarted (the pool's pre-ping replaces the
dead connections). tests/core/test_dropped_connections.py covers connections killed
while the server stays up, and a database that was never reachable."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.conftest import postgres_only
from tests.factories import referral_payload
from tests.faults.processes import Gunicorn, app_env

pytestmark = [pytest.mark.faults, postgres_only]


@pytest.fixture
def web(seeded, tmp_path):
    server = Gunicorn(app_env(seeded.url, tmp_path), tmp_path / "gunicorn.log", workers=2)
    server.start()
    yield server
    server.stop()


def _referrals(url: str, reference: str) -> int:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        return conn.execute(
            "SELECT count(*) FROM referrals WHERE agency_reference = %s", (reference,)
        ).fetchone()[0]


def _until_ok(web: Gunicorn, headers, within: float = 30):
    deadline = time.monotonic() + within
    while True:
        answer = web.request("GET", "/api/v1/procedures", headers=headers)
        if answer.status == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_requests_during_a_database_restart_are_503_and_the_workers_recover_alone(
    cluster, seeded, web
):
    headers = seeded.agency.headers()
    pids = set(web.worker_pids())
    for _ in range(4):  # every worker holds pooled connections now
        assert web.request("GET", "/api/v1/procedures", headers=headers).status == 200

    cluster.stop()
    try:
        down = web.request("GET", "/api/v1/procedures", headers=headers)
        body = referral_payload(agency_reference="RESTART-1")
        key = {"Idempotency-Key": "restart-submit-1", **headers}
        refused = web.request("POST", "/api/v1/referrals", body=body, headers=key)
        ready = web.request("GET", "/readyz")
    finally:
        cluster.start()

    for answer in (down, refused):
        assert answer.status == 503, answer.body
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.body["type"].endswith("/database-unavailable")
        assert answer.headers["Retry-After"] == "5"
    assert ready.status == 503
    assert ready.body["checks"]["database"] == "the database is not reachable"

    assert _until_ok(web, headers).status == 200
    assert web.request("GET", "/readyz").status == 200
    assert _referrals(seeded.url, "RESTART-1") == 0  # the refused submit saved nothing
    retried = web.request("POST", "/api/v1/referrals", body=body, headers=key)
    assert retried.status == 201, retried.body
    assert _referrals(seeded.url, "RESTART-1") == 1
    assert set(web.worker_pids()) == pids  # recovered without a restart
