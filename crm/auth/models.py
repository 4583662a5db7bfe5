from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.agencies.models import Agency
from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db

STAFF_ROLES = ("coordinator", "specialist", "manager", "admin")
# An agency's own people: they sign in like staff but see only their agency's panel.
AGENCY_ROLE = "agency"


class AgencyApiKey(db.Model):
    """An agency's API key: shown once, stored as a SHA-256 hash beside a visible prefix."""

    __tablename__ = "agency_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Set when the key was rotated: it keeps working until then, beside its successor.
    expires_at: Mapped[datetime | None]

    agency: Mapped[Agency] = relationship()


class StaffUser(TimestampMixin, db.Model):
    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('coordinator','specialist','manager','admin','agency')", name="role"
        ),
        CheckConstraint("(role = 'agency') = (agency_id IS NOT NULL)", name="agency_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # Set for (and only for) an agency's user: the agency whose panel they work in.
    agency_id: Mapped[int | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Istanbul")
    active: Mapped[bool] = mapped_column(default=True)
    # The TOTP second factor: the base32 secret once enrolment began, confirmed at
    # `totp_enabled_at` by a first correct code. Admins and managers must have it.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None]
    # The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    agency: Mapped[Agency | None] = relationship()

    @property
    def is_agency_user(self) -> bool:
        return self.agency_id is not None


class StaffToken(db.Model):
    """A staff user's personal API token, stored like agency keys."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[StaffUser] = relationship()


class StaffSession(db.Model):
    """A signed-in console session. The cookie carries a random id; only its SHA-256 is
    stored, so the table alone signs no one in; signing out revokes the row."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    remote_addr: Mapped[str | None] = mapped_column(String(64))

    user: Mapped[StaffUser] = relationship()


class SignInThrottle(db.Model):
    """Failed sign-ins counted per account (`account:<email>`) and per address
    (`address:<ip>`), in the database so every worker sees the same count."""

    __tablename__ = "sign_in_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]


class PasswordLink(db.Model):
    """A one-time link to set or reset a password: the hash of its random token, its
    expiry, and when it was used (a used link never works again)."""

    __tablename__ = "staff_password_links"
    __table_args__ = (CheckConstraint("purpose IN ('set','reset')", name="purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    user: Mapped[StaffUser] = relationship()
