from __future__ import annotations

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import TimestampMixin
from crm.extensions import db


class Agency(TimestampMixin, db.Model):
    """A partner agency abroad that sends patients."""

    __tablename__ = "agencies"
    __table_args__ = (
        CheckConstraint("commission_basis_points BETWEEN 0 AND 10000", name="commission_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    commission_basis_points: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
