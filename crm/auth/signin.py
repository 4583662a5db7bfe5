"""Console sign-in: passwords checked against a lockout kept in the database, and sessions.

A failed sign-in counts against the account (by the email typed, whether or not such an
account exists, so the answers never tell which emails are staff) and against the
address it came from. Past the limit the key is locked, and each further failure doubles
the lock, up to an hour. Operations flush; the request boundary commits (a refused
sign-in is kept: see `crm.core.http.keep_when_refused`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import lru_cache

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crm.auth.models import SignInThrottle, StaffSession, StaffUser
from crm.auth.operations import password_hash, verify_password
from crm.core import audit
from crm.core.actors import SYSTEM, Actor
from crm.core.db import utcnow
from crm.core.errors import DomainError
from crm.extensions import db

ADDRESS_FACTOR = 4  # an address may fail four times as often as one account
MAX_LOCK = timedelta(hours=1)
FORGET_AFTER = timedelta(hours=1)  # failures this old no longer count
SESSION_TOUCH = timedelta(minutes=1)
WRONG = "The email or password is not right."


@lru_cache(maxsize=1)
def _dummy_user() -> StaffUser:
    """A hash to verify against when no such account exists, so both answers take as long."""
    return StaffUser(password_hash=password_hash(secrets.token_hex(16)))


class SignInRefused(DomainError):
    status, code, title = 401, "sign-in-refused", "Sign-in refused"


class SignInLocked(SignInRefused):
    status, code, title = 429, "sign-in-locked", "Too many failed sign-ins"


def staff_actor(user: StaffUser) -> Actor:
    """The actor a signed-in user is: hospital staff, or an agency's user, who acts as
    their agency (the same tenancy as the agency's API keys) under their own name."""
    if user.agency_id is not None:
        label = f"{user.name} ({user.agency.name})" if user.agency else user.name
        return Actor("agency", user.agency_id, label, role="agency", agency_id=user.agency_id)
    return Actor("staff", user.id, user.name, role=user.role)


def _settings() -> dict:
    return current_app.config["CRM"]


def _keys(email: str, address: str | None) -> tuple[str, str]:
    return f"account:{email.strip().lower()[:320]}", f"address:{address or 'unknown'}"


def locked_for(email: str, address: str | None, now: datetime | None = None) -> timedelta | None:
    """How much longer this account or address is locked, if it is."""
    now = now or utcnow()
    rows = db.session.scalars(
        select(SignInThrottle.locked_until).where(
            SignInThrottle.key.in_(_keys(email, address)),
            SignInThrottle.locked_until > now,
        )
    ).all()
    return max(rows) - now if rows else None


def _throttle_row(key: str) -> SignInThrottle:
    """The key's row, created if missing and locked FOR UPDATE: two workers counting the
    same key's failures at once each see the other's."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(
        insert(SignInThrottle)
        .values(key=key, failures=0, last_failure_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return db.session.scalars(
        select(SignInThrottle)
        .where(SignInThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def locked_key(key: str, now: datetime | None = None) -> timedelta | None:
    """How much longer one throttle key is locked, if it is."""
    now = now or utcnow()
    until = db.session.scalar(
        select(SignInThrottle.locked_until).where(
            SignInThrottle.key == key, SignInThrottle.locked_until > now
        )
    )
    return until - now if until else None


def count_attempt(key: str, limit: int) -> bool:
    """One more attempt against any throttle key (not only sign-ins: password-link
    requests too); True when this one locked it."""
    return _count_failure(key, limit, utcnow())


def _count_failure(key: str, limit: int, now: datetime) -> bool:
    """One more failure for `key`; True when this one locked it."""
    row = _throttle_row(key)
    if now - row.last_failure_at > FORGET_AFTER and row.failures:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    if row.failures < limit:
        db.session.flush()
        return False
    base = timedelta(seconds=_settings()["SIGN_IN_LOCKOUT_SECONDS"])
    row.locked_until = now + min(base * 2 ** min(row.failures - limit, 12), MAX_LOCK)
    db.session.flush()
    return True


def record_failure(email: str, address: str | None, user: StaffUser | None, why: str) -> None:
    """Count a wrong password (or code) against the account and the address; audit it."""
    now = utcnow()
    limit = _settings()["SIGN_IN_MAX_FAILURES"]
    account, place = _keys(email, address)
    locked = _count_failure(account, limit, now)
    locked = _count_failure(place, limit * ADDRESS_FACTOR, now) or locked
    actor = staff_actor(user) if user else SYSTEM
    audit.record(actor, "staff.sign_in_failed", email=email[:320], reason=why)
    if locked:
        audit.record(actor, "staff.sign_in_lockout", email=email[:320])


def _lock_message(remaining: timedelta) -> str:
    minutes = max(1, -(-int(remaining.total_seconds()) // 60))
    unit = "minute" if minutes == 1 else "minutes"
    return (
        "Too many failed sign-ins from this account or address. "
        f"Try again in {minutes} {unit}, or reset your password."
    )


def refuse_if_locked(email: str, address: str | None) -> None:
    remaining = locked_for(email, address)
    if remaining is not None:
        audit.record(SYSTEM, "staff.sign_in_locked_out", email=email[:320])
        raise SignInLocked(_lock_message(remaining))


def check_password(email: str, password: str, address: str | None) -> StaffUser:
    """The active staff user with this email and password, or SignInRefused/SignInLocked.

    While locked, not even the right password gets in (the check is not made at all)."""
    refuse_if_locked(email, address)
    user = db.session.scalar(
        select(StaffUser).where(StaffUser.email == email.strip().lower(), StaffUser.active)
    )
    if user is None:
        verify_password(_dummy_user(), password)  # the same work as a real check
        record_failure(email, address, None, "unknown or inactive account")
    elif not verify_password(user, password):
        record_failure(email, address, user, "wrong password")
    else:
        clear_failures(email)
        return user
    remaining = locked_for(email, address)
    raise SignInLocked(_lock_message(remaining)) if remaining else SignInRefused(WRONG)


def clear_failures(email: str) -> None:
    account, _ = _keys(email, None)
    db.session.execute(delete(SignInThrottle).where(SignInThrottle.key == account))


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start_session(user: StaffUser, address: str | None) -> str:
    """A new session row; the raw id (for the signed cookie) exists only in the return."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        StaffSession(
            user_id=user.id,
            token_hash=_digest(raw),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=_settings()["SESSION_HOURS"]),
            remote_addr=address,
        )
    )
    db.session.flush()
    audit.record(staff_actor(user), "staff.sign_in")
    return raw


def resolve_session(raw: str | None) -> StaffSession | None:
    """The live session this cookie names: not revoked, not expired, its user active."""
    if not raw:
        return None
    found = db.session.scalar(select(StaffSession).where(StaffSession.token_hash == _digest(raw)))
    now = utcnow()
    if found is None or found.revoked_at or found.expires_at <= now or not found.user.active:
        return None
    if now - found.last_seen_at > SESSION_TOUCH:
        found.last_seen_at = now
    return found


def end_session(staff_session: StaffSession) -> None:
    staff_session.revoked_at = utcnow()
    audit.record(staff_actor(staff_session.user), "staff.sign_out")
    db.session.flush()


def end_all_sessions(user: StaffUser) -> int:
    result = db.session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
