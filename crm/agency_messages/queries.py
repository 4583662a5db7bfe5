"""Reads of the agency thread. The referral is always found first through
`crm.referrals.queries.referral_for`, so another agency's thread is a 404."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select

from crm.agency_messages.models import AgencyMessage
from crm.core.actors import Actor
from crm.extensions import db


def thread(referral_id: int) -> Sequence[AgencyMessage]:
    """The referral's messages, oldest first."""
    return db.session.scalars(
        select(AgencyMessage)
        .where(AgencyMessage.referral_id == referral_id)
        .order_by(AgencyMessage.created_at, AgencyMessage.id)
    ).all()


def incoming_direction(actor: Actor) -> str:
    """The direction of what `actor`'s side receives."""
    return "to_agency" if actor.is_agency else "from_agency"


def unread_counts(referral_ids: Iterable[int], direction: str) -> dict[int, int]:
    """Unread messages of `direction` per referral, in one grouped query."""
    ids = list(referral_ids)
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(AgencyMessage.referral_id, func.count())
            .where(
                AgencyMessage.referral_id.in_(ids),
                AgencyMessage.direction == direction,
                AgencyMessage.read_at.is_(None),
            )
            .group_by(AgencyMessage.referral_id)
        ).all()
    )
