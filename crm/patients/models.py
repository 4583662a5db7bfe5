from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db

CHANNELS = ("sms", "email", "whatsapp")
SEXES = ("female", "male", "other", "unknown")


class Patient(TimestampMixin, db.Model):
    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint("sex IN ('female','male','other','unknown')", name="sex"),
        CheckConstraint("phone IS NULL OR phone LIKE '+%'", name="phone_e164"),
        CheckConstraint(
            "merged_into_id IS NULL OR merged_into_id <> id", name="not_merged_into_self"
        ),
        CheckConstraint("(merged_into_id IS NULL) = (merged_at IS NULL)", name="merged_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date | None]
    sex: Mapped[str] = mapped_column(String(10), default="unknown")
    country: Mapped[str] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8), default="en")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # A merged duplicate (`crm/merges`) is kept as a tombstone: its referrals, consents,
    # messages and holds moved to the patient named here, which is the one to read.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="RESTRICT"), index=True
    )
    merged_at: Mapped[datetime | None]

    consents: Mapped[list[PatientConsent]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientConsent.channel"
    )

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def survivor_id(self) -> int:
        """The patient row to read for this person: itself, or the one it was merged into."""
        return self.merged_into_id or self.id

    def consent_for(self, channel: str) -> PatientConsent | None:
        return next((c for c in self.consents if c.channel == channel), None)

    def may_contact(self, channel: str) -> bool:
        consent = self.consent_for(channel)
        return bool(consent and consent.granted)


class PatientConsent(db.Model):
    """The current consent of one patient for one channel, with when and how it was given."""

    __tablename__ = "patient_consents"
    __table_args__ = (
        UniqueConstraint("patient_id", "channel"),
        CheckConstraint("channel IN ('sms','email','whatsapp')", name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    granted: Mapped[bool]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(100))

    patient: Mapped[Patient] = relationship(back_populates="consents")


class PatientLink(db.Model):
    """A patient's private link. The token signs (id, nonce); revoking or expiring the row
    kills every copy of the link at once."""

    __tablename__ = "patient_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    nonce: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class PatientShortLink(db.Model):
    """A short code standing for a private link in an SMS (`/s/<code>`), one per message.

    Only the SHA-256 of the code is kept: the code itself exists only in the message that
    carries it. It expires with its link, and revoking the link kills it too."""

    __tablename__ = "patient_short_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("patient_links.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    message_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]

    link: Mapped[PatientLink] = relationship()
