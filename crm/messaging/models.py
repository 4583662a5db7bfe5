"""The outbox (every message we owe someone) and the inbound replies we received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db

STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "suppressed",
    "cancelled",
)
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "suppressed", "cancelled"})
AUDIENCES = ("patient", "coordinator", "agency")
_STATUS_LIST = ", ".join(f"'{s}'" for s in STATUSES)
CHANNELS = ("sms", "email", "whatsapp")
INBOUND_CHANNELS = ("sms", "whatsapp")


class OutboxMessage(TimestampMixin, db.Model):
    """One SMS, WhatsApp message or email, written in the transaction that caused it and
    sent afterwards."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_LIST})", name="status"),
        CheckConstraint("channel IN ('sms','email','whatsapp')", name="channel"),
        CheckConstraint("audience IN ('patient','coordinator','agency')", name="audience"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("status <> 'suppressed' OR suppressed_reason IS NOT NULL", "why_held"),
        # The claim's order whole (due time, then id): it stops at its batch, no sort.
        Index("ix_outbox_claim", "status", "next_attempt_at", "id"),
        Index("ix_outbox_referral", "referral_id", "created_at"),
        Index("ix_outbox_provider_id", "provider_id"),
        Index("ix_outbox_spend", "channel", "agency_id", "created_at"),
        Index("ix_outbox_channel_created", "channel", "created_at"),  # the global hourly cap
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="SET NULL"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="SET NULL"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    audience: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16), default="en")
    to_address: Mapped[str] = mapped_column(String(320))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(12), default="queued")
    suppressed_reason: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(100))
    provider_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    rule_code: Mapped[str | None] = mapped_column(String(64))
    # The stage visit the message was written for (the referral's stage and the moment it
    # entered it). Unless it `stands`, it is cancelled ("moved on") once the referral
    # leaves that visit before it is sent.
    stage: Mapped[str | None] = mapped_column(String(20))
    stage_entered_at: Mapped[datetime | None]
    stands: Mapped[bool] = mapped_column(default=False)
    # WhatsApp: the allow-listed values (no health detail) a template may be filled with,
    # written with the row; the approved template (Content SID) and the variables it was
    # sent with, recorded at send time when the 24-hour session was closed (no Content SID
    # on a sent row: it went as free text inside the session); and the channel it falls
    # back to when it can go neither way (only "sms": the same allow-listed body).
    template_values: Mapped[dict[str, str] | None] = mapped_column(JSON)
    content_sid: Mapped[str | None] = mapped_column(String(40))
    content_variables: Mapped[str | None] = mapped_column(Text)
    fallback_channel: Mapped[str | None] = mapped_column(String(8))


class InboundMessage(db.Model):
    """An SMS or WhatsApp message a patient sent us: a keyword (STOP, START, HELP) or a
    reply a person reads. The latest WhatsApp one from a number opens that number's 24-hour
    session, in which free text may be sent to it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_referral", "referral_id", "received_at"),
        Index("ix_inbound_session", "channel", "from_address", "received_at"),
        CheckConstraint("channel IN ('sms','whatsapp')", name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(100), unique=True)
    from_address: Mapped[str] = mapped_column(String(32), index=True)  # E.164, no prefix
    channel: Mapped[str] = mapped_column(String(10), default="sms", server_default="sms")
    body: Mapped[str] = mapped_column(Text)
    classification: Mapped[str] = mapped_column(String(10))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class TemplateOverride(db.Model):
    """An admin's replacement for one field of one message template in one language."""

    __tablename__ = "template_overrides"
    __table_args__ = (
        UniqueConstraint("kind", "language", "field"),
        CheckConstraint("field IN ('sms','subject','text','html')", name="field"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(16))
    field: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(Text)
    updated_by_label: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsSpendCounter(db.Model):
    """SMS written for sending in one spend-cap window: the global cap counts per UTC clock
    hour (scope "global"), an agency's per UTC day (scope "agency:<id>"). Read and bumped
    in one upsert, so a cap check costs one statement however many SMS the window holds."""

    __tablename__ = "sms_spend_counters"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    sent: Mapped[int] = mapped_column(default=0)
