"""Rows for the delivery tests, written directly: an agency's endpoint with its secrets, an
event and its delivery (registration and emitting are tested with their own code)."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from crm.agencies.models import Agency
from crm.extensions import db
from crm.webhooks.dispatcher import WebhookDispatcher, WebhookSettings
from crm.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookSecret
from crm.webhooks.signing import new_secret

_counter = itertools.count(1)
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Ceiling(random.Random):
    """Full jitter at its top: every wait is the doubling ceiling, so growth is visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


def settings(**overrides: Any) -> WebhookSettings:
    values = {
        "batch_size": 50,
        "concurrency": 8,
        "timeout_seconds": 5,
        "disable_after": 1000,
        "allow_localhost": True,
        **overrides,
    }
    return WebhookSettings(**values)


def dispatcher(**overrides: Any) -> WebhookDispatcher:
    return WebhookDispatcher(settings(**overrides), name="test-webhooks", rng=Ceiling())


def agency(contact_email: str | None = "ops@agency.example") -> Agency:
    row = Agency(name=f"Webhook Agency {next(_counter)}", country="DE", contact_email=contact_email)
    db.session.add(row)
    db.session.flush()
    return row


def endpoint(
    url: str,
    *,
    owner: Agency | None = None,
    secrets: list[str] | None = None,
    expired: list[str] = (),  # type: ignore[assignment]
    now: datetime = START,
) -> WebhookEndpoint:
    owner = owner or agency()
    row = WebhookEndpoint(
        agency_id=owner.id, url=url, event_types=["referral.stage_changed"], description=""
    )
    db.session.add(row)
    db.session.flush()
    for secret in secrets if secrets is not None else [new_secret()]:
        db.session.add(WebhookSecret(endpoint_id=row.id, secret=secret, created_at=now))
    for secret in expired:
        db.session.add(
            WebhookSecret(
                endpoint_id=row.id,
                secret=secret,
                created_at=now - timedelta(days=30),
                expires_at=now - timedelta(hours=1),
            )
        )
    db.session.flush()
    return row


def delivery(
    to: WebhookEndpoint,
    *,
    ordering_key: str | None = None,
    created_at: datetime = START,
    data: dict[str, Any] | None = None,
) -> WebhookDelivery:
    n = next(_counter)
    event = WebhookEvent(
        public_id=f"msg_{uuid.uuid4().hex}",
        agency_id=to.agency_id,
        type="referral.stage_changed",
        payload={
            "type": "referral.stage_changed",
            "version": 1,
            "timestamp": created_at.isoformat(),
            "data": data or {"referral": f"R-{n:06d}", "stage": "mri_review", "note": "Ünïcode"},
        },
        occurred_at=created_at,
    )
    db.session.add(event)
    db.session.flush()
    row = WebhookDelivery(
        event_id=event.id,
        endpoint_id=to.id,
        ordering_key=ordering_key or f"referral:{n}",
        status="pending",
        next_attempt_at=created_at,
        created_at=created_at,
    )
    db.session.add(row)
    db.session.commit()
    return row


def fresh(row):
    """The row as the database has it now (the dispatcher wrote it through SQL)."""
    db.session.expire_all()
    return db.session.get(type(row), row.id)
