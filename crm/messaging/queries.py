from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor
from crm.extensions import db
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.referrals.queries import referral_for


def _outbound(referral_id: int) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.referral_id == referral_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )


def timeline(actor: Actor, referral_id: int) -> dict[str, Any]:
    referral = referral_for(actor, referral_id)
    audit.record(actor, "messages.read", referral.id)
    inbound = db.session.scalars(
        select(InboundMessage)
        .where(InboundMessage.referral_id == referral.id)
        .order_by(InboundMessage.received_at)
    )
    return {"outbound": _outbound(referral.id), "inbound": list(inbound)}


def delivery_summary(actor: Actor, referral_id: int) -> dict[str, Any]:
    """Agencies see messages to the patient and to themselves, not the hospital's own."""
    referral = referral_for(actor, referral_id)
    messages = _outbound(referral.id)
    if actor.is_agency:
        messages = [m for m in messages if m.audience in {"patient", "agency"}]
    return {"counts": dict(Counter(m.status for m in messages)), "messages": messages}
