"""Reads about the people using the API: the staff directory and the caller themself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from crm.agencies.models import Agency
from crm.auth.models import StaffSession, StaffUser
from crm.core.actors import Actor
from crm.core.errors import NotFound
from crm.extensions import db


def list_staff(args: dict[str, Any]) -> list[StaffUser]:
    """Every staff user by name (a hospital's staff is a short list: no pages)."""
    statement = select(StaffUser).order_by(StaffUser.name, StaffUser.id)
    if args.get("role"):
        statement = statement.where(StaffUser.role.in_(args["role"]))
    if args.get("active") is not None:
        statement = statement.where(StaffUser.active.is_(args["active"]))
    return list(db.session.scalars(statement))


@dataclass(frozen=True)
class StaffRow:
    user: StaffUser
    last_sign_in: datetime | None  # the newest console session's start; None: never


def staff_with_last_sign_in() -> list[StaffRow]:
    """Every staff user by name with when they last signed in to the console (for the
    admin's staff page; API tokens leave no session, so a token-only user shows never)."""
    last = (
        select(StaffSession.user_id, func.max(StaffSession.created_at).label("at"))
        .group_by(StaffSession.user_id)
        .subquery()
    )
    rows = db.session.execute(
        select(StaffUser, last.c.at)
        .outerjoin(last, last.c.user_id == StaffUser.id)
        .order_by(StaffUser.name, StaffUser.id)
    ).all()
    return [StaffRow(user, at) for user, at in rows]


@dataclass(frozen=True)
class Me:
    kind: str
    id: int
    name: str
    email: str | None = None
    role: str | None = None


def me(actor: Actor) -> Me:
    if actor.is_staff and actor.id is not None:
        user = db.session.get(StaffUser, actor.id)
        if user is not None:
            return Me("staff", user.id, user.name, user.email, user.role)
    if actor.is_agency and actor.agency_id is not None:
        agency = db.session.get(Agency, actor.agency_id)
        if agency is not None:
            return Me("agency", agency.id, agency.name)
    raise NotFound("no such caller")
