from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db

TASK_SOURCES = ("rule", "alert", "reply", "manual", "system")
TASK_PRIORITIES = ("normal", "urgent")


class Task(TimestampMixin, db.Model):
    """Something a coordinator must do, with who, by when and why it exists."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("source IN ('rule','alert','reply','manual','system')", name="source"),
        CheckConstraint("priority IN ('normal','urgent')", name="priority"),
        CheckConstraint("status IN ('open','done','cancelled')", name="status"),
        Index("ix_tasks_owner_status_due", "owner_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(10))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(10), default="open")
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    completed_at: Mapped[datetime | None]
