"""Idempotency-Key on POST: replay, mismatch, in flight, per caller, expiry."""

from datetime import timedelta

from sqlalchemy import func, select, text

from crm.core.db import utcnow
from crm.core.idempotency import IdempotencyKey, purge_expired
from crm.referrals.models import Referral
from tests.conftest import postgres_only
from tests.factories import referral_payload


def _count_referrals(session) -> int:
    return session.scalar(select(func.count(Referral.id)))


def test_a_retry_with_the_same_key_and_body_replays_the_first_response(client, factory, session):
    agency = factory.agency()
    body = referral_payload()
    headers = agency.headers(**{"Idempotency-Key": "retry-1"})
    first = client.post("/api/v1/referrals", json=body, headers=headers)
    before = _count_referrals(session)
    second = client.post("/api/v1/referrals", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json == first.json
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count_referrals(session) == before


def test_the_same_key_with_another_body_is_422(client, factory):
    agency = factory.agency()
    headers = agency.headers(**{"Idempotency-Key": "retry-2"})
    client.post("/api/v1/referrals", json=referral_payload(), headers=headers)
    other = client.post("/api/v1/referrals", json=referral_payload(), headers=headers)
    assert other.status_code == 422
    assert other.json["type"].endswith("/idempotency-key-reused")
    assert other.mimetype == "application/problem+json"


def test_keys_are_scoped_per_caller(client, factory):
    first, second = factory.agency(), factory.agency()
    body = referral_payload()
    a = client.post(
        "/api/v1/referrals", json=body, headers=first.headers(**{"Idempotency-Key": "k"})
    )
    b = client.post(
        "/api/v1/referrals", json=body, headers=second.headers(**{"Idempotency-Key": "k"})
    )
    assert a.status_code == b.status_code == 201
    assert a.json["id"] != b.json["id"]
    assert "Idempotent-Replayed" not in b.headers


def test_a_failed_request_is_not_remembered_so_a_corrected_retry_runs(client, factory):
    agency = factory.agency()
    headers = agency.headers(**{"Idempotency-Key": "fix-and-retry"})
    bad = referral_payload(intake={"pain_score": 42})
    assert client.post("/api/v1/referrals", json=bad, headers=headers).status_code == 422
    good = client.post("/api/v1/referrals", json=bad | {"intake": {}}, headers=headers)
    assert good.status_code == 201


def test_an_expired_key_is_treated_as_new(client, factory, session):
    agency = factory.agency()
    headers = agency.headers(**{"Idempotency-Key": "old"})
    body = referral_payload()
    first = client.post("/api/v1/referrals", json=body, headers=headers)
    session.execute(
        IdempotencyKey.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    again = client.post("/api/v1/referrals", json=referral_payload(), headers=headers)
    assert again.status_code == 201
    assert again.json["id"] != first.json["id"]


def test_expired_keys_are_purged(client, factory, session):
    agency = factory.agency()
    client.post(
        "/api/v1/referrals",
        json=referral_payload(),
        headers=agency.headers(**{"Idempotency-Key": "purge-me"}),
    )
    assert purge_expired(utcnow() + timedelta(days=2)) >= 1
    assert session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "purge-me")) is None


def test_a_malformed_key_is_a_validation_error_naming_the_header(client, factory):
    agency = factory.agency()
    response = client.post(
        "/api/v1/referrals",
        json=referral_payload(),
        headers=agency.headers(**{"Idempotency-Key": "has spaces in it"}),
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "header.Idempotency-Key"


def test_transitions_are_idempotent_too(client, factory):
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = factory.referral(agency)
    headers = coordinator.headers(**{"Idempotency-Key": "move-1"})
    url = f"/api/v1/referrals/{referral.id}/transitions"
    first = client.post(url, json={"to": "awaiting_mri"}, headers=headers)
    second = client.post(url, json={"to": "awaiting_mri"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    history = client.get(f"/api/v1/referrals/{referral.id}", headers=coordinator.headers())
    assert [h["to"] for h in history.json["history"]] == ["enquiry", "awaiting_mri"]


@postgres_only
def test_a_request_while_the_first_is_in_flight_is_409(app, client, factory, session):
    agency = factory.agency()
    body = referral_payload()
    with app.app_context():
        from crm.extensions import db

        engine = db.engine
    # Another connection plays the first request: it holds the key's lock and row, uncommitted.
    with engine.connect() as first_request:
        first_request.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))"),
            {"lock": f"{agency.actor.scope_key}|busy"},
        )
        first_request.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at, expires_at) "
                "VALUES (:scope, 'busy', 'x', now(), now() + interval '1 hour')"
            ),
            {"scope": agency.actor.scope_key},
        )
        response = client.post(
            "/api/v1/referrals", json=body, headers=agency.headers(**{"Idempotency-Key": "busy"})
        )
        first_request.rollback()
    assert response.status_code == 409
    assert response.json["type"].endswith("/request-in-flight")
