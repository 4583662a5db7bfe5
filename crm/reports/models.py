"""Rollups the reports read instead of the source rows, kept by the domain events.

Their size grows with days x stages x agencies x procedures, not with referrals. A direct
referral (no agency) is `agency_id = 0` here, so the composite keys need no NULLs.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.extensions import db

DIRECT = 0  # agency_id of a referral that came without an agency


class StageDaily(db.Model):
    """Referrals reaching a stage for the first time, per day (and, for `lost`, reason)."""

    __tablename__ = "report_stage_daily"

    day: Mapped[date] = mapped_column(primary_key=True)
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)  # '' unless lost
    agency_id: Mapped[int] = mapped_column(primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    entered: Mapped[int] = mapped_column(default=0)


class StageDuration(db.Model):
    """A histogram of finished stage visits: how many lasted within each bucket, per the
    month the visit ended (buckets: crm.reports.percentiles)."""

    __tablename__ = "report_stage_duration"

    month: Mapped[date] = mapped_column(primary_key=True)  # the first of the month
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    agency_id: Mapped[int] = mapped_column(primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[int] = mapped_column(primary_key=True)
    visits: Mapped[int] = mapped_column(default=0)


class PlanDaily(db.Model):
    """Plans accepted per day, with their value summed per currency (never converted)."""

    __tablename__ = "report_plan_daily"

    day: Mapped[date] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    accepted: Mapped[int] = mapped_column(default=0)
    value_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class OptOutDaily(db.Model):
    """Consents withdrawn per day and channel (a STOP, a form, a bounce)."""

    __tablename__ = "report_optout_daily"

    day: Mapped[date] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    agency_id: Mapped[int] = mapped_column(primary_key=True)
    opt_outs: Mapped[int] = mapped_column(default=0)


class SlaMonthly(db.Model):
    """Finished visits of a stage held to a service level (crm.referrals.sla), per the
    month the visit ended, and how many of them took longer than allowed: judged when the
    visit ended, under the settings of that moment (a rebuild re-judges under today's)."""

    __tablename__ = "report_sla_monthly"

    month: Mapped[date] = mapped_column(primary_key=True)  # the first of the month
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    agency_id: Mapped[int] = mapped_column(primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    visits: Mapped[int] = mapped_column(default=0)
    breached: Mapped[int] = mapped_column(default=0)


class MessageDaily(db.Model):
    """Outbox rows per the day they were written, channel and current status (`sending`
    counts as `queued`; the reason is kept for `suppressed` only), with their SMS segments:
    kept by messaging's MessageStatusChanged, -1 where a row was, +1 where it is now."""

    __tablename__ = "report_message_daily"

    day: Mapped[date] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    reason: Mapped[str] = mapped_column(String(100), primary_key=True)  # '' unless suppressed
    agency_id: Mapped[int] = mapped_column(primary_key=True)
    procedure_code: Mapped[str] = mapped_column(String(64), primary_key=True)  # '': none
    messages: Mapped[int] = mapped_column(default=0)
    segments: Mapped[int] = mapped_column(default=0)
