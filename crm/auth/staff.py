"""Administering staff accounts: invite, change a role, deactivate and reactivate.

Operations flush, never commit, and audit as the admin who acted. Two rules hold here,
not in any view: an admin cannot deactivate themself, and the last active admin can be
neither deactivated nor given another role (the hospital would have no one left to run
the console). Deactivating ends the user's sessions and revokes their API tokens at once.
"""

from __future__ import annotations

from marshmallow import ValidationError
from sqlalchemy import select, update

from crm.auth.models import STAFF_ROLES, StaffToken, StaffUser
from crm.auth.operations import create_staff_user
from crm.auth.passwords import send_password_link
from crm.auth.signin import end_all_sessions
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, GuardFailed, NotFound, ValidationFailed
from crm.extensions import db


def staff_user(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None:
        raise NotFound("no such staff user")
    return user


def _refuse(guard: str, reason: str) -> GuardFailed:
    return GuardFailed(reason, guards=[{"guard": guard, "reason": reason}])


def checked_invitation(email: str, name: str, role_error: str | None = None) -> tuple[str, str]:
    """The invitee's email (normalised) and name (spaces collapsed), or ValidationFailed
    naming each bad field; Conflict if the email belongs to a user already."""
    from crm.patients.validation import normalise_email

    errors: dict[str, str] = {}
    name = " ".join(name.split())
    if not name or len(name) > 200:
        errors["name"] = "must be 1 to 200 characters"
    try:
        email = normalise_email(email.strip()).lower()
    except ValidationError as exc:
        errors["email"] = " ".join(exc.messages)
    if role_error:
        errors["role"] = role_error
    if errors:
        raise ValidationFailed(errors)
    if db.session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise Conflict(f"A staff user with the email {email} exists already.", field="email")
    return email, name


def invite_staff_user(email: str, name: str, role: str, actor: Actor) -> StaffUser:
    """A new staff user without a password; the emailed one-time link lets them set one."""
    role_error = None if role in STAFF_ROLES else f"must be one of {', '.join(STAFF_ROLES)}"
    email, name = checked_invitation(email, name, role_error)
    user = create_staff_user(email, name, role, actor=actor)
    send_password_link(user, "set", actor)
    return user


def _other_active_admins(user: StaffUser) -> int:
    """Active admins besides `user`, their rows locked: two admins demoting each other at
    the same moment cannot both pass."""
    ids = db.session.scalars(
        select(StaffUser.id)
        .where(StaffUser.role == "admin", StaffUser.active, StaffUser.id != user.id)
        .with_for_update()
    ).all()
    return len(ids)


def _keep_an_admin(user: StaffUser, doing: str) -> None:
    if user.role == "admin" and user.active and _other_active_admins(user) == 0:
        raise _refuse(
            "last_admin",
            f"{user.name} is the last active admin; make someone else an admin before {doing}",
        )


def change_role(user: StaffUser, role: str, actor: Actor) -> StaffUser:
    if role not in STAFF_ROLES:
        raise ValidationFailed({"role": f"must be one of {', '.join(STAFF_ROLES)}"})
    if role == user.role:
        return user
    if user.role == "admin":
        _keep_an_admin(user, "changing their role")
    before, user.role = user.role, role
    db.session.flush()
    audit.record(actor, "staff_user.role_change", staff_user_id=user.id, before=before, after=role)
    return user


def deactivate(user: StaffUser, actor: Actor) -> StaffUser:
    """No more sign-in: their sessions end and their API tokens are revoked now."""
    if actor.is_staff and actor.id == user.id:
        raise _refuse("self", "you cannot deactivate your own account")
    if not user.active:
        return user
    _keep_an_admin(user, "deactivating them")
    user.active = False
    sessions = end_all_sessions(user)
    tokens = db.session.execute(
        update(StaffToken)
        .where(StaffToken.user_id == user.id, StaffToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.flush()
    audit.record(
        actor,
        "staff_user.deactivate",
        staff_user_id=user.id,
        sessions_ended=sessions,
        tokens_revoked=tokens or 0,
    )
    return user


def reactivate(user: StaffUser, actor: Actor) -> StaffUser:
    """They may sign in again with their password; revoked tokens stay revoked."""
    if user.active:
        return user
    user.active = True
    db.session.flush()
    audit.record(actor, "staff_user.reactivate", staff_user_id=user.id)
    return user
