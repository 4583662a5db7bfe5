"""Commission for managers and admins: each agency's contracts in force and its statement
for a month (status, totals per currency), one statement's lines, issuing it, and the CSV
and PDF. The same queries and operation as the API; specialists and coordinators get the
403 page, as the API answers them 403."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from crm.auth.guards import current_actor
from crm.commission import operations, queries
from crm.commission.api import answer
from crm.commission.models import CommissionContract
from crm.commission.pdf import KINDS, REASONS
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.clinical_forms import money
from crm.console.views import console
from crm.core.db import utcnow

MANAGERS = ("manager",)  # and admins, always


def terms(contract: CommissionContract) -> str:
    """`10% of the accepted plan` or `€400.00 per procedure`, then its scope and dates."""
    if contract.kind == "percentage":
        what = f"{(contract.basis_points or 0) / 100:g}% of the accepted plan"
    else:
        what = f"{money(contract.amount_minor or 0, contract.currency or '')} per procedure"
    scope = contract.procedure_code or "every procedure"
    until = contract.effective_to.isoformat() if contract.effective_to else "open-ended"
    return f"{what} ({scope}), from {contract.effective_from.isoformat()} to {until}"


def _month() -> str:
    chosen = request.args.get("month", "").strip() or operations.month_of(utcnow())
    return queries.check_month(chosen)


@console.get("/commission")
@staff_page(*MANAGERS)
def commission():
    month = _month()
    rows = queries.month_overview(current_actor(), month)
    context: dict[str, Any] = {
        "month": month,
        "previous": _shift(month, -1),
        "following": _shift(month, 1),
        "rows": rows,
        "terms": terms,
        "can_issue": month <= operations.month_of(utcnow()),
    }
    return render_template("console/commission/index.html", **context)


def _shift(month: str, by: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@console.get("/commission/<int:agency_id>/<month>")
@staff_page(*MANAGERS)
def commission_statement(agency_id: int, month: str):
    report = queries.statement(current_actor(), agency_id, month)
    return render_template(
        "console/commission/statement.html",
        report=report,
        kinds=KINDS,
        reasons=REASONS,
        contracts=queries.contracts_of(agency_id),
        terms=terms,
        can_issue=month <= operations.month_of(utcnow()),
    )


@console.post("/commission/<int:agency_id>/<month>/issue")
@staff_page(*MANAGERS)
def commission_issue(agency_id: int, month: str):
    queries.check_month(month)
    queries.agency_visible_to(current_actor(), agency_id)
    attempt(
        lambda: operations.issue_statement(agency_id, month, current_actor()),
        done=f"The statement for {month} is issued: it will not change again.",
    )
    back = request.form.get("back")
    if back == "statement":
        return redirect(
            url_for("console.commission_statement", agency_id=agency_id, month=month), 303
        )
    return redirect(url_for("console.commission", month=month), 303)


@console.get("/commission/<int:agency_id>/<month>.csv")
@staff_page(*MANAGERS)
def commission_csv(agency_id: int, month: str):
    return answer(agency_id, month, "csv")


@console.get("/commission/<int:agency_id>/<month>.pdf")
@staff_page(*MANAGERS)
def commission_pdf(agency_id: int, month: str):
    return answer(agency_id, month, "pdf")
