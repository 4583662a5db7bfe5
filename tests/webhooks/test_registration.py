"""Registering an endpoint: the URL guard, the event types, the secret shown once and its
rotation with an overlap, enable/disable, the per-agency limit, the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.core.errors import Conflict, Forbidden, ValidationFailed
from crm.webhooks import operations
from crm.webhooks.models import WebhookSecret
from tests.webhooks.support import URL, endpoint_of


def _refusal(caller, url: str) -> str:
    with pytest.raises(ValidationFailed) as refused:
        operations.register_endpoint({"url": url, "event_types": ["plan.accepted"]}, caller.actor)
    errors = {e["field"]: e["reason"] for e in refused.value.extensions["errors"]}
    assert list(errors) == ["url"]
    return errors["url"]


def test_plain_http_to_a_public_host_is_refused_naming_https(agency, dns):
    assert "must use https" in _refusal(agency, "http://hooks.agency.example/crm")


def test_a_host_on_a_private_address_is_refused(agency, dns):
    assert "private" in _refusal(agency, "https://10.1.2.3/hook")


def test_the_cloud_metadata_address_is_refused(agency, dns):
    assert "metadata" in _refusal(agency, "https://169.254.169.254/latest/meta-data")


def test_loopback_is_refused_when_localhost_is_not_allowed(agency, dns, app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "WEBHOOKS_ALLOW_LOCALHOST", False)
    assert "loopback" in _refusal(agency, "https://127.0.0.1:8443/hook")


def test_a_hostname_that_resolves_to_loopback_is_refused(agency, dns, app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "WEBHOOKS_ALLOW_LOCALHOST", False)
    dns["sneaky.agency.example"] = "127.0.0.1"
    reason = _refusal(agency, "https://sneaky.agency.example/hook")
    assert "resolves to 127.0.0.1" in reason


def test_http_to_localhost_is_taken_when_development_allows_it(agency, dns, app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "WEBHOOKS_ALLOW_LOCALHOST", True)
    registered = endpoint_of(agency, url="http://localhost:8099/hook")
    assert registered.endpoint.url == "http://localhost:8099/hook"


def test_an_unknown_event_type_is_refused_naming_event_types(agency, dns):
    with pytest.raises(ValidationFailed) as refused:
        operations.register_endpoint({"url": URL, "event_types": ["patient.phone"]}, agency.actor)
    assert refused.value.extensions["errors"][0]["field"] == "event_types"


def test_an_endpoint_needs_at_least_one_event_type(agency, dns):
    with pytest.raises(ValidationFailed):
        operations.register_endpoint({"url": URL, "event_types": []}, agency.actor)


def test_staff_cannot_register_an_endpoint_for_an_agency(factory, dns):
    manager = factory.staff("manager")
    with pytest.raises(Forbidden):
        operations.register_endpoint({"url": URL, "event_types": ["plan.accepted"]}, manager.actor)


def test_an_agency_has_at_most_ten_endpoints(agency, dns):
    for _ in range(operations.MAX_ENDPOINTS_PER_AGENCY):
        endpoint_of(agency, ["plan.accepted"])
    with pytest.raises(Conflict):
        endpoint_of(agency, ["plan.accepted"])


def test_a_new_endpoint_has_one_secret_in_the_standard_webhooks_form(agency, dns):
    registered = endpoint_of(agency)
    assert registered.secret.startswith("whsec_")
    assert operations.secrets_in_force(registered.endpoint) == [registered.secret]


def test_rotation_keeps_the_old_secret_in_force_until_the_overlap_ends(agency, dns, app, session):
    registered = endpoint_of(agency)
    now = utcnow()
    rotated = operations.rotate_secret(registered.endpoint, agency.actor, now=now)
    hours = app.config["CRM"]["WEBHOOK_SECRET_OVERLAP_HOURS"]
    during = now + timedelta(hours=hours) - timedelta(minutes=1)
    after = now + timedelta(hours=hours) + timedelta(minutes=1)
    endpoint = registered.endpoint
    assert operations.secrets_in_force(endpoint, during) == [rotated.secret, registered.secret]
    assert operations.secrets_in_force(endpoint, after) == [rotated.secret]


def test_a_second_rotation_never_lengthens_an_old_secrets_life(agency, dns, session):
    registered = endpoint_of(agency)
    now = utcnow()
    operations.rotate_secret(registered.endpoint, agency.actor, now=now)
    first_expiry = session.scalar(
        select(WebhookSecret.expires_at).where(WebhookSecret.secret == registered.secret)
    )
    operations.rotate_secret(registered.endpoint, agency.actor, now=now + timedelta(hours=1))
    again = session.scalar(
        select(WebhookSecret.expires_at).where(WebhookSecret.secret == registered.secret)
    )
    assert again == first_expiry


def test_enabling_clears_the_disabling_and_the_failures(agency, dns, session):
    endpoint = endpoint_of(agency).endpoint
    endpoint.consecutive_failures = 20
    operations.disable_endpoint(endpoint, agency.actor, reason="20 failures in a row")
    assert not endpoint.enabled and endpoint.disabled_reason == "20 failures in a row"
    operations.enable_endpoint(endpoint, agency.actor)
    assert endpoint.enabled
    assert (endpoint.disabled_reason, endpoint.consecutive_failures) == (None, 0)


def test_every_change_of_an_endpoint_is_audited(agency, dns, session):
    endpoint = endpoint_of(agency).endpoint
    operations.update_endpoint(endpoint, {"description": "CRM sync"}, agency.actor)
    operations.rotate_secret(endpoint, agency.actor)
    operations.disable_endpoint(endpoint, agency.actor)
    operations.enable_endpoint(endpoint, agency.actor)
    operations.delete_endpoint(endpoint, agency.actor)
    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("webhook_endpoint.%"), AuditEvent.actor_id == agency.actor.id)
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "webhook_endpoint.create",
        "webhook_endpoint.update",
        "webhook_endpoint.rotate_secret",
        "webhook_endpoint.disable",
        "webhook_endpoint.enable",
        "webhook_endpoint.delete",
    ]


def test_an_update_checks_the_new_url_again(agency, dns):
    endpoint = endpoint_of(agency).endpoint
    with pytest.raises(ValidationFailed):
        operations.update_endpoint(endpoint, {"url": "https://192.168.1.10/x"}, agency.actor)


def test_public_ids_are_unique_and_sortable_by_time():
    earlier = operations.new_public_id(utcnow() - timedelta(seconds=5))
    later = [operations.new_public_id() for _ in range(200)]
    assert len(set(later)) == 200
    assert all(earlier < one for one in later)
    assert all(one.startswith("msg_") and len(one) == 30 for one in later)
