"""An agency's own keys through the API: list, create, rotate with an overlap, revoke."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crm.auth.models import AgencyApiKey
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.core.idempotency import IdempotencyKey
from tests.helpers import API, assert_problem

ME = f"{API}/me"


def _key(session, prefix: str) -> AgencyApiKey:
    session.expire_all()
    return session.scalar(select(AgencyApiKey).where(AgencyApiKey.prefix == prefix))


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _own_key_id(client, agency) -> int:
    [key] = client.get(f"{API}/keys", headers=agency.headers()).json["items"]
    return key["id"]


def test_an_agency_lists_its_own_keys_without_any_secret(client, agency, factory):
    factory.agency()  # another agency's key is not listed
    response = client.get(f"{API}/keys", headers=agency.headers())
    assert response.status_code == 200, response.json
    [key] = response.json["items"]
    assert agency.secret.startswith(key["prefix"])
    assert key["state"] == "active"
    assert "secret" not in key and agency.secret not in response.get_data(as_text=True)


def test_a_created_key_shows_its_secret_once_and_then_works(client, agency):
    response = client.post(f"{API}/keys", json={"label": "staging"}, headers=agency.headers())
    assert response.status_code == 201, response.json
    created = response.json
    assert created["label"] == "staging" and created["secret"].startswith(created["prefix"])
    assert client.get(ME, headers=_bearer(created["secret"])).json["id"] == agency.actor.id
    listed = client.get(f"{API}/keys", headers=agency.headers()).get_data(as_text=True)
    assert created["secret"] not in listed


def test_a_replayed_create_does_not_show_the_secret_again_nor_store_it(client, agency, session):
    headers = agency.headers(**{"Idempotency-Key": "make-a-key-1"})
    first = client.post(f"{API}/keys", json={"label": "ci"}, headers=headers)
    again = client.post(f"{API}/keys", json={"label": "ci"}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"]
    assert again.json["secret"] is None and "first response" in again.json["note"]
    stored = session.scalars(select(IdempotencyKey.response_body)).all()
    assert not any(first.json["secret"] in body for body in stored)


def test_both_keys_work_during_the_rotation_overlap(client, agency, app, session):
    key_id = _own_key_id(client, agency)
    response = client.post(f"{API}/keys/{key_id}/rotate", headers=agency.headers())
    assert response.status_code == 201, response.json
    new_secret = response.json["key"]["secret"]
    hours = app.config["CRM"]["API_KEY_ROTATION_OVERLAP_HOURS"]
    expires = _key(session, response.json["previous"]["prefix"]).expires_at
    assert abs(expires - (utcnow() + timedelta(hours=hours))) < timedelta(minutes=1)
    assert response.json["previous"]["state"] == "expiring"
    assert client.get(ME, headers=agency.headers()).status_code == 200
    assert client.get(ME, headers=_bearer(new_secret)).status_code == 200


def test_the_old_key_is_refused_once_the_overlap_has_passed(client, agency, session):
    key_id = _own_key_id(client, agency)
    rotated = client.post(f"{API}/keys/{key_id}/rotate", headers=agency.headers()).json
    old = _key(session, rotated["previous"]["prefix"])
    old.expires_at = utcnow() - timedelta(seconds=1)  # the overlap has passed
    session.commit()
    assert_problem(client.get(ME, headers=agency.headers()), 401, "unauthorized")
    assert client.get(ME, headers=_bearer(rotated["key"]["secret"])).status_code == 200


def test_a_key_already_rotated_cannot_be_rotated_again(client, agency):
    key_id = _own_key_id(client, agency)
    client.post(f"{API}/keys/{key_id}/rotate", headers=agency.headers())
    body = assert_problem(
        client.post(f"{API}/keys/{key_id}/rotate", headers=agency.headers()), 409, "conflict"
    )
    assert "rotated already" in body["detail"]


def test_another_agencys_key_cannot_be_rotated_or_revoked(client, agency, factory):
    other = factory.agency()
    their_id = _own_key_id(client, other)
    rotate = client.post(f"{API}/keys/{their_id}/rotate", headers=agency.headers())
    revoke = client.delete(f"{API}/keys/{their_id}", headers=agency.headers())
    assert_problem(rotate, 404, "not-found")
    assert_problem(revoke, 404, "not-found")
    assert client.get(ME, headers=other.headers()).status_code == 200


def test_revoking_another_key_stops_it_at_once(client, agency):
    created = client.post(f"{API}/keys", json={}, headers=agency.headers()).json
    response = client.delete(f"{API}/keys/{created['id']}", headers=agency.headers())
    assert response.status_code == 200, response.json
    assert response.json["state"] == "revoked" and response.json["note"] is None
    assert_problem(client.get(ME, headers=_bearer(created["secret"])), 401, "unauthorized")
    assert client.get(ME, headers=agency.headers()).status_code == 200


def test_an_agency_may_revoke_the_key_it_calls_with_and_is_told_so(client, agency):
    key_id = _own_key_id(client, agency)
    response = client.delete(f"{API}/keys/{key_id}", headers=agency.headers())
    assert response.status_code == 200, response.json
    assert "this request was made with" in response.json["note"]
    assert_problem(client.get(ME, headers=agency.headers()), 401, "unauthorized")


def test_staff_cannot_use_the_agency_key_endpoints(client, coordinator):
    assert_problem(client.get(f"{API}/keys", headers=coordinator.headers()), 403, "forbidden")


def test_a_label_longer_than_100_characters_is_refused_naming_the_field(client, agency):
    response = client.post(f"{API}/keys", json={"label": "x" * 101}, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["field"] == "label"


def test_a_rotation_is_audited_with_both_prefixes(client, agency, session):
    key_id = _own_key_id(client, agency)
    rotated = client.post(f"{API}/keys/{key_id}/rotate", headers=agency.headers()).json
    session.expire_all()
    [event] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "agency_key.rotate")
    ).all()
    assert event.detail["key_prefix"] == rotated["previous"]["prefix"]
    assert event.detail["new_key_prefix"] == rotated["key"]["prefix"]
