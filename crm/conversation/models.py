"""The conversation's own rows. Inbound SMS and WhatsApp replies stay in messaging's
`inbound_messages` (the thread reads them there, whatever their channel); whether a
coordinator has read one is kept here, beside it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.extensions import db

DIRECTIONS = ("in", "out")
CHANNELS = ("page", "sms", "whatsapp", "email")


class ConversationMessage(db.Model):
    """A message the patient wrote on the private page (`in`, channel `page`), or a staff
    member's answer (`out`, on the channel the patient was told by; `page` when no channel
    was permitted). An answer is always shown on the page; `read_at` is when a coordinator
    read an inbound one."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in','out')", name="direction"),
        CheckConstraint("channel IN ('page','sms','whatsapp','email')", name="channel"),
        CheckConstraint("direction = 'out' OR staff_id IS NULL", name="patient_writes_in"),
        CheckConstraint("direction = 'in' OR read_at IS NULL", name="only_inbound_is_read"),
        Index("ix_conversation_referral", "referral_id", "created_at"),
        Index(
            "ix_conversation_unread",
            "referral_id",
            postgresql_where="direction = 'in' AND read_at IS NULL",
            sqlite_where="direction = 'in' AND read_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(10))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    sms_carries_text: Mapped[bool] = mapped_column(default=False)
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    read_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )


class InboundRead(db.Model):
    """A coordinator read this inbound SMS or WhatsApp reply (absent: unread)."""

    __tablename__ = "conversation_reads"

    inbound_message_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="CASCADE"), primary_key=True
    )
    read_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
