"""Contracts, the ledger and the statements. Ledger entries and issued statements are
never edited: ORM events refuse UPDATE and DELETE (see operations.py)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import utcnow
from crm.extensions import db

CONTRACT_KINDS = ("percentage", "fixed")
ENTRY_KINDS = ("accrued", "payable", "reversed")


class CommissionContract(db.Model):
    """A percentage of the accepted plan's total (basis points) or a fixed amount per
    procedure, in force from `effective_from` to `effective_to` (inclusive; none: open)."""

    __tablename__ = "commission_contracts"
    __table_args__ = (
        CheckConstraint("kind IN ('percentage','fixed')", name="kind"),
        CheckConstraint(
            "(kind = 'percentage' AND basis_points BETWEEN 1 AND 10000 AND amount_minor IS NULL"
            " AND currency IS NULL) OR (kind = 'fixed' AND basis_points IS NULL"
            " AND amount_minor > 0 AND length(currency) = 3)",
            name="terms",
        ),
        CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from", name="effective_dates"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(12))
    basis_points: Mapped[int | None]
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    procedure_code: Mapped[str | None] = mapped_column(String(64))
    effective_from: Mapped[date]
    effective_to: Mapped[date | None]
    created_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommissionEntry(db.Model):
    """One line of the ledger. `period` (YYYY-MM) is the statement month it lands in: the
    month it was written, or the next open one when that month's statement was issued.

    `cause` says why the entry exists and is unique, so a replayed event never writes twice:
    `treatment:<referral>` and `reattributed:<key>:accrued` accrue; `payable:<accrual>`;
    `refund:<refund>:<accrual>`, `cancelled:<accrual>` and `reattributed:<key>:<accrual>`
    reverse. A payable or reversed entry names the accrual it settles (`accrual_id`)."""

    __tablename__ = "commission_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('accrued','payable','reversed')", name="kind"),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint(
            "(kind = 'reversed' AND amount_minor <= 0)"
            " OR (kind <> 'reversed' AND amount_minor >= 0)",
            name="sign",
        ),
        CheckConstraint("(kind = 'accrued') = (accrual_id IS NULL)", name="accrual"),
        UniqueConstraint("cause"),  # a replayed event never writes twice
        Index("ix_commission_entries_referral_id", "referral_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="RESTRICT"))
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("commission_contracts.id", ondelete="RESTRICT")
    )
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("treatment_plans.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(10))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(7), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    accrual_id: Mapped[int | None] = mapped_column(
        ForeignKey("commission_entries.id", ondelete="RESTRICT"), index=True
    )
    cause: Mapped[str] = mapped_column(String(120))

    @property
    def reason(self) -> str:
        """The cause's first word: treatment, payable, refund, cancelled, reattributed."""
        return self.cause.split(":", 1)[0]


class Refund(db.Model):
    """Money the hospital gave back to the patient on the referral's accepted plan, in the
    plan's currency: the commission on it is reversed in proportion. Never edited."""

    __tablename__ = "commission_refunds"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount"),
        CheckConstraint("length(currency) = 3", name="currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="RESTRICT"), index=True
    )
    plan_id: Mapped[int] = mapped_column(ForeignKey("treatment_plans.id", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500))
    recorded_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommissionStatement(db.Model):
    """An issued monthly statement: its lines are stored and never change."""

    __tablename__ = "commission_statements"
    __table_args__ = (UniqueConstraint("agency_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    month: Mapped[str] = mapped_column(String(7))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_label: Mapped[str] = mapped_column(String(200))

    lines: Mapped[list[StatementLine]] = relationship(
        order_by="StatementLine.id", lazy="selectin", passive_deletes=True
    )


class StatementLine(db.Model):
    __tablename__ = "commission_statement_lines"
    __table_args__ = (UniqueConstraint("statement_id", "entry_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("commission_statements.id", ondelete="RESTRICT"), index=True
    )
    entry_id: Mapped[int] = mapped_column(ForeignKey("commission_entries.id", ondelete="RESTRICT"))
    referral_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(10))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    entry_created_at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(120))

    @property
    def reason(self) -> str:
        return self.cause.split(":", 1)[0]
