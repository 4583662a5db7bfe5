"""Reads about agencies for the hospital's staff (an agency never reads another).

Their open referrals are counted by `crm.referrals.queries.open_referrals_by_agency` and
their keys listed by `crm.auth.operations.agency_keys`: agencies import neither package
(both import agencies).
"""

from __future__ import annotations

from sqlalchemy import select

from crm.agencies.models import Agency
from crm.core.errors import NotFound
from crm.extensions import db


def all_agencies() -> list[Agency]:
    return list(db.session.scalars(select(Agency).order_by(Agency.name, Agency.id)))


def agency_by_id(agency_id: int) -> Agency:
    agency = db.session.get(Agency, agency_id)
    if agency is None:
        raise NotFound("no such agency")
    return agency
