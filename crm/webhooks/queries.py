"""Reads of endpoints, events and the delivery log, scoped by who asks: an agency sees
its own (another agency's is a 404, worded like a missing id); managers and admins read
any agency's; other staff roles are refused."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from crm.agencies.models import Agency
from crm.auth.guards import role_allows
from crm.core.actors import Actor
from crm.core.errors import Forbidden, NotFound, ValidationFailed
from crm.extensions import db
from crm.referrals.references import MAX_ROW_ID
from crm.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

READERS = {"manager"}  # and admin, who may do everything


def agency_in_view(actor: Actor, agency_id: int | None) -> int:
    """The agency whose webhooks `actor` reads: its own, or the one a manager names."""
    if actor.is_agency:
        if agency_id is not None and agency_id != actor.agency_id:
            raise NotFound(f"no agency {agency_id}")
        return actor.agency_id or 0
    if not role_allows(actor, READERS):
        raise Forbidden("Webhooks are read by the agency, managers and admins.")
    if agency_id is None:
        raise ValidationFailed({"query.agency_id": "staff name the agency whose webhooks to read"})
    if db.session.get(Agency, agency_id) is None:
        raise NotFound(f"no agency {agency_id}")
    return agency_id


def _scoped(actor: Actor) -> Select[tuple[WebhookEndpoint]]:
    statement = select(WebhookEndpoint)
    if actor.is_agency:
        return statement.where(WebhookEndpoint.agency_id == actor.agency_id)
    if not role_allows(actor, READERS):
        raise Forbidden("Webhooks are read by the agency, managers and admins.")
    return statement


def endpoint_for(actor: Actor, endpoint_id: int, *, for_update: bool = False) -> WebhookEndpoint:
    if not 0 < endpoint_id <= MAX_ROW_ID:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    statement = _scoped(actor).where(WebhookEndpoint.id == endpoint_id)
    if for_update:
        statement = statement.with_for_update()
    endpoint = db.session.scalar(statement)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def endpoints_of(agency_id: int) -> list[WebhookEndpoint]:
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.agency_id == agency_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def event_for(actor: Actor, public_id: str) -> WebhookEvent:
    statement = select(WebhookEvent).where(WebhookEvent.public_id == public_id)
    if actor.is_agency:
        statement = statement.where(WebhookEvent.agency_id == actor.agency_id)
    elif not role_allows(actor, READERS):
        raise Forbidden("Webhooks are read by the agency, managers and admins.")
    event = db.session.scalar(statement)
    if event is None:
        raise NotFound(f"no webhook event {public_id}")
    return event


def endpoints_that_had(event: WebhookEvent) -> list[WebhookEndpoint]:
    """The endpoints an event was delivered (or meant to be delivered) to."""
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.id.in_(
                    select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event.id)
                )
            )
            .order_by(WebhookEndpoint.id)
        )
    )


@dataclass(frozen=True)
class Page:
    items: Sequence[WebhookDelivery]
    next_cursor: str | None


def encode_cursor(delivery_id: int) -> str:
    return base64.urlsafe_b64encode(f"d{delivery_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("d"):
            raise ValueError
        value = int(raw[1:])
        if not 0 < value <= MAX_ROW_ID:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed({"query.cursor": "not a cursor this API returned"}) from exc
    return value


def deliveries(agency_id: int, args: dict[str, Any]) -> Page:
    """The agency's delivery log, newest first, `limit` a page, with a keyset cursor."""
    statement = (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookEndpoint.agency_id == agency_id)
        .options(selectinload(WebhookDelivery.event), selectinload(WebhookDelivery.endpoint))
        .order_by(WebhookDelivery.id.desc())
    )
    if args.get("endpoint_id") is not None:
        statement = statement.where(WebhookDelivery.endpoint_id == args["endpoint_id"])
    if args.get("status"):
        statement = statement.where(WebhookDelivery.status.in_(args["status"]))
    if args.get("since") is not None:
        statement = statement.where(WebhookDelivery.created_at >= args["since"])
    if args.get("cursor"):
        statement = statement.where(WebhookDelivery.id < decode_cursor(args["cursor"]))
    limit = args.get("limit", 25)
    rows = list(db.session.scalars(statement.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more and rows else None)


def delivery_for(actor: Actor, delivery_id: int) -> WebhookDelivery:
    if not 0 < delivery_id <= MAX_ROW_ID:
        raise NotFound(f"no webhook delivery {delivery_id}")
    statement = (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    )
    if actor.is_agency:
        statement = statement.where(WebhookEndpoint.agency_id == actor.agency_id)
    elif not role_allows(actor, READERS):
        raise Forbidden("Webhooks are read by the agency, managers and admins.")
    delivery = db.session.scalar(statement)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return delivery


def attempts_of(delivery_id: int) -> list[WebhookAttempt]:
    return list(
        db.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
        )
    )


@dataclass
class DeliveryDetail:
    """A delivery with its attempts; attribute reads fall through to the delivery."""

    delivery: WebhookDelivery
    attempts_made: list[WebhookAttempt]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delivery, name)


def delivery_detail(actor: Actor, delivery_id: int) -> DeliveryDetail:
    delivery = delivery_for(actor, delivery_id)
    return DeliveryDetail(delivery, attempts_of(delivery.id))
