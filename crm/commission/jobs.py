"""What the scheduler runs for commission: what an accrual still earns becomes payable
once the referral is completed, or CRM_COMMISSION_PAYABLE_AFTER_DAYS after discharge (the
move into post_op). Commits per entry."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from crm.commission.ledger import make_payable
from crm.commission.models import CommissionEntry
from crm.core.db import utcnow
from crm.extensions import db
from crm.referrals.models import Referral, StageTransition
from crm.referrals.stages import Stage


def _due(now: datetime) -> list[int]:
    paid, reversal = aliased(CommissionEntry), aliased(CommissionEntry)
    cutoff = now - timedelta(days=current_app.config["CRM"]["COMMISSION_PAYABLE_AFTER_DAYS"])
    discharged_long_ago = exists().where(
        StageTransition.referral_id == CommissionEntry.referral_id,
        StageTransition.to_stage == Stage.POST_OP,
        StageTransition.occurred_at <= cutoff,
    )
    settled = exists().where(paid.accrual_id == CommissionEntry.id, paid.kind == "payable")
    reversed_minor = (
        select(func.coalesce(func.sum(reversal.amount_minor), 0))
        .where(reversal.accrual_id == CommissionEntry.id, reversal.kind == "reversed")
        .scalar_subquery()
    )
    query = (
        select(CommissionEntry.id)
        .join(Referral, Referral.id == CommissionEntry.referral_id)
        .where(
            CommissionEntry.kind == "accrued",
            ~settled,
            CommissionEntry.amount_minor + reversed_minor > 0,
            Referral.stage != Stage.LOST,
            (Referral.stage == Stage.COMPLETED) | discharged_long_ago,
        )
        .order_by(CommissionEntry.id)
    )
    return list(db.session.scalars(query))


def make_entries_payable(now: datetime | None = None) -> int:
    """Returns how many payable entries were written."""
    now = now or utcnow()
    written = 0
    for entry_id in _due(now):
        entry = db.session.get(CommissionEntry, entry_id)
        if entry is not None and make_payable(entry, now) is not None:
            written += 1
        db.session.commit()
    return written
