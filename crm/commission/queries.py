"""Reads, scoped by who asks: an agency sees its own statements (another's is a 404),
managers and admins see all; other staff never see commission (the views say 403)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import or_, select

from crm.agencies.models import Agency
from crm.auth.guards import role_allows
from crm.commission.models import CommissionContract, CommissionEntry, CommissionStatement
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Forbidden, NotFound, ValidationFailed
from crm.extensions import db
from crm.referrals.references import hospital_reference

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
READERS = ("manager",)  # and admin, always
BLANK = (None, None, None)  # a total row's created_at, reference and reason


def check_month(month: str) -> str:
    if not MONTH.match(month):
        raise ValidationFailed({"month": "a month is written YYYY-MM, for example 2026-03"})
    return month


def agency_visible_to(actor: Actor, agency_id: int) -> Agency:
    if actor.is_agency:
        if actor.agency_id != agency_id:
            raise NotFound("No such agency.")
    elif not role_allows(actor, READERS):
        raise Forbidden("Commission is for managers, admins and the agency itself.")
    agency = db.session.get(Agency, agency_id)
    if agency is None:
        raise NotFound("No such agency.")
    return agency


def contracts_of(agency_id: int) -> list[CommissionContract]:
    return list(
        db.session.scalars(
            select(CommissionContract)
            .where(CommissionContract.agency_id == agency_id)
            .order_by(CommissionContract.effective_from, CommissionContract.id)
        )
    )


def _line(row: Any, entry_id: int) -> dict[str, Any]:
    created = getattr(row, "entry_created_at", None) or row.created_at
    return {
        "entry_id": entry_id,
        "referral_id": row.referral_id,
        "reference": hospital_reference(row.referral_id),
        "kind": row.kind,
        "reason": row.reason,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        "created_at": created,
    }


def totals(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency, never converted: accrued, reversed, their net, and payable."""
    by_currency: dict[str, dict[str, Any]] = {}
    for line in lines:
        row = by_currency.setdefault(
            line["currency"],
            {
                "currency": line["currency"],
                "accrued_minor": 0,
                "reversed_minor": 0,
                "payable_minor": 0,
            },
        )
        row[f"{line['kind']}_minor"] += line["amount_minor"]
    for row in by_currency.values():
        row["net_minor"] = row["accrued_minor"] + row["reversed_minor"]
    return [by_currency[c] for c in sorted(by_currency)]


def _report(agency: Agency, month: str) -> dict[str, Any]:
    issued = db.session.scalar(
        select(CommissionStatement).where(
            CommissionStatement.agency_id == agency.id, CommissionStatement.month == month
        )
    )
    if issued is not None:
        lines = [_line(line, line.entry_id) for line in issued.lines]
    else:
        entries = db.session.scalars(
            select(CommissionEntry)
            .where(CommissionEntry.agency_id == agency.id, CommissionEntry.period == month)
            .order_by(CommissionEntry.id)
        )
        lines = [_line(entry, entry.id) for entry in entries]
    return {
        "agency_id": agency.id,
        "agency_name": agency.name,
        "month": month,
        "status": "issued" if issued is not None else "open",
        "issued_at": issued.issued_at if issued is not None else None,
        "issued_by": issued.issued_by_label if issued is not None else None,
        "lines": lines,
        "totals": totals(lines),
    }


def statement(actor: Actor, agency_id: int, month: str) -> dict[str, Any]:
    """The issued statement's stored lines, or the month's entries so far (status open)."""
    check_month(month)
    agency = agency_visible_to(actor, agency_id)
    report = _report(agency, month)
    audit.record(actor, "commission.statement_read", None, agency_id=agency_id, month=month)
    return report


def months_of(agency_id: int, this_month: str, limit: int = 24) -> list[str]:
    """The months with entries or an issued statement, and this month; newest first."""
    written = db.session.scalars(
        select(CommissionEntry.period).where(CommissionEntry.agency_id == agency_id).distinct()
    )
    issued = db.session.scalars(
        select(CommissionStatement.month).where(CommissionStatement.agency_id == agency_id)
    )
    return sorted({this_month, *written, *issued}, reverse=True)[:limit]


def statements(actor: Actor, agency_id: int, this_month: str) -> list[dict[str, Any]]:
    """Each month's statement (lines and totals), newest first, for the pages' overview."""
    agency = agency_visible_to(actor, agency_id)
    reports = [_report(agency, month) for month in months_of(agency_id, this_month)]
    audit.record(actor, "commission.statements_listed", None, agency_id=agency_id)
    return reports


def statement_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The CSV: one row per line, then one total row per currency."""
    header = [
        "row",
        "entry_id",
        "referral_id",
        "kind",
        "currency",
        "amount_minor",
        "created_at",
        "reference",
        "reason",
    ]
    rows: list[list[Any]] = [
        [
            "line",
            line["entry_id"],
            line["referral_id"],
            line["kind"],
            line["currency"],
            line["amount_minor"],
            line["created_at"].isoformat(),
            line["reference"],
            line["reason"],
        ]
        for line in report["lines"]
    ]
    for total in report["totals"]:
        for kind in ("accrued", "reversed", "net", "payable"):
            amount = total[f"{kind}_minor"]
            rows.append([f"total_{kind}", None, None, None, total["currency"], amount, *BLANK])
    return header, rows


def contracts_in_force(on: date) -> dict[int, list[CommissionContract]]:
    """Every agency's contracts in force on that day, by agency."""
    found: dict[int, list[CommissionContract]] = {}
    for contract in db.session.scalars(
        select(CommissionContract)
        .where(
            CommissionContract.effective_from <= on,
            or_(CommissionContract.effective_to.is_(None), CommissionContract.effective_to >= on),
        )
        .order_by(CommissionContract.agency_id, CommissionContract.procedure_code.is_(None))
    ):
        found.setdefault(contract.agency_id, []).append(contract)
    return found


def month_overview(actor: Actor, month: str) -> list[dict[str, Any]]:
    """The month's statement of every agency that is active or has entries in it, with the
    contracts in force today: the managers' page. Other staff never see it."""
    check_month(month)
    if actor.is_agency or not role_allows(actor, READERS):
        raise Forbidden("Commission is for managers, admins and the agency itself.")
    with_entries = select(CommissionEntry.agency_id).where(CommissionEntry.period == month)
    agencies = db.session.scalars(
        select(Agency)
        .where(or_(Agency.active.is_(True), Agency.id.in_(with_entries)))
        .order_by(Agency.name, Agency.id)
    )
    contracts = contracts_in_force(utcnow().date())
    rows = [
        {
            "agency": agency,
            "contracts": contracts.get(agency.id, []),
            "report": _report(agency, month),
        }
        for agency in agencies
    ]
    audit.record(actor, "commission.month_overview", None, month=month)
    return rows
