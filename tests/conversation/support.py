"""A patient who can write: their referral, their link, and a coordinator to answer."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from crm.conversation.models import ConversationMessage
from crm.core.actors import Actor
from crm.extensions import db
from crm.patients import links
from crm.referrals.models import Referral

_phones = itertools.count(1)


def unique_phone() -> str:
    return f"+4915177{next(_phones):06d}"


def patient_actor(referral: Referral) -> Actor:
    return Actor("patient", referral.patient_id, f"patient {referral.patient_id} (link)")


def page_url(referral: Referral, tail: str = "") -> str:
    return f"/p/{links.token_for(links.link_for(referral.id))}{tail}"


def messages_of(referral: Referral) -> list[ConversationMessage]:
    return list(
        db.session.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.referral_id == referral.id)
            .order_by(ConversationMessage.id)
        )
    )
