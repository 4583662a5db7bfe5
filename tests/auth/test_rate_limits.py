"""Rate limits (crm/auth/rate_limits.py): per key or token, per agency, per address, on
the configured storage; memory here, and one test on the real Redis."""

from __future__ import annotations

import os
import secrets
import time

import pytest
from sqlalchemy import select

from crm.agencies.models import Agency
from crm.auth import operations as auth
from tests.factories import Caller

URL = "/api/v1/procedures"
IN_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}


@pytest.fixture
def limits(app, monkeypatch):
    """Set small limits for one test (each test client starts with no counts)."""

    def set_limits(**values):
        for name, value in values.items():
            monkeypatch.setitem(app.config["CRM"], name, value)

    return set_limits


def _statuses(client, count, **headers):
    return [client.get(URL, headers=headers).status_code for _ in range(count)]


def _second_key(session, caller: Caller) -> Caller:
    agency = session.scalar(select(Agency).where(Agency.id == caller.actor.agency_id))
    issued = auth.issue_agency_key(agency)
    session.commit()
    return Caller(caller.actor, issued.secret)


def test_an_api_key_has_its_own_allowance(client, factory, limits):
    limits(RATE_LIMIT_PER_KEY="3 per minute")
    first, other = factory.agency(), factory.agency()
    assert _statuses(client, 4, **first.headers()) == [200, 200, 200, 429]
    assert _statuses(client, 1, **other.headers()) == [200]


def test_two_keys_of_one_agency_share_the_agencys_allowance(client, factory, session, limits):
    limits(RATE_LIMIT_PER_KEY="100 per minute", RATE_LIMIT_PER_AGENCY="4 per minute")
    one = factory.agency()
    two = _second_key(session, one)
    assert _statuses(client, 2, **one.headers()) == [200, 200]
    assert _statuses(client, 3, **two.headers()) == [200, 200, 429]
    assert _statuses(client, 1, **one.headers()) == [429]
    assert _statuses(client, 1, **factory.agency().headers()) == [200]


def test_a_refusal_is_problem_json_with_retry_after_and_the_limit_headers(client, factory, limits):
    limits(RATE_LIMIT_PER_KEY="1 per minute")
    caller = factory.agency()
    client.get(URL, headers=caller.headers())
    refused = client.get(URL, headers=caller.headers())
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    body = refused.get_json()
    assert body["type"].endswith("/rate-limited") and body["status"] == 429
    assert "1 per 1 minute" in body["detail"]
    assert refused.headers["X-RateLimit-Limit"] == "1"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > time.time()
    assert 0 <= int(refused.headers["Retry-After"]) <= 60


def test_an_allowed_request_tells_what_is_left(client, factory, limits):
    limits(RATE_LIMIT_PER_KEY="5 per minute", RATE_LIMIT_PER_AGENCY="50 per minute")
    response = client.get(URL, headers=factory.agency().headers())
    assert response.status_code == 200
    assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == (
        "5",
        "4",
    )


def test_a_staff_token_is_counted_by_itself(client, factory, limits):
    limits(RATE_LIMIT_PER_KEY="2 per minute", RATE_LIMIT_PER_AGENCY="1 per minute")
    coordinator, manager = factory.staff("coordinator"), factory.staff("manager")
    assert _statuses(client, 3, **coordinator.headers()) == [200, 200, 429]
    assert _statuses(client, 2, **manager.headers()) == [200, 200]


def test_requests_without_a_valid_credential_are_counted_by_address(client, factory, limits):
    limits(RATE_LIMIT_PER_KEY="2 per minute")
    caller = factory.agency()
    forged = caller.secret.rsplit("_", 1)[0] + "_not-the-secret"
    assert _statuses(client, 1) == [401]
    assert _statuses(client, 2, Authorization=f"Bearer {forged}") == [401, 429]
    # the forged key's prefix spent the address's allowance, not the agency key's
    assert _statuses(client, 2, **caller.headers()) == [200, 200]


def test_health_checks_and_twilio_webhooks_are_never_limited(client, limits):
    limits(RATE_LIMIT_PER_KEY="1 per minute", PORTAL_RATE_PER_MINUTE=1)
    assert {client.get("/healthz").status_code for _ in range(4)} == {200}
    webhook = [client.post("/webhooks/twilio/status").status_code for _ in range(4)]
    assert 429 not in webhook


def test_the_patient_pages_are_counted_per_address_apart_from_the_api(client, factory, limits):
    limits(RATE_LIMIT_PER_KEY="100 per minute", PORTAL_RATE_PER_MINUTE=2)
    pages = [client.get("/p/whatever").status_code for _ in range(3)]
    assert pages == [404, 404, 429]
    assert _statuses(client, 1, **factory.agency().headers()) == [200]


def test_a_refused_patient_page_is_the_portals_own_page_with_retry_after(client, limits):
    limits(PORTAL_RATE_PER_MINUTE=1)
    client.get("/p/whatever")
    refused = client.get("/p/whatever", headers={"Accept-Language": "tr"})
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert "Çok fazla istek" in refused.get_data(as_text=True)
    assert refused.headers["Cache-Control"] == "no-store"
    assert 0 <= int(refused.headers["Retry-After"]) <= 60


def _redis_or_skip(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        reason = f"no Redis at {url} ({exc})"
        if IN_CI:
            pytest.fail(f"CI runs this test against its Redis: {reason}", pytrace=False)
        pytest.skip(f"{reason}; CI runs this test against its Redis")


def test_two_app_instances_on_redis_share_one_count(database_url, tmp_path):
    from crm import create_app

    url = "redis://127.0.0.1:6379/0"
    _redis_or_skip(url)
    settings = {
        "ENV": "test",
        "DATABASE_URL": database_url,
        "OUTBOX_FILE_DIR": str(tmp_path / "outbox"),
        "DOCUMENTS_DIR": str(tmp_path / "documents"),
        "RATE_LIMIT_STORAGE_URL": url,
        "RATE_LIMIT_PER_KEY": "3 per minute",
    }
    first, second = create_app(settings), create_app(settings)
    # an address of this run alone: the count in Redis outlives the test
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
    environ = {"REMOTE_ADDR": address}

    def get(app):
        return app.test_client().get(URL, environ_base=environ).status_code

    assert [get(first), get(second), get(first), get(second)] == [401, 401, 401, 429]


def test_without_redis_each_worker_counts_in_its_own_memory_and_keeps_answering(
    database_url, tmp_path, caplog
):
    from crm import create_app

    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": database_url,
            "OUTBOX_FILE_DIR": str(tmp_path / "outbox"),
            "DOCUMENTS_DIR": str(tmp_path / "documents"),
            "RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:1/0",  # nothing listens there
            "RATE_LIMIT_PER_KEY": "2 per minute",
        }
    )
    client = app.test_client()
    assert _statuses(client, 3) == [401, 401, 429]
    assert "falling back to in-memory storage" in caplog.text
