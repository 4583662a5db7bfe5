"""Contracts, accruals, payables, reversals and issuing statements. The ledger is written
only by adding rows: an entry or an issued statement is never updated or deleted."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, or_, select
from sqlalchemy.exc import IntegrityError

from crm.agencies.models import Agency
from crm.commission.events import CommissionEntered, StatementIssued
from crm.commission.models import (
    CommissionContract,
    CommissionEntry,
    CommissionStatement,
    StatementLine,
)
from crm.core import audit, events
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound, ValidationFailed
from crm.extensions import db
from crm.plans.models import TreatmentPlan
from crm.referrals.models import Referral

log = logging.getLogger(__name__)


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


def entry_of(referral_id: int, kind: str) -> CommissionEntry | None:
    return db.session.scalar(
        select(CommissionEntry).where(
            CommissionEntry.referral_id == referral_id, CommissionEntry.kind == kind
        )
    )


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


def _write(
    template: CommissionEntry | None, kind: str, amount: int, now: datetime, **fields: Any
) -> CommissionEntry | None:
    """Adds one entry; a second of the same kind for a referral is not written (replay)."""
    values = (
        dict(
            agency_id=template.agency_id,
            referral_id=template.referral_id,
            contract_id=template.contract_id,
            plan_id=template.plan_id,
            currency=template.currency,
        )
        if template is not None
        else {}
    )
    values.update(fields)
    agency_for_update(values["agency_id"])  # serialises with issuing a statement
    if entry_of(values["referral_id"], kind) is not None:
        return None
    entry = CommissionEntry(
        kind=kind,
        amount_minor=amount,
        period=open_period(values["agency_id"], now),
        created_at=now,
        **values,
    )
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:  # the same event, handled at the same moment elsewhere
        return None
    events.publish(CommissionEntered(entry))
    return entry


def _accepted_plan(referral_id: int) -> TreatmentPlan | None:
    return db.session.scalar(
        select(TreatmentPlan).where(
            TreatmentPlan.referral_id == referral_id, TreatmentPlan.status == "accepted"
        )
    )


def percentage_of(total_minor: int, basis_points: int) -> int:
    """Rounded half up to the minor unit, in integers only."""
    return (total_minor * basis_points + 5_000) // 10_000


def accrue(referral: Referral, now: datetime | None = None) -> CommissionEntry | None:
    """Treatment happened: the agency's commission under the contract in force today."""
    now = now or utcnow()
    if referral.agency_id is None:
        return None
    plan = _accepted_plan(referral.id)
    code = plan.procedure_code if plan is not None else referral.procedure.code
    contract = contract_in_force(referral.agency_id, code, now.date())
    if contract is None:
        log.info("no commission contract in force for referral %s", referral.id)
        return None
    if contract.kind == "percentage":
        if plan is None:
            log.warning("referral %s in treatment without an accepted plan", referral.id)
            return None
        amount, currency = (
            percentage_of(plan.total_minor, contract.basis_points or 0),
            plan.currency,
        )
    else:
        amount, currency = contract.amount_minor or 0, contract.currency or ""
    return _write(
        None,
        "accrued",
        amount,
        now,
        agency_id=referral.agency_id,
        referral_id=referral.id,
        contract_id=contract.id,
        plan_id=plan.id if plan is not None else None,
        currency=currency,
    )


def reverse(referral: Referral, now: datetime | None = None) -> CommissionEntry | None:
    """The referral was lost after accrual: a new negative entry cancels the accrual."""
    accrued = entry_of(referral.id, "accrued")
    if accrued is None:
        return None
    return _write(accrued, "reversed", -accrued.amount_minor, now or utcnow())


def make_payable(accrued: CommissionEntry, now: datetime | None = None) -> CommissionEntry | None:
    """The follow-up window is over: the accrued amount becomes payable (unless reversed)."""
    if entry_of(accrued.referral_id, "reversed") is not None:
        return None
    return _write(accrued, "payable", accrued.amount_minor, now or utcnow())


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
def _refuse_edits(_mapper, _connection, row: Any) -> None:
    raise LedgerImmutable(
        f"{type(row).__name__} {row.id} is part of the commission ledger: add an entry instead"
    )
