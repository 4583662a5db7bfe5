"""The agency's commission statements: each month (issued, or a draft still open) with its
totals per currency, one month's lines, and the same statement as CSV or PDF.

The agency is the signed-in user's own (its Actor): there is no agency in the address, and
the queries are the API's, so another agency's statement cannot be reached from here.
"""

from __future__ import annotations

from flask import render_template

from crm.auth.guards import current_actor
from crm.commission import queries
from crm.commission.api import answer
from crm.commission.operations import month_of
from crm.commission.pdf import KINDS, REASONS
from crm.core.db import utcnow
from crm.panel.auth import agency_page
from crm.panel.views import panel


def _agency_id() -> int:
    return current_actor().agency_id or 0


@panel.get("/statements")
@agency_page
def statements():
    months = queries.statements(current_actor(), _agency_id(), month_of(utcnow()))
    return render_template("panel/statements.html", months=months)


@panel.get("/statements/<month>")
@agency_page
def statement(month: str):
    report = queries.statement(current_actor(), _agency_id(), month)
    return render_template("panel/statement.html", report=report, kinds=KINDS, reasons=REASONS)


@panel.get("/statements/<month>.csv")
@agency_page
def statement_csv(month: str):
    return answer(_agency_id(), month, "csv")


@panel.get("/statements/<month>.pdf")
@agency_page
def statement_pdf(month: str):
    return answer(_agency_id(), month, "pdf")
