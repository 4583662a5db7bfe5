"""Commission for managers and admins: each agency's contracts in force and its statement
for a month (status, totals per currency), one statement's lines, issuing it, and the CSV
and PDF. The same queries and operation as the API; specialists and coordinators get the
403 page, as the API answers them 403."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor
from crm.commission import operations, queries, refunds
from crm.commission.api import answer
from crm.commission.ledger import accepted_plan
from crm.commission.models import CommissionContract
from crm.commission.pdf import KINDS, REASONS
from crm.commission.schemas import RefundArgs
from crm.console import clinical_forms as forms
from crm.console.actions import ERROR, attempt, attempt_quietly, flash_problems, in_words
from crm.console.auth import staff_page
from crm.console.clinical_forms import money
from crm.console.views import console
from crm.core.db import utcnow
from crm.core.errors import DomainError
from crm.referrals.models import Referral
from crm.referrals.queries import referral_for

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


# --- refunds on one referral ------------------------------------------------------------


@console.route("/referrals/<int:referral_id>/refunds", methods=["GET", "POST"])
@staff_page(*MANAGERS)
def referral_refunds(referral_id: int):
    """A refund given back to the patient on the accepted plan, in its currency: the
    commission on it is reversed in proportion (crm.commission.refunds), as by the API."""
    actor = current_actor()
    if request.method == "GET":
        return _refunds_page(referral_for(actor, referral_id), {}, {})
    referral = referral_for(actor, referral_id, for_update=True)
    plan = accepted_plan(referral.id)
    if plan is None:
        flash("Not accepted: the referral has no accepted plan, so nothing was paid.", ERROR)
        return _refunds_page(referral, request.form, {}, 409)
    try:
        amount = forms.to_minor(forms.text(request.form, "amount"), plan.currency)
    except ValueError as exc:
        return _refused(referral, {"amount": str(exc)})
    typed = {
        "amount_minor": amount,
        "currency": plan.currency,
        "reason": forms.text(request.form, "reason"),
    }
    args, errors = forms.load(RefundArgs(), typed, RENAMES)
    if errors:
        return _refused(referral, errors)
    result, refused = attempt_quietly(lambda: refunds.record_refund(referral, args, actor))
    if refused is not None:
        return _refused(referral, forms.refusal_errors(refused, "UTC", RENAMES), refused)
    refund, reversals = result
    reversed_total = -sum(entry.amount_minor for entry in reversals)
    flash(
        f"Refund of {forms.money(refund.amount_minor, refund.currency)} recorded; "
        f"commission reversed: {forms.money(reversed_total, refund.currency)}."
    )
    return redirect(url_for("console.referral_refunds", referral_id=referral.id), 303)


RENAMES = {"amount_minor": "amount"}


def _refused(referral: Referral, errors: dict[str, str], refused: DomainError | None = None):
    if errors:
        flash_problems(errors)
    elif refused is not None:
        flash(in_words(refused), ERROR)
    status = refused.status if refused is not None else 422
    return _refunds_page(referral, request.form, errors, status)


def _refunds_page(referral: Referral, values, errors, status: int = 200):
    plan = accepted_plan(referral.id)
    left = plan.total_minor - refunds.refunded_so_far(referral.id) if plan else 0
    return render_template(
        "console/commission/refunds.html",
        referral=referral,
        plan=plan,
        left=left,
        refunds=refunds.refunds_with_reversals(referral.id),
        values=values,
        errors=errors,
    ), status
