"""The verbs of webhook registration: endpoints, their secrets, events and redelivery.

An endpoint belongs to one agency; only that agency's callers (an API key, or one of its
users in the panel) change it. Each operation checks, changes rows, audits and flushes;
nothing here sends anything: the webhook dispatcher delivers the pending deliveries.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, Forbidden, ValidationFailed
from crm.extensions import db
from crm.webhooks import delivery
from crm.webhooks.catalogue import EVENT_TYPES, PAYLOAD_VERSION
from crm.webhooks.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSecret,
)
from crm.webhooks.signing import new_secret
from crm.webhooks.ssrf import UnsafeWebhookUrl, resolve_target

MAX_ENDPOINTS_PER_AGENCY = 10
MAX_REDELIVERY_EVENTS = 10_000
DESCRIPTION_MAX = 200
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class WithSecret:
    """An endpoint and its new secret: the one answer that ever shows the secret."""

    endpoint: WebhookEndpoint
    secret: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.endpoint, name)


def _agency_caller(actor: Actor) -> int:
    if not actor.is_agency or actor.agency_id is None:
        raise Forbidden("Webhook endpoints are registered and changed by the agency itself.")
    return actor.agency_id


def _owned(endpoint: WebhookEndpoint, actor: Actor) -> None:
    """The queries hand an endpoint only to its agency or to staff who may read it; a
    write is the agency's alone."""
    if _agency_caller(actor) != endpoint.agency_id:  # pragma: no cover - queries give 404
        raise Forbidden("Not this agency's endpoint.")


def checked_url(url: str) -> str:
    """The URL as given, once it is https (http only to localhost in development) and its
    host resolves only to public addresses; 422 naming `url` and why otherwise."""
    allow_localhost = current_app.config["CRM"]["WEBHOOKS_ALLOW_LOCALHOST"]
    try:
        resolve_target(url, allow_localhost=allow_localhost)
    except UnsafeWebhookUrl as exc:
        raise ValidationFailed({"url": str(exc)}) from exc
    return url.strip()


def checked_event_types(types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(types))
    if not chosen:
        raise ValidationFailed({"event_types": "choose at least one event type"})
    unknown = [name for name in chosen if name not in EVENT_TYPES]
    if unknown:
        known = ", ".join(EVENT_TYPES)
        raise ValidationFailed({"event_types": f"{unknown[0]!r} is not one of: {known}"})
    return chosen


def _checked_description(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise ValidationFailed({"description": f"at most {DESCRIPTION_MAX} characters"})
    return text


def register_endpoint(args: dict[str, Any], actor: Actor) -> WithSecret:
    """A new endpoint of the caller's agency with its first secret (shown this once)."""
    agency_id = _agency_caller(actor)
    url = checked_url(args["url"])
    types = checked_event_types(args["event_types"])
    count = db.session.scalar(select(func.count()).where(WebhookEndpoint.agency_id == agency_id))
    if (count or 0) >= MAX_ENDPOINTS_PER_AGENCY:
        raise Conflict(
            f"An agency has at most {MAX_ENDPOINTS_PER_AGENCY} webhook endpoints; "
            "delete one you no longer use first.",
            limit=MAX_ENDPOINTS_PER_AGENCY,
        )
    endpoint = WebhookEndpoint(
        agency_id=agency_id,
        url=url,
        description=_checked_description(args.get("description")),
        event_types=types,
        consecutive_failures=0,
    )
    db.session.add(endpoint)
    db.session.flush()
    secret = WebhookSecret(endpoint_id=endpoint.id, secret=new_secret())
    db.session.add(secret)
    db.session.flush()
    audit.record(
        actor, "webhook_endpoint.create", endpoint_id=endpoint.id, url=url, event_types=types
    )
    return WithSecret(endpoint, secret.secret)


def update_endpoint(endpoint: WebhookEndpoint, args: dict[str, Any], actor: Actor):
    """Change the URL (checked again), the description or the event types."""
    _owned(endpoint, actor)
    changed: dict[str, Any] = {}
    if "url" in args:
        endpoint.url = changed["url"] = checked_url(args["url"])
    if "event_types" in args:
        endpoint.event_types = changed["event_types"] = checked_event_types(args["event_types"])
    if "description" in args:
        endpoint.description = changed["description"] = _checked_description(args["description"])
    db.session.flush()
    audit.record(actor, "webhook_endpoint.update", endpoint_id=endpoint.id, **changed)
    return endpoint


def disable_endpoint(endpoint: WebhookEndpoint, actor: Actor, reason: str | None = None):
    """No more deliveries to it until it is enabled again; a disabled one stays as it is."""
    _owned(endpoint, actor)
    if endpoint.disabled_at is None:
        endpoint.disabled_at = utcnow()
        endpoint.disabled_reason = (reason or f"disabled by {actor.label}")[:300]
        db.session.flush()
        audit.record(actor, "webhook_endpoint.disable", endpoint_id=endpoint.id)
    return endpoint


def enable_endpoint(endpoint: WebhookEndpoint, actor: Actor):
    """Deliveries start again; the failures counted so far are forgotten."""
    _owned(endpoint, actor)
    was = endpoint.disabled_reason
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.consecutive_failures = 0
    db.session.flush()
    audit.record(actor, "webhook_endpoint.enable", endpoint_id=endpoint.id, was_disabled=was)
    return endpoint


def delete_endpoint(endpoint: WebhookEndpoint, actor: Actor) -> None:
    """The endpoint, its secrets and its deliveries go; the events stay (other endpoints
    of the agency may have had them)."""
    _owned(endpoint, actor)
    audit.record(actor, "webhook_endpoint.delete", endpoint_id=endpoint.id, url=endpoint.url)
    db.session.expire(endpoint, ["secrets"])  # the database's ON DELETE CASCADE removes them
    db.session.delete(endpoint)
    db.session.flush()


def rotate_secret(endpoint: WebhookEndpoint, actor: Actor, now: datetime | None = None):
    """A new secret, shown this once. Every older secret still in force signs beside it
    until now + WEBHOOK_SECRET_OVERLAP_HOURS, so a receiver can switch without a gap."""
    _owned(endpoint, actor)
    now = now or utcnow()
    overlap = timedelta(hours=current_app.config["CRM"]["WEBHOOK_SECRET_OVERLAP_HOURS"])
    for old in endpoint.secrets:
        if old.expires_at is None or old.expires_at > now + overlap:
            old.expires_at = now + overlap
    secret = WebhookSecret(endpoint_id=endpoint.id, secret=new_secret(), created_at=now)
    db.session.add(secret)
    db.session.flush()
    db.session.refresh(endpoint, ["secrets"])
    audit.record(
        actor,
        "webhook_endpoint.rotate_secret",
        endpoint_id=endpoint.id,
        old_expires_at=(now + overlap).isoformat(),
    )
    return WithSecret(endpoint, secret.secret)


def secrets_in_force(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign a delivery sent at `now`, newest first: the current one and,
    during a rotation's overlap, the one before it (the dispatcher's own query)."""
    return delivery.secrets_in_force([endpoint.id], now or utcnow())[endpoint.id]


# --- events ----------------------------------------------------------------------------


def new_public_id(now: datetime | None = None) -> str:
    """`msg_` + a ULID: 48 bits of milliseconds and 80 random bits, Crockford base32 (26
    characters), so ids sort by time and never repeat."""
    millis = int((now.timestamp() if now else time.time()) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "msg_" + "".join(reversed(chars))


def timestamp_text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _subscribed(agency_id: int, event_type: str) -> list[WebhookEndpoint]:
    endpoints = db.session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.agency_id == agency_id)
        .order_by(WebhookEndpoint.id)
    )
    return [e for e in endpoints if event_type in (e.event_types or [])]


def emit(
    agency_id: int,
    referral_id: int | None,
    event_type: str,
    data: dict[str, Any],
    now: datetime | None = None,
) -> WebhookEvent | None:
    """Write the event for `agency_id` and a pending delivery to each of its enabled
    endpoints subscribed to `event_type`, in the caller's transaction (the outbox).

    Nothing is written when no endpoint of the agency (enabled or not) takes the type; a
    disabled one gets the event but no delivery, so a range redelivery after it is
    enabled again can still send it."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = _subscribed(agency_id, event_type)
    if not endpoints:
        return None
    now = now or utcnow()
    event = WebhookEvent(
        public_id=new_public_id(now),
        agency_id=agency_id,
        referral_id=referral_id,
        type=event_type,
        payload={
            "type": event_type,
            "version": PAYLOAD_VERSION,
            "timestamp": timestamp_text(now),
            "data": data,
        },
        occurred_at=now,
    )
    db.session.add(event)
    db.session.flush()
    for endpoint in endpoints:
        if endpoint.enabled:
            db.session.add(_delivery(event, endpoint.id, now))
    db.session.flush()
    return event


def _ordering_key(referral_id: int | None, event_public_id: str) -> str:
    return f"referral:{referral_id}" if referral_id is not None else f"event:{event_public_id}"


def _delivery(
    event: WebhookEvent, endpoint_id: int, now: datetime, requested_by: str | None = None
) -> WebhookDelivery:
    return WebhookDelivery(
        event_id=event.id,
        endpoint_id=endpoint_id,
        ordering_key=_ordering_key(event.referral_id, event.public_id),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        requested_by_label=requested_by,
    )


# --- redelivery -------------------------------------------------------------------------


def _may_redeliver(actor: Actor, endpoint: WebhookEndpoint) -> None:
    if actor.is_agency and actor.agency_id == endpoint.agency_id:
        return
    if actor.is_staff and actor.role in {"manager", "admin"}:
        return
    raise Forbidden("Redelivery is asked for by the agency, a manager or an admin.")


def _enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict(
            f"Endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); enable it "
            "first, then ask for the redelivery.",
            endpoint_id=endpoint.id,
        )


def redeliver_event(
    event: WebhookEvent, endpoints: list[WebhookEndpoint], actor: Actor
) -> list[WebhookDelivery]:
    """A new pending delivery of `event` to each endpoint given (the event keeps its id, so
    a receiver that already has it can drop it)."""
    if not endpoints:
        raise Conflict(
            f"Event {event.public_id} was never delivered to an endpoint that still exists; "
            "name one with endpoint_id."
        )
    now = utcnow()
    made = []
    for endpoint in endpoints:
        _may_redeliver(actor, endpoint)
        _enabled(endpoint)
        made.append(_delivery(event, endpoint.id, now, actor.label))
    db.session.add_all(made)
    db.session.flush()
    audit.record(
        actor,
        "webhook_event.redeliver",
        event.referral_id,
        event=event.public_id,
        endpoint_ids=[e.id for e in endpoints],
    )
    return made


@dataclass(frozen=True)
class RangeRedelivery:
    endpoint_id: int
    since: datetime
    until: datetime
    deliveries: int


def redeliver_range(
    endpoint: WebhookEndpoint, since: datetime, until: datetime, actor: Actor
) -> RangeRedelivery:
    """Every event of the endpoint's agency of a type it takes, occurred in [since, until),
    again, oldest first (so each referral's order holds). At most MAX_REDELIVERY_EVENTS:
    a larger range is refused, to be asked for in parts."""
    _may_redeliver(actor, endpoint)
    if since >= until:
        raise ValidationFailed({"until": "must be after since"})
    _enabled(endpoint)
    types = list(endpoint.event_types or [])
    matching = (
        select(WebhookEvent.id, WebhookEvent.referral_id, WebhookEvent.public_id)
        .where(
            WebhookEvent.agency_id == endpoint.agency_id,
            WebhookEvent.type.in_(types),
            WebhookEvent.occurred_at >= since,
            WebhookEvent.occurred_at < until,
        )
        .order_by(WebhookEvent.occurred_at, WebhookEvent.id)
        .limit(MAX_REDELIVERY_EVENTS + 1)
    )
    rows = db.session.execute(matching).all()
    if len(rows) > MAX_REDELIVERY_EVENTS:
        raise ValidationFailed(
            {
                "until": f"the range holds more than {MAX_REDELIVERY_EVENTS} events; ask for "
                "a shorter range (several requests in turn)"
            }
        )
    now = utcnow()
    values = [
        {
            "event_id": row.id,
            "endpoint_id": endpoint.id,
            "ordering_key": _ordering_key(row.referral_id, row.public_id),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "requested_by_label": actor.label,
        }
        for row in rows
    ]
    if values:
        db.session.execute(insert(WebhookDelivery), values)
    audit.record(
        actor,
        "webhook_endpoint.redeliver_range",
        endpoint_id=endpoint.id,
        since=since.isoformat(),
        until=until.isoformat(),
        events=len(values),
    )
    db.session.flush()
    return RangeRedelivery(endpoint.id, since, until, len(values))
