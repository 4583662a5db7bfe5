from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.errors import NotFound
from crm.extensions import db
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.referrals.queries import MAX_ROW_ID, referral_for


def _outbound(referral_id: int) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.referral_id == referral_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )


def messages_of(referral_id: int) -> dict[str, Any]:
    """Outbound and inbound messages of a referral its caller has already checked and
    audited (the API's timeline, the console's referral page)."""
    inbound = db.session.scalars(
        select(InboundMessage)
        .where(InboundMessage.referral_id == referral_id)
        .order_by(InboundMessage.received_at)
    )
    return {"outbound": _outbound(referral_id), "inbound": list(inbound)}


def timeline(actor: Actor, referral_id: int) -> dict[str, Any]:
    referral = referral_for(actor, referral_id)
    audit.record(actor, "messages.read", referral.id)
    return messages_of(referral.id)


def delivery_summary(actor: Actor, referral_id: int) -> dict[str, Any]:
    """Agencies see messages to the patient and to themselves, not the hospital's own."""
    referral = referral_for(actor, referral_id)
    messages = _outbound(referral.id)
    if actor.is_agency:
        messages = [m for m in messages if m.audience in {"patient", "agency"}]
    return {"counts": dict(Counter(m.status for m in messages)), "messages": messages}


def reply_of(referral_id: int, inbound_id: int) -> InboundMessage:
    """A patient's reply on this referral (a keyword is not one to answer); 404 otherwise."""
    inbound = db.session.get(InboundMessage, inbound_id) if 0 < inbound_id <= MAX_ROW_ID else None
    if inbound is None or inbound.referral_id != referral_id or inbound.classification != "reply":
        raise NotFound(f"no reply {inbound_id} on referral {referral_id}")
    return inbound
