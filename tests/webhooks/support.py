"""Helpers of the webhook tests: an agency's endpoint, its events and deliveries."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select

from crm.extensions import db
from crm.webhooks import operations
from crm.webhooks.catalogue import EVENT_TYPES
from crm.webhooks.models import WebhookDelivery, WebhookEvent
from tests.factories import Caller, Factory

_numbers = itertools.count(5000)

URL = "https://hooks.agency.example/crm"


def endpoint_of(caller: Caller, event_types=None, url: str = URL, **extra):
    """A registered endpoint of the caller's agency (the DNS fixture must be on)."""
    args = {"url": url, "event_types": list(event_types or EVENT_TYPES), **extra}
    registered = operations.register_endpoint(args, caller.actor)
    db.session.commit()
    return registered


def events_of(agency_id: int, event_type: str | None = None) -> list[WebhookEvent]:
    statement = select(WebhookEvent).where(WebhookEvent.agency_id == agency_id)
    if event_type:
        statement = statement.where(WebhookEvent.type == event_type)
    return list(db.session.scalars(statement.order_by(WebhookEvent.id)))


def deliveries_of(endpoint_id: int) -> list[WebhookDelivery]:
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id)
        )
    )


def unique_patient(**patient: Any) -> dict[str, Any]:
    """A patient sharing no phone, email, name or birth date with another (the factory's
    default patient is one person, so a second agency would lose its attribution)."""
    n = next(_numbers)
    return {
        "given_name": f"Webhook{n}",
        "family_name": f"Patient{n}",
        "date_of_birth": f"19{n % 80 + 10}-0{n % 9 + 1}-1{n % 9}",
        "phone": f"+49152{n:08d}",
        "email": f"webhook{n}@patient.example",
        **patient,
    }


def referral_of(factory: Factory, caller: Caller, **patient: Any):
    return factory.referral(caller, patient=unique_patient(**patient))
