"""An agency's team: its own users (role `agency`), invited and deactivated by each other
or, for the first one, by a hospital admin.

Invitations are the staff invitations (`crm.auth.staff`): a user without a password and an
emailed one-time link to set one. Deactivating is the staff deactivation (sessions end at
once), with the agency's two rules: nobody deactivates themself, and the last active
member of an agency stays (or nobody could sign in to manage its keys again). Operations
flush, never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from crm.agencies.models import Agency
from crm.auth import staff as accounts
from crm.auth.models import StaffSession, StaffUser
from crm.auth.operations import create_agency_user
from crm.auth.passwords import send_password_link
from crm.core.actors import Actor
from crm.core.errors import GuardFailed, NotFound
from crm.extensions import db


def members(agency_id: int) -> list[StaffUser]:
    """The agency's users, active ones first, then by name."""
    return list(
        db.session.scalars(
            select(StaffUser)
            .where(StaffUser.agency_id == agency_id)
            .order_by(StaffUser.active.desc(), StaffUser.name, StaffUser.id)
        )
    )


def members_with_last_sign_in(agency_id: int) -> list[tuple[StaffUser, datetime | None]]:
    """The agency's users as `members` orders them, each with their newest session's start
    (None: never signed in, e.g. an invitation not yet taken up)."""
    last = (
        select(StaffSession.user_id, func.max(StaffSession.created_at).label("at"))
        .group_by(StaffSession.user_id)
        .subquery()
    )
    rows = db.session.execute(
        select(StaffUser, last.c.at)
        .outerjoin(last, last.c.user_id == StaffUser.id)
        .where(StaffUser.agency_id == agency_id)
        .order_by(StaffUser.active.desc(), StaffUser.name, StaffUser.id)
    ).all()
    return [(user, at) for user, at in rows]


def members_by_agency() -> dict[int, list[StaffUser]]:
    """Every agency's users by agency id (for the admins' agencies page)."""
    found: dict[int, list[StaffUser]] = {}
    statement = (
        select(StaffUser)
        .where(StaffUser.agency_id.is_not(None))
        .order_by(StaffUser.active.desc(), StaffUser.name, StaffUser.id)
    )
    for user in db.session.scalars(statement):
        found.setdefault(user.agency_id, []).append(user)
    return found


def member_of(agency_id: int, user_id: int) -> StaffUser:
    """This agency's user `user_id`; anyone else (staff, another agency's) is NotFound."""
    user = db.session.scalar(
        select(StaffUser).where(StaffUser.id == user_id, StaffUser.agency_id == agency_id)
    )
    if user is None:
        raise NotFound(f"no team member {user_id}")
    return user


def invite_member(agency: Agency, email: str, name: str, actor: Actor) -> StaffUser:
    """A new user of `agency` without a password; the emailed link lets them set one, and
    they then sign in where staff do and land in the agency panel."""
    email, name = accounts.checked_invitation(email, name)
    user = create_agency_user(agency, email, name, actor=actor)
    send_password_link(user, "set", actor)
    return user


def _refuse(guard: str, reason: str) -> GuardFailed:
    return GuardFailed(reason, guards=[{"guard": guard, "reason": reason}])


def deactivate_member(user: StaffUser, acting_user: StaffUser, actor: Actor) -> StaffUser:
    """No more sign-in for `user`: their sessions end now. Refused for yourself and for the
    agency's last active member (the other members' rows are locked while counted, so two
    members deactivating each other at once cannot both pass)."""
    if user.id == acting_user.id:
        raise _refuse("self", "you cannot deactivate your own account")
    if not user.active:
        return user
    others = db.session.scalars(
        select(StaffUser.id)
        .where(StaffUser.agency_id == user.agency_id, StaffUser.active, StaffUser.id != user.id)
        .with_for_update()
    ).all()
    if not others:
        raise _refuse(
            "last_member", f"{user.name} is the agency's last active member and must stay"
        )
    return accounts.deactivate(user, actor)
