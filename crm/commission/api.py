"""Contracts and refunds (managers and admins) and monthly statements (JSON, or CSV or PDF
with ?format=). An agency reads its own statements; specialists and coordinators never see
commission."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from crm.auth.guards import any_caller, caller_scope, current_actor, staff_only
from crm.commission import operations, queries, refunds
from crm.commission.pdf import render_statement_pdf
from crm.commission.schemas import (
    ContractArgs,
    ContractSchema,
    RefundArgs,
    RefundSchema,
    StatementArgs,
    StatementSchema,
)
from crm.core.blueprint import Blueprint
from crm.core.errors import Forbidden
from crm.core.idempotency import idempotent
from crm.referrals.queries import referral_for
from crm.reports.export import csv_response
from crm.travel.letter import unicode_font

blp = Blueprint("commission", __name__, description="Commission: contracts and statements")

CSV = {"schema": {"type": "string", "description": "the lines, then totals per currency"}}
PDF = {"schema": {"type": "string", "format": "binary", "description": "the statement to keep"}}
WITH_CSV = {
    "responses": {
        "200": {
            "description": "JSON, or CSV with ?format=csv, or PDF with ?format=pdf",
            "content": {
                "application/json": {"schema": StatementSchema},
                "text/csv": CSV,
                "application/pdf": PDF,
            },
        }
    }
}


def statement_pdf(report: dict[str, Any]) -> Response:
    """The statement as a PDF download (the console and the agency panel serve it too)."""
    body = render_statement_pdf(
        report, current_app.config["CRM"]["HOSPITAL_NAME"], font=unicode_font()
    )
    name = f"statement-{report['agency_id']}-{report['month']}"
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )


def answer(agency_id: int, month: str, fmt: str) -> Any:
    report = queries.statement(current_actor(), agency_id, month)
    if fmt == "csv":
        return csv_response(f"statement-{agency_id}-{month}", *queries.statement_rows(report))
    if fmt == "pdf":
        return statement_pdf(report)
    return report


def _answer(agency_id: int, month: str, args: dict[str, Any]) -> Any:
    return answer(agency_id, month, args["format"])


@blp.post("/agencies/<int:agency_id>/contracts")
@idempotent(caller_scope)
@staff_only("manager")
@blp.arguments(ContractArgs)
@blp.response(201, ContractSchema)
def create_contract(args, agency_id: int):
    """A new contract; one overlapping another of the same agency and procedure is a 422."""
    return operations.create_contract(agency_id, args, current_actor())


@blp.get("/agencies/<int:agency_id>/contracts")
@staff_only("manager")
@blp.response(200, ContractSchema(many=True))
def list_contracts(agency_id: int):
    queries.agency_visible_to(current_actor(), agency_id)
    return queries.contracts_of(agency_id)


@blp.get("/agencies/<int:agency_id>/statements/<month>")
@any_caller
@blp.arguments(StatementArgs, location="query")
@blp.response(200, StatementSchema)
@blp.doc(**WITH_CSV)
def agency_statement(args, agency_id: int, month: str):
    """The month's statement: stored lines once issued, the entries so far until then."""
    return _answer(agency_id, month, args)


@blp.get("/statements/<month>")
@any_caller
@blp.arguments(StatementArgs, location="query")
@blp.response(200, StatementSchema)
@blp.doc(**WITH_CSV)
def own_statement(args, month: str):
    """The calling agency's own statement for the month (staff: the agency's address)."""
    actor = current_actor()
    if not actor.is_agency:
        raise Forbidden("Staff read /agencies/{id}/statements/{month}; this one is an agency's.")
    return _answer(actor.agency_id or 0, month, args)


@blp.post("/agencies/<int:agency_id>/statements/<month>/issue")
@idempotent(caller_scope)
@staff_only("manager")
@blp.response(201, StatementSchema)
def issue_statement(agency_id: int, month: str):
    """Issue (freeze) the month's statement; later entries land in the next month."""
    queries.check_month(month)
    queries.agency_visible_to(current_actor(), agency_id)
    operations.issue_statement(agency_id, month, current_actor())
    return queries.statement(current_actor(), agency_id, month)


@blp.post("/referrals/<int:referral_id>/refunds")
@idempotent(caller_scope)
@staff_only("manager")
@blp.arguments(RefundArgs)
@blp.response(201, RefundSchema)
def record_refund(args, referral_id: int):
    """A refund on the accepted plan (full or partial, in the plan's currency): the
    commission on it is reversed in proportion, rounded half up to the minor unit."""
    actor = current_actor()
    referral = referral_for(actor, referral_id)
    refund, _ = refunds.record_refund(referral, args, actor)
    return refunds.view_of(refund)


@blp.get("/referrals/<int:referral_id>/refunds")
@staff_only("manager")
@blp.response(200, RefundSchema(many=True))
def list_refunds(referral_id: int):
    """The referral's refunds, each with the commission it reversed."""
    referral = referral_for(current_actor(), referral_id)
    return refunds.refunds_with_reversals(referral.id)
