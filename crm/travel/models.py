from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import TimestampMixin
from crm.extensions import db


class Trip(TimestampMixin, db.Model):
    """The patient's stay: arrival, admission, discharge, departure, hotel, transfers.

    Times are instants in UTC; each carries the IANA zone it is shown in locally.
    """

    __tablename__ = "trips"
    __table_args__ = (
        CheckConstraint("admission_at > arrival_at", name="arrive_before_admission"),
        CheckConstraint("discharge_at > admission_at", name="discharge_after_admission"),
        CheckConstraint("departure_at > discharge_at", name="leave_after_discharge"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), unique=True
    )
    local_time_zone: Mapped[str] = mapped_column(String(64), default="Europe/Istanbul")
    arrival_at: Mapped[datetime]
    admission_at: Mapped[datetime]
    discharge_at: Mapped[datetime]
    departure_at: Mapped[datetime]
    hotel_name: Mapped[str] = mapped_column(String(200), default="")
    hotel_address: Mapped[str] = mapped_column(String(500), default="")
    transfers: Mapped[str] = mapped_column(Text, default="")
    companion_name: Mapped[str | None] = mapped_column(String(200))
    companion_passport_country: Mapped[str | None] = mapped_column(String(2))
    visa_letter_needed: Mapped[bool] = mapped_column(default=False)
    admitted_at: Mapped[datetime | None]
    discharged_at: Mapped[datetime | None]
    departed_at: Mapped[datetime | None]

    flights: Mapped[list[Flight]] = relationship(
        order_by="Flight.departs_at", cascade="all, delete-orphan", lazy="selectin"
    )


class Flight(db.Model):
    __tablename__ = "flights"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound','outbound')", name="direction"),
        CheckConstraint("arrives_at > departs_at", name="arrives_after_departure"),
        UniqueConstraint("trip_id", "direction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(10))
    flight_number: Mapped[str] = mapped_column(String(12))
    departure_airport: Mapped[str] = mapped_column(String(3))
    departure_time_zone: Mapped[str] = mapped_column(String(64))
    departs_at: Mapped[datetime]
    arrival_airport: Mapped[str] = mapped_column(String(3))
    arrival_time_zone: Mapped[str] = mapped_column(String(64))
    arrives_at: Mapped[datetime]
