"""Reads about agencies for the hospital's staff (an agency never reads another)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from crm.agencies.models import Agency
from crm.auth.models import AgencyApiKey
from crm.extensions import db
from crm.referrals.models import Referral
from crm.referrals.stages import TERMINAL

OVER = [str(stage) for stage in TERMINAL]


@dataclass(frozen=True)
class AgencyOverview:
    agency: Agency
    active_referrals: int
    keys: list[AgencyApiKey]


def overview() -> list[AgencyOverview]:
    """Every agency by name, with its active referrals counted (neither
    completed nor lost; on hold counts) and its keys (newest first;
    prefixes and dates, never a secret). Three queries, whatever the number of agencies."""
    agencies = db.session.scalars(select(Agency).order_by(Agency.name, Agency.id)).all()
    counts = dict(
        db.session.execute(
            select(Referral.agency_id, func.count())
            .where(Referral.agency_id.is_not(None), Referral.stage.not_in(OVER))
            .group_by(Referral.agency_id)
        ).all()
    )
    keys: dict[int, list[AgencyApiKey]] = {}
    for key in db.session.scalars(select(AgencyApiKey).order_by(AgencyApiKey.id.desc())):
        keys.setdefault(key.agency_id, []).append(key)
    return [AgencyOverview(a, counts.get(a.id, 0), keys.get(a.id, [])) for a in agencies]


def agency(agency_id: int) -> Agency | None:
    return db.session.get(Agency, agency_id)
