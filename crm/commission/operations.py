"""Contracts and issuing statements (the ledger's entries are written in ledger.py). The
ledger is written only by adding rows: an entry or an issued statement is never updated
or deleted."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import event, or_, select

from crm.agencies.models import Agency
from crm.commission.events import StatementIssued
from crm.commission.models import (
    CommissionContract,
    CommissionEntry,
    CommissionStatement,
    Refund,
    StatementLine,
)
from crm.core import audit, events
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound, ValidationFailed
from crm.extensions import db


class LedgerImmutable(Conflict):
    code, title = "ledger-immutable", "The commission ledger is never edited"


def month_of(moment: datetime | date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def next_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def agency_for_update(agency_id: int) -> Agency:
    agency = db.session.scalar(select(Agency).where(Agency.id == agency_id).with_for_update())
    if agency is None:
        raise NotFound("No such agency.")
    return agency


# Contracts ------------------------------------------------------------------------------


def _overlapping(agency_id: int, data: dict[str, Any]) -> CommissionContract | None:
    code = data.get("procedure_code")
    start, end = data["effective_from"], data.get("effective_to")
    query = select(CommissionContract).where(
        CommissionContract.agency_id == agency_id,
        CommissionContract.procedure_code.is_(None)
        if code is None
        else CommissionContract.procedure_code == code,
        or_(CommissionContract.effective_to.is_(None), CommissionContract.effective_to >= start),
    )
    if end is not None:
        query = query.where(CommissionContract.effective_from <= end)
    return db.session.scalars(query.order_by(CommissionContract.effective_from)).first()


def create_contract(agency_id: int, data: dict[str, Any], actor: Actor) -> CommissionContract:
    """A new contract; one overlapping another of the same agency and procedure is refused."""
    agency_for_update(agency_id)  # contracts of one agency are added one at a time
    clash = _overlapping(agency_id, data)
    if clash is not None:
        until = clash.effective_to.isoformat() if clash.effective_to else "open-ended"
        scope = f"procedure {clash.procedure_code}" if clash.procedure_code else "every procedure"
        raise ValidationFailed(
            {
                "effective_from": (
                    f"overlaps contract {clash.id} for {scope}, in force from "
                    f"{clash.effective_from.isoformat()} to {until}; end that one first or "
                    "choose dates after it"
                )
            }
        )
    contract = CommissionContract(agency_id=agency_id, created_by_label=actor.label, **data)
    db.session.add(contract)
    db.session.flush()
    audit.record(actor, "commission.contract_created", None, contract_id=contract.id)
    return contract


def contract_in_force(agency_id: int, procedure_code: str, on: date) -> CommissionContract | None:
    """The contract for this procedure on that day, else the agency's general one."""
    query = select(CommissionContract).where(
        CommissionContract.agency_id == agency_id,
        CommissionContract.effective_from <= on,
        or_(CommissionContract.effective_to.is_(None), CommissionContract.effective_to >= on),
        or_(
            CommissionContract.procedure_code == procedure_code,
            CommissionContract.procedure_code.is_(None),
        ),
    )
    found = db.session.scalars(query).all()
    return next((c for c in found if c.procedure_code is not None), found[0] if found else None)


# The ledger -----------------------------------------------------------------------------


def open_period(agency_id: int, now: datetime) -> str:
    """This month, or the first month after it whose statement is not issued yet."""
    issued = set(
        db.session.scalars(
            select(CommissionStatement.month).where(CommissionStatement.agency_id == agency_id)
        )
    )
    period = month_of(now)
    while period in issued:
        period = next_month(period)
    return period


# Statements -----------------------------------------------------------------------------


def issue_statement(agency_id: int, month: str, actor: Actor) -> CommissionStatement:
    """Freezes the month: its entries become the statement's stored lines; entries written
    afterwards land in the next month."""
    agency_for_update(agency_id)
    if month > month_of(utcnow()):
        raise ValidationFailed({"month": "a statement is issued once its month has begun"})
    exists = db.session.scalar(
        select(CommissionStatement.id).where(
            CommissionStatement.agency_id == agency_id, CommissionStatement.month == month
        )
    )
    if exists is not None:
        raise Conflict(f"the statement for {month} was already issued and never changes")
    statement = CommissionStatement(agency_id=agency_id, month=month, issued_by_label=actor.label)
    db.session.add(statement)
    db.session.flush()
    entries = db.session.scalars(
        select(CommissionEntry)
        .where(CommissionEntry.agency_id == agency_id, CommissionEntry.period == month)
        .order_by(CommissionEntry.id)
    )
    for entry in entries:
        db.session.add(
            StatementLine(
                statement_id=statement.id,
                entry_id=entry.id,
                referral_id=entry.referral_id,
                kind=entry.kind,
                amount_minor=entry.amount_minor,
                currency=entry.currency,
                entry_created_at=entry.created_at,
                cause=entry.cause,
            )
        )
    db.session.flush()
    db.session.refresh(statement)
    audit.record(actor, "commission.statement_issued", None, agency_id=agency_id, month=month)
    events.publish(StatementIssued(statement, actor))
    return statement


# Never edited ---------------------------------------------------------------------------


@event.listens_for(CommissionEntry, "before_update")
@event.listens_for(CommissionEntry, "before_delete")
@event.listens_for(CommissionStatement, "before_update")
@event.listens_for(CommissionStatement, "before_delete")
@event.listens_for(StatementLine, "before_update")
@event.listens_for(StatementLine, "before_delete")
@event.listens_for(Refund, "before_update")
@event.listens_for(Refund, "before_delete")
def _refuse_edits(_mapper, _connection, row: Any) -> None:
    raise LedgerImmutable(
        f"{type(row).__name__} {row.id} is part of the commission ledger: add an entry instead"
    )
