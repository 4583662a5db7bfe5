"""Issuing, checking and revoking credentials. Operations flush; the caller commits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from flask import current_app, g, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from crm.agencies.models import Agency
from crm.auth.models import AGENCY_ROLE, STAFF_ROLES, AgencyApiKey, StaffToken, StaffUser
from crm.core import audit
from crm.core.actors import SYSTEM, Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from crm.extensions import db

AGENCY_KEY_PREFIX = "crm_ak_"
STAFF_TOKEN_PREFIX = "crm_st_"  # noqa: S105 - a public prefix, not a secret
LAST_USED_RESOLUTION = timedelta(minutes=1)
_password_hasher = PasswordHasher()


@dataclass(frozen=True)
class IssuedSecret:
    """A new credential. `secret` exists only here: it is never stored or shown again."""

    id: int
    prefix: str
    secret: str


def _new_secret(kind_prefix: str) -> tuple[str, str]:
    public = kind_prefix + secrets.token_hex(4)
    return public, f"{public}_{secrets.token_urlsafe(32)}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def public_part(secret: str) -> str:
    """`crm_ak_1a2b3c4d` of `crm_ak_1a2b3c4d_<secret>` (the secret may contain '_')."""
    parts = secret.split("_", 3)
    return "_".join(parts[:3]) if len(parts) == 4 else ""


def issue_agency_key(agency: Agency, label: str = "", actor: Actor = SYSTEM) -> IssuedSecret:
    if len(label) > 100:
        raise ValidationFailed({"label": "must be at most 100 characters"})
    prefix, secret = _new_secret(AGENCY_KEY_PREFIX)
    key = AgencyApiKey(agency=agency, prefix=prefix, key_hash=_digest(secret), label=label)
    db.session.add(key)
    db.session.flush()
    audit.record(actor, "agency_key.issue", agency_id=agency.id, key_prefix=prefix)
    return IssuedSecret(key.id, prefix, secret)


def agency_keys() -> dict[int, list[AgencyApiKey]]:
    """Every agency's keys by agency id, newest first: prefixes and dates, never a secret."""
    keys: dict[int, list[AgencyApiKey]] = {}
    for key in db.session.scalars(select(AgencyApiKey).order_by(AgencyApiKey.id.desc())):
        keys.setdefault(key.agency_id, []).append(key)
    return keys


def agency_key_with_prefix(prefix: str) -> AgencyApiKey:
    key = db.session.scalar(select(AgencyApiKey).where(AgencyApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"no API key with prefix {prefix}")
    return key


def revoke_agency_key(
    prefix: str, actor: Actor = SYSTEM, agency_id: int | None = None
) -> AgencyApiKey:
    """Revoke by prefix; with `agency_id`, only that agency's own key (another's is
    NotFound, in the same words as a prefix that does not exist)."""
    key = db.session.scalar(select(AgencyApiKey).where(AgencyApiKey.prefix == prefix))
    if key is None or (agency_id is not None and key.agency_id != agency_id):
        raise NotFound(f"no API key with prefix {prefix}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(actor, "agency_key.revoke", agency_id=key.agency_id, key_prefix=prefix)
    db.session.flush()
    return key


def keys_of_agency(agency_id: int) -> list[AgencyApiKey]:
    """One agency's keys, newest first: prefixes and dates, never a secret."""
    return list(
        db.session.scalars(
            select(AgencyApiKey)
            .where(AgencyApiKey.agency_id == agency_id)
            .order_by(AgencyApiKey.id.desc())
        )
    )


def agency_key_of(agency_id: int, key_id: int, *, for_update: bool = False) -> AgencyApiKey:
    """This agency's key `key_id`; another agency's key is NotFound like a missing one."""
    statement = select(AgencyApiKey).where(
        AgencyApiKey.id == key_id, AgencyApiKey.agency_id == agency_id
    )
    if for_update:
        statement = statement.with_for_update()
    key = db.session.scalar(statement)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    return key


def key_state(key: AgencyApiKey, now: datetime | None = None) -> str:
    """`active`, `expiring` (rotated: works until `expires_at`), `expired` or `revoked`."""
    now = now or utcnow()
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None:
        return "expiring" if key.expires_at > now else "expired"
    return "active"


@dataclass(frozen=True)
class Rotation:
    """A rotation's result: the successor (its secret only here) and the old key, which
    keeps working until `old.expires_at`."""

    issued: IssuedSecret
    old: AgencyApiKey


def rotate_agency_key(key: AgencyApiKey, actor: Actor = SYSTEM) -> Rotation:
    """A new key with the old one's label; the old one expires after
    CRM_API_KEY_ROTATION_OVERLAP_HOURS, so both work while the agency switches over.

    Only a key that is plainly active rotates: a revoked or expired key is refused, and so
    is one already rotated (rotate its successor instead)."""
    state = key_state(key)
    if state != "active":
        reason = {
            "revoked": "this key is revoked",
            "expired": "this key has expired",
            "expiring": "this key was rotated already; rotate its successor",
        }[state]
        raise Conflict(reason, field="key")
    hours = current_app.config["CRM"]["API_KEY_ROTATION_OVERLAP_HOURS"]
    issued = issue_agency_key(key.agency, label=key.label, actor=actor)
    key.expires_at = utcnow() + timedelta(hours=hours)
    db.session.flush()
    audit.record(
        actor,
        "agency_key.rotate",
        agency_id=key.agency_id,
        key_prefix=key.prefix,
        new_key_prefix=issued.prefix,
        old_key_expires_at=key.expires_at.isoformat(),
    )
    return Rotation(issued, key)


def create_staff_user(
    email: str, name: str, role: str, password: str | None = None, actor: Actor = SYSTEM
) -> StaffUser:
    if role not in STAFF_ROLES:
        raise ValidationFailed({"role": f"must be one of {', '.join(STAFF_ROLES)}"})
    user = StaffUser(email=email.strip().lower(), name=name, role=role)
    if password is not None:
        set_password(user, password)
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "staff_user.create", staff_user_id=user.id, role=role)
    return user


def create_agency_user(
    agency: Agency, email: str, name: str, password: str | None = None, actor: Actor = SYSTEM
) -> StaffUser:
    """One of an agency's own people: role `agency`, signs in to the agency panel only."""
    user = StaffUser(email=email.strip().lower(), name=name, role=AGENCY_ROLE, agency_id=agency.id)
    user.agency = agency
    if password is not None:
        set_password(user, password)
    db.session.add(user)
    db.session.flush()
    audit.record(
        actor, "staff_user.create", staff_user_id=user.id, role=AGENCY_ROLE, agency_id=agency.id
    )
    return user


MIN_PASSWORD_LENGTH = 12


def password_hash(password: str) -> str:
    return _password_hasher.hash(password)


def set_password(user: StaffUser, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed({"password": f"must be at least {MIN_PASSWORD_LENGTH} characters"})
    if len(password) > 200:
        raise ValidationFailed({"password": "must be at most 200 characters"})
    user.password_hash = _password_hasher.hash(password)


def verify_password(user: StaffUser, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _password_hasher.verify(user.password_hash, password)
    except VerificationError:
        return False


def issue_staff_token(user: StaffUser, label: str = "", actor: Actor = SYSTEM) -> IssuedSecret:
    if len(label) > 100:
        raise ValidationFailed({"label": "must be at most 100 characters"})
    prefix, secret = _new_secret(STAFF_TOKEN_PREFIX)
    token = StaffToken(user=user, prefix=prefix, token_hash=_digest(secret), label=label)
    db.session.add(token)
    db.session.flush()
    audit.record(actor, "staff_token.issue", staff_user_id=user.id, token_prefix=prefix)
    return IssuedSecret(token.id, prefix, secret)


def staff_tokens(user: StaffUser) -> list[StaffToken]:
    """A user's tokens, newest first: prefixes and dates, never a secret."""
    return list(
        db.session.scalars(
            select(StaffToken).where(StaffToken.user_id == user.id).order_by(StaffToken.id.desc())
        )
    )


def revoke_staff_token(
    prefix: str, actor: Actor = SYSTEM, owner: StaffUser | None = None
) -> StaffToken:
    """Revoke by prefix; with `owner`, only that user's own token (another's is NotFound)."""
    token = db.session.scalar(select(StaffToken).where(StaffToken.prefix == prefix))
    if token is None or (owner is not None and token.user_id != owner.id):
        raise NotFound(f"no staff token with prefix {prefix}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(actor, "staff_token.revoke", staff_user_id=token.user_id, token_prefix=prefix)
    db.session.flush()
    return token


def _touch(credential: AgencyApiKey | StaffToken) -> None:
    now = utcnow()
    if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_RESOLUTION:
        credential.last_used_at = now


def _keep_loaded(credential: AgencyApiKey | StaffToken) -> None:
    """Hold the credential (and its agency or user) for the request: the session keeps
    only weak references, and without one the agency a response or a message names would
    be loaded a second time."""
    if has_request_context():
        g.crm_credential = credential


def authenticate(secret: str) -> Actor:
    """The actor a bearer secret belongs to; Unauthorized for anything else."""
    prefix = public_part(secret)
    if prefix.startswith(AGENCY_KEY_PREFIX):
        return _authenticate_agency(prefix, secret)
    if prefix.startswith(STAFF_TOKEN_PREFIX):
        return _authenticate_staff(prefix, secret)
    raise Unauthorized("The bearer credential is not valid.")


def _authenticate_agency(prefix: str, secret: str) -> Actor:
    key = db.session.scalar(
        select(AgencyApiKey)
        .options(joinedload(AgencyApiKey.agency))
        .where(AgencyApiKey.prefix == prefix)
    )
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= utcnow())
        or not key.agency.active
        or not hmac.compare_digest(key.key_hash, _digest(secret))
    ):
        raise Unauthorized("The bearer credential is not valid.")
    _touch(key)
    _keep_loaded(key)
    return Actor("agency", key.agency_id, key.agency.name, agency_id=key.agency_id)


def _authenticate_staff(prefix: str, secret: str) -> Actor:
    token = db.session.scalar(
        select(StaffToken).options(joinedload(StaffToken.user)).where(StaffToken.prefix == prefix)
    )
    if (
        token is None
        or token.revoked_at is not None
        or not token.user.active
        or token.user.agency_id is not None  # an agency's people call the API with keys
        or not hmac.compare_digest(token.token_hash, _digest(secret))
    ):
        raise Unauthorized("The bearer credential is not valid.")
    _touch(token)
    _keep_loaded(token)
    return Actor("staff", token.user_id, token.user.name, role=token.user.role)
