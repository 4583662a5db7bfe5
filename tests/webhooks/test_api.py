"""The webhook API: registration with the secret shown once, tenancy (another agency's
endpoint is a 404), the delivery log, redelivery of one event and of a time range."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.core.actors import SYSTEM
from crm.core.db import utcnow
from crm.extensions import db
from crm.referrals.operations import move_to_stage
from crm.webhooks import operations
from crm.webhooks.catalogue import EVENT_TYPES
from crm.webhooks.models import WebhookAttempt, WebhookEndpoint
from tests.helpers import API, assert_problem, field_errors
from tests.webhooks.support import URL, deliveries_of, endpoint_of, referral_of

pytestmark = pytest.mark.usefixtures("dns")
BODY = {"url": URL, "event_types": ["referral.stage_changed"], "description": "our CRM"}


def _create(client, caller, **body):
    return client.post(f"{API}/webhooks/endpoints", json={**BODY, **body}, headers=caller.headers())


def test_registering_answers_201_with_the_secret_once(client, agency):
    created = _create(client, agency)
    assert created.status_code == 201, created.json
    assert created.json["secret"].startswith("whsec_")
    assert created.json["enabled"] is True
    endpoint_id = created.json["id"]
    read = client.get(f"{API}/webhooks/endpoints/{endpoint_id}", headers=agency.headers())
    listed = client.get(f"{API}/webhooks/endpoints", headers=agency.headers())
    assert "secret" not in read.json
    assert created.json["secret"] not in listed.get_data(as_text=True)


def test_an_unsafe_url_is_a_422_naming_url_and_why(client, agency):
    body = assert_problem(
        _create(client, agency, url="https://10.0.0.5/x"), 422, "validation-failed"
    )
    assert "private" in field_errors(body)["url"]


def test_an_unknown_event_type_is_a_422_naming_it(client, agency):
    body = assert_problem(_create(client, agency, event_types=["x.y"]), 422, "validation-failed")
    assert "event_types[0]" in field_errors(body)


def test_another_agencys_endpoint_is_a_404_for_every_verb(client, agency, factory):
    theirs = endpoint_of(factory.agency()).endpoint
    base = f"{API}/webhooks/endpoints/{theirs.id}"
    headers = agency.headers()
    assert_problem(client.get(base, headers=headers), 404, "not-found")
    assert_problem(client.patch(base, json={"description": "x"}, headers=headers), 404, "not-found")
    assert_problem(client.delete(base, headers=headers), 404, "not-found")
    assert_problem(client.post(f"{base}/rotate-secret", headers=headers), 404, "not-found")
    assert_problem(client.post(f"{base}/enable", headers=headers), 404, "not-found")


def test_rotating_answers_a_new_secret_and_the_old_one_still_signs(client, agency):
    created = _create(client, agency).json
    rotated = client.post(
        f"{API}/webhooks/endpoints/{created['id']}/rotate-secret", headers=agency.headers()
    )
    assert rotated.status_code == 201
    assert rotated.json["secret"] != created["secret"]
    endpoint = db.session.get(WebhookEndpoint, created["id"])
    assert operations.secrets_in_force(endpoint) == [rotated.json["secret"], created["secret"]]


def test_an_update_changes_the_event_types(client, agency):
    created = _create(client, agency).json
    changed = client.patch(
        f"{API}/webhooks/endpoints/{created['id']}",
        json={"event_types": ["plan.accepted", "travel.booked"]},
        headers=agency.headers(),
    )
    assert changed.status_code == 200
    assert changed.json["event_types"] == ["plan.accepted", "travel.booked"]


def test_enable_answers_the_endpoint_enabled_again(client, agency):
    registered = endpoint_of(agency)
    operations.disable_endpoint(registered.endpoint, agency.actor, reason="20 failures")
    db.session.commit()
    enabled = client.post(
        f"{API}/webhooks/endpoints/{registered.endpoint.id}/enable", headers=agency.headers()
    )
    assert enabled.status_code == 200
    assert (enabled.json["enabled"], enabled.json["disabled_reason"]) == (True, None)


def test_delete_answers_204_and_the_endpoint_is_gone(client, agency):
    created = _create(client, agency).json
    path = f"{API}/webhooks/endpoints/{created['id']}"
    assert client.delete(path, headers=agency.headers()).status_code == 204
    assert client.get(path, headers=agency.headers()).status_code == 404


def test_the_event_types_are_the_catalogue(client, agency):
    listed = client.get(f"{API}/webhooks/event-types", headers=agency.headers())
    assert [item["name"] for item in listed.json] == list(EVENT_TYPES)


def test_a_repeated_create_with_the_same_key_makes_one_endpoint(client, agency):
    headers = agency.headers(**{"Idempotency-Key": "hook-1"})
    first = client.post(f"{API}/webhooks/endpoints", json=BODY, headers=headers)
    again = client.post(f"{API}/webhooks/endpoints", json=BODY, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"]
    listed = client.get(f"{API}/webhooks/endpoints", headers=agency.headers())
    assert len(listed.json) == 1


def test_a_manager_reads_an_agencys_endpoints_but_a_coordinator_may_not(
    client, agency, factory, coordinator
):
    endpoint_of(agency)
    manager = factory.staff("manager")
    path = f"{API}/webhooks/endpoints?agency_id={agency.actor.agency_id}"
    assert len(client.get(path, headers=manager.headers()).json) == 1
    assert_problem(client.get(path, headers=coordinator.headers()), 403, "forbidden")


def test_staff_must_name_the_agency(client, factory):
    manager = factory.staff("manager")
    body = assert_problem(
        client.get(f"{API}/webhooks/endpoints", headers=manager.headers()), 422, "validation-failed"
    )
    assert "query.agency_id" in field_errors(body)


def test_a_manager_cannot_change_an_agencys_endpoint(client, agency, factory):
    endpoint = endpoint_of(agency).endpoint
    manager = factory.staff("manager")
    response = client.patch(
        f"{API}/webhooks/endpoints/{endpoint.id}",
        json={"description": "mine now"},
        headers=manager.headers(),
    )
    assert_problem(response, 403, "forbidden")


def _one_delivery(factory, agency, without_clinical_guards):
    endpoint = endpoint_of(agency, ["referral.stage_changed"]).endpoint
    referral = referral_of(factory, agency)
    move_to_stage(referral, "mri_review", SYSTEM)
    db.session.commit()
    return endpoint, deliveries_of(endpoint.id)[0]


def test_the_delivery_log_lists_event_endpoint_status_and_attempts(
    client, agency, factory, without_clinical_guards
):
    endpoint, delivery = _one_delivery(factory, agency, without_clinical_guards)
    page = client.get(f"{API}/webhooks/deliveries", headers=agency.headers()).json
    [item] = page["items"]
    assert item["event_type"] == "referral.stage_changed"
    assert item["event_id"] == delivery.event.public_id
    assert (item["endpoint_id"], item["status"], item["attempts"]) == (endpoint.id, "pending", 0)
    assert page["next_cursor"] is None


def test_the_delivery_log_pages_with_a_cursor_and_filters_by_status(
    client, agency, factory, without_clinical_guards
):
    endpoint_of(agency, ["referral.stage_changed"])
    for _ in range(3):
        move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    db.session.commit()
    first = client.get(f"{API}/webhooks/deliveries?limit=2", headers=agency.headers()).json
    rest = client.get(
        f"{API}/webhooks/deliveries?limit=2&cursor={first['next_cursor']}",
        headers=agency.headers(),
    ).json
    assert len(first["items"]) == 2 and len(rest["items"]) == 1
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in rest["items"]})
    none = client.get(f"{API}/webhooks/deliveries?status=delivered", headers=agency.headers())
    assert none.json["items"] == []


def test_a_delivery_shows_its_attempts(client, agency, factory, without_clinical_guards, session):
    _endpoint, delivery = _one_delivery(factory, agency, without_clinical_guards)
    session.add(WebhookAttempt(delivery_id=delivery.id, duration_ms=120, status_code=503))
    session.commit()
    detail = client.get(f"{API}/webhooks/deliveries/{delivery.id}", headers=agency.headers())
    assert detail.status_code == 200
    assert detail.json["attempt_log"][0]["status_code"] == 503
    assert detail.json["payload"]["type"] == "referral.stage_changed"


def test_another_agencys_delivery_is_a_404(client, agency, factory, without_clinical_guards):
    _endpoint, delivery = _one_delivery(factory, agency, without_clinical_guards)
    stranger = factory.agency()
    response = client.get(f"{API}/webhooks/deliveries/{delivery.id}", headers=stranger.headers())
    assert_problem(response, 404, "not-found")


def test_redelivering_an_event_adds_a_pending_delivery_with_who_asked(
    client, agency, factory, without_clinical_guards
):
    endpoint, delivery = _one_delivery(factory, agency, without_clinical_guards)
    response = client.post(
        f"{API}/webhooks/events/{delivery.event.public_id}/redeliver",
        json={},
        headers=agency.headers(),
    )
    assert response.status_code == 201, response.json
    [again] = response.json
    assert again["event_id"] == delivery.event.public_id
    assert (again["status"], again["requested_by"]) == ("pending", agency.actor.label)
    assert len(deliveries_of(endpoint.id)) == 2


def test_another_agencys_event_cannot_be_redelivered(
    client, agency, factory, without_clinical_guards
):
    _endpoint, delivery = _one_delivery(factory, agency, without_clinical_guards)
    stranger = factory.agency()
    response = client.post(
        f"{API}/webhooks/events/{delivery.event.public_id}/redeliver",
        json={},
        headers=stranger.headers(),
    )
    assert_problem(response, 404, "not-found")


def test_redelivering_to_a_disabled_endpoint_is_a_409(
    client, agency, factory, without_clinical_guards
):
    endpoint, delivery = _one_delivery(factory, agency, without_clinical_guards)
    operations.disable_endpoint(endpoint, agency.actor)
    db.session.commit()
    response = client.post(
        f"{API}/webhooks/events/{delivery.event.public_id}/redeliver",
        json={},
        headers=agency.headers(),
    )
    assert_problem(response, 409, "conflict")


def test_a_time_range_is_redelivered_oldest_first(client, agency, factory, without_clinical_guards):
    endpoint, _ = _one_delivery(factory, agency, without_clinical_guards)
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    db.session.commit()
    now = utcnow()
    response = client.post(
        f"{API}/webhooks/redeliver",
        json={
            "endpoint_id": endpoint.id,
            "since": (now - timedelta(hours=1)).isoformat(),
            "until": (now + timedelta(minutes=1)).isoformat(),
        },
        headers=agency.headers(),
    )
    assert response.status_code == 202, response.json
    assert response.json["deliveries"] == 2
    made = deliveries_of(endpoint.id)
    assert len(made) == 4
    assert [d.event_id for d in made[2:]] == sorted(d.event_id for d in made[2:])
    assert all(d.requested_by_label == agency.actor.label for d in made[2:])


def test_a_range_beyond_the_limit_is_refused_in_words(
    client, agency, factory, without_clinical_guards, monkeypatch
):
    endpoint, _ = _one_delivery(factory, agency, without_clinical_guards)
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    db.session.commit()
    monkeypatch.setattr(operations, "MAX_REDELIVERY_EVENTS", 1)
    now = utcnow()
    response = client.post(
        f"{API}/webhooks/redeliver",
        json={
            "endpoint_id": endpoint.id,
            "since": (now - timedelta(hours=1)).isoformat(),
            "until": (now + timedelta(minutes=1)).isoformat(),
        },
        headers=agency.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert "more than 1 events" in field_errors(body)["until"]
    assert len(deliveries_of(endpoint.id)) == 2  # the two first deliveries, nothing added


def test_the_openapi_document_describes_every_event_with_an_example(client):
    spec = client.get(f"{API}/openapi.json").json
    hooks = spec["x-webhooks"]
    assert set(hooks) == set(EVENT_TYPES)
    post = hooks["checkin.alert"]["post"]
    assert {p["name"] for p in post["parameters"]} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    example = post["requestBody"]["content"]["application/json"]["example"]
    assert example["type"] == "checkin.alert"
    assert example["data"]["urgency"] == "urgent"
    assert spec["components"]["schemas"]["WebhookCheckinAlert"]["example"] == example
