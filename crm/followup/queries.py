"""Reading check-ins: staff see them; the patient's page asks for the one open now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import NotFound
from crm.extensions import db
from crm.followup.models import CheckIn
from crm.referrals.models import Referral
from crm.referrals.queries import referral_for

OPEN_AHEAD = timedelta(days=1)  # a check-in may be answered from a day before it is due


def check_ins_of(referral_id: int) -> Sequence[CheckIn]:
    return db.session.scalars(
        select(CheckIn).where(CheckIn.referral_id == referral_id).order_by(CheckIn.position)
    ).all()


def open_check_in(referral_id: int, now: datetime | None = None) -> CheckIn | None:
    """The earliest unanswered check-in that is due (or due within a day), if any."""
    horizon = (now or utcnow()) + OPEN_AHEAD
    return db.session.scalar(
        select(CheckIn)
        .where(
            CheckIn.referral_id == referral_id,
            CheckIn.answered_at.is_(None),
            CheckIn.due_at <= horizon,
        )
        .order_by(CheckIn.due_at, CheckIn.position)
        .limit(1)
    )


def check_in_by_label(referral: Referral, label: str) -> CheckIn:
    check_in = db.session.scalar(
        select(CheckIn).where(CheckIn.referral_id == referral.id, CheckIn.label == label)
    )
    if check_in is None:
        raise NotFound(f"referral {referral.id} has no check-in {label!r}")
    return check_in


def check_ins_for(actor: Actor, referral_id: int) -> Sequence[CheckIn]:
    referral = referral_for(actor, referral_id)
    audit.record(actor, "check_in.list", referral.id)
    return check_ins_of(referral.id)
