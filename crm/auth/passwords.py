"""Setting and resetting a password through an emailed one-time link.

The link carries a random token; only its SHA-256 is stored, with an expiry. It works
once: using it marks it (and every other open link of that user) used, sets the
password and signs the user out everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from crm.auth.events import PasswordLinkIssued
from crm.auth.models import PasswordLink, StaffUser
from crm.auth.operations import set_password
from crm.auth.signin import (
    clear_failures,
    count_attempt,
    end_all_sessions,
    locked_key,
    staff_actor,
)
from crm.core import audit, events
from crm.core.actors import SYSTEM, Actor
from crm.core.db import utcnow
from crm.core.errors import NotFound, RateLimited
from crm.extensions import db

PURPOSES = ("set", "reset")
# Links asked for within an hour (the sign-in throttle's window) before more are refused:
# one inbox is not flooded, and one address cannot mail every staff member over and over.
RESETS_PER_ACCOUNT = 3
RESETS_PER_ADDRESS = 12


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def link_url(raw: str) -> str:
    base = current_app.config["CRM"]["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}/console/password/{raw}"


def send_password_link(user: StaffUser, purpose: str, actor: Actor = SYSTEM) -> str:
    """A new link, published so messaging writes its email; the raw token returned once."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    hours = current_app.config["CRM"]["PASSWORD_LINK_HOURS"]
    link = PasswordLink(
        user_id=user.id,
        token_hash=_digest(raw),
        purpose=purpose,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    db.session.add(link)
    db.session.flush()
    events.publish(PasswordLinkIssued(user, link.id, purpose, link_url(raw)))
    audit.record(actor, "staff.password_link_sent", staff_user_id=user.id, purpose=purpose)
    return raw


def request_reset(email: str, address: str | None = None) -> None:
    """'Forgot password': a link if such an active account exists; nothing otherwise. The
    caller shows the same words either way.

    Throttled like sign-ins: an address asking too often is refused (RateLimited: that
    says nothing about any account); an email asked for too often gets no further link,
    silently, whether or not it is staff's."""
    _count_reset_request(f"reset:address:{address or 'unknown'}", RESETS_PER_ADDRESS, True)
    if not _count_reset_request(f"reset:account:{email.strip().lower()[:320]}", RESETS_PER_ACCOUNT):
        audit.record(SYSTEM, "staff.password_reset_throttled", email=email[:320])
        return
    user = db.session.scalar(
        select(StaffUser).where(StaffUser.email == email.strip().lower(), StaffUser.active)
    )
    if user is not None:
        send_password_link(user, "reset")
    else:
        audit.record(SYSTEM, "staff.password_reset_unknown", email=email[:320])


def _count_reset_request(key: str, limit: int, refuse: bool = False) -> bool:
    """Count one request against `key`; False (or RateLimited, when `refuse`) while the key
    is locked."""
    remaining = locked_key(key)
    if remaining is None:
        count_attempt(key, limit)
        return True
    if not refuse:
        return False
    minutes = max(1, -(-int(remaining.total_seconds()) // 60))
    raise RateLimited(
        f"Too many password links were asked for from this address. Try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."
    )


def open_link(raw: str) -> PasswordLink | None:
    """The link this token names if it is unused and unexpired (and its user active)."""
    found = db.session.scalar(select(PasswordLink).where(PasswordLink.token_hash == _digest(raw)))
    if found is None or found.used_at or found.expires_at <= utcnow() or not found.user.active:
        return None
    return found


def use_link(raw: str, password: str) -> StaffUser:
    """Set the password through the link; NotFound if it is used, expired or unknown."""
    link = open_link(raw)
    if link is None:
        raise NotFound("This link has been used or has expired. Ask for a new one.")
    user = link.user
    set_password(user, password)  # ValidationFailed leaves the link usable
    now = utcnow()
    db.session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    )
    end_all_sessions(user)
    clear_failures(user.email)
    audit.record(staff_actor(user), "staff.password_set", purpose=link.purpose)
    db.session.flush()
    return user
