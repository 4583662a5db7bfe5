from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from crm.core.db import utcnow
from crm.extensions import db
from crm.referrals.models import Referral
from crm.reviews.models import Review


def latest_review(referral_id: int) -> Review | None:
    return db.session.scalar(
        select(Review)
        .where(Review.referral_id == referral_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(1)
    )


def is_candidate(referral: Referral) -> dict[str, Any]:
    """The fact behind the guard `specialist_decided_candidate`: the latest decision."""
    review = latest_review(referral.id)
    return {"is_candidate": bool(review and review.decision == "candidate")}


def reviews_of(referral_id: int) -> Sequence[Review]:
    return db.session.scalars(
        select(Review).where(Review.referral_id == referral_id).order_by(Review.created_at)
    ).all()


def review_queue(limit: int, breached_only: bool = False) -> list[dict[str, Any]]:
    """Referrals waiting for a specialist, oldest first, with the SLA and breaches marked."""
    sla = timedelta(hours=current_app.config["CRM"]["REVIEW_SLA_HOURS"])
    now = utcnow()
    statement = (
        select(Referral)
        .options(joinedload(Referral.agency))
        .where(Referral.stage == "mri_review")
        .order_by(Referral.stage_entered_at, Referral.id)
        .limit(limit)
    )
    if breached_only:
        statement = statement.where(Referral.stage_entered_at <= now - sla)
    return [
        {
            "referral_id": referral.id,
            "patient": referral.patient.full_name,
            "agency": referral.agency.name if referral.agency else None,
            "procedure": referral.procedure.code,
            "in_review_since": referral.stage_entered_at,
            "due_at": referral.stage_entered_at + sla,
            "breached": now > referral.stage_entered_at + sla,
            "hours_waiting": int((now - referral.stage_entered_at).total_seconds() // 3600),
        }
        for referral in db.session.scalars(statement)
    ]
