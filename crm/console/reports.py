"""The reports in the console: an index, one page per report (filters, chart, table of
figures) and a "Download CSV" link to the same figures under the console's session.

Each page reads its report through `crm.reports.queries.read` (audited, as the API is) and
is open to the same roles as its API endpoint: the agencies report (it shows revenue) to
managers and admins only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from babel.numbers import format_currency, get_currency_precision
from flask import render_template, request
from marshmallow import ValidationError

from crm.auth.guards import current_actor, role_allows
from crm.console.auth import staff_page
from crm.console.referral import stage_label
from crm.console.views import console
from crm.core.http import keep_when_refused
from crm.reports import charts, export, queries
from crm.reports.api import NO_REVENUE
from crm.reports.schemas import ReportArgs


@dataclass(frozen=True)
class ReportPage:
    name: str  # the API's name: /api/v1/reports/<name>
    title: str
    summary: str
    roles: tuple[str, ...]
    rows: Callable[[dict[str, Any]], tuple[list[str], list[list[Any]]]]

    @property
    def endpoint(self) -> str:
        return "report_" + self.name.replace("-", "_")


PAGES = (
    ReportPage(
        "funnel",
        "Conversion funnel",
        "Referrals reaching each stage, the conversion from the stage before, reasons lost.",
        NO_REVENUE,
        export.funnel_rows,
    ),
    ReportPage(
        "time-in-stage",
        "Time in stage",
        "Median and 90th percentile hours spent in each stage, by the month a visit ended.",
        NO_REVENUE,
        export.time_in_stage_rows,
    ),
    ReportPage(
        "agencies",
        "Agency performance",
        "Per agency: referrals, conversion, accepted-plan value and first response.",
        ("manager",),
        export.agencies_rows,
    ),
    ReportPage(
        "messaging",
        "Messaging",
        "Messages queued, sent, delivered, failed and suppressed per channel; opt-outs.",
        NO_REVENUE,
        export.messaging_rows,
    ),
    ReportPage(
        "sla",
        "Service levels (SLA)",
        "First response, MRI review and plan answer: in time, late, and the breaches listed.",
        NO_REVENUE,
        export.sla_rows,
    ),
)
BY_NAME = {page.name: page for page in PAGES}


@console.get("/reports")
@staff_page(*NO_REVENUE)
def reports():
    actor = current_actor()
    shown = [page for page in PAGES if role_allows(actor, page.roles)]
    commission = role_allows(actor, ("manager",))  # the commission page (console/commission.py)
    return render_template("console/reports/index.html", pages=shown, commission=commission)


def _args() -> dict[str, Any]:
    """The filters as the API takes them (empty inputs left out); raises ValidationError."""
    given = {k: v.strip() for k, v in request.args.items() if k != "format" and v.strip()}
    return ReportArgs().load(given)


def _page(page: ReportPage):
    choices = queries.filter_choices()
    try:
        args = _args()
    except ValidationError as refused:
        keep_when_refused()
        errors = _in_words(refused.normalized_messages())
        return _render(page, choices, None, errors=errors), 422
    report = queries.read(current_actor(), page.name, args)
    return _render(page, choices, report, args=args)


def _render(page: ReportPage, choices: dict[str, Any], report: Any, **context: Any):
    chart = draw(page.name, report, choices) if report is not None else None
    return render_template(
        f"console/reports/{page.name}.html",
        page=page,
        pages=PAGES,
        report=report,
        chart=chart,
        choices=choices,
        form=request.args,
        csv_query=request.query_string.decode(),
        **context,
    )


LABELS = {"from": "From", "to": "To", "agency_id": "Agency", "procedure": "Procedure"}


def _in_words(messages: dict[str, Any]) -> list[str]:
    words = []
    for field, problems in messages.items():
        text = problems if isinstance(problems, str) else "; ".join(map(str, problems))
        words.append(f"{LABELS.get(field, field)}: {text}")
    return words


def _csv(page: ReportPage):
    try:
        args = {**_args(), "format": "csv"}
    except ValidationError as refused:
        keep_when_refused()
        return "; ".join(_in_words(refused.normalized_messages())), 422
    report = queries.read(current_actor(), page.name, args)
    return export.csv_response(page.name, *page.rows(report))


def _register(page: ReportPage) -> None:
    def view():
        return _page(page)

    def download():
        return _csv(page)

    console.add_url_rule(
        f"/reports/{page.name}", page.endpoint, staff_page(*page.roles)(view), methods=["GET"]
    )
    console.add_url_rule(
        f"/reports/{page.name}.csv",
        page.endpoint + "_csv",
        staff_page(*page.roles)(download),
        methods=["GET"],
    )


for _page_def in PAGES:
    _register(_page_def)


LEVEL_LABELS = {
    "first_response": "First response",
    "mri_review": "MRI review",
    "plan_answer": "Plan answer",
}


@console.app_template_filter("service_level")
def service_level_label(name: str) -> str:
    return LEVEL_LABELS.get(name, name.replace("_", " ").capitalize())


def _visits(n: int) -> str:
    return f"({n} visit{'' if n == 1 else 's'})"


def _short(label: str, most: int = 22) -> str:
    """A chart's label cut to fit beside its bar (the table has it whole)."""
    return label if len(label) <= most else label[: most - 1] + "\u2026"


@console.app_template_filter("report_share")
def report_share(value: float | None) -> str:
    """0.4567 -> `45.7%`; None (nothing to divide by) -> a dash."""
    return "\u2013" if value is None else f"{value:.1%}"


@console.app_template_filter("report_money")
def report_money(money: dict[str, Any]) -> str:
    """{"currency": "EUR", "amount_minor": 710000} -> `€7,100.00`."""
    digits = get_currency_precision(money["currency"])
    return format_currency(money["amount_minor"] / 10**digits, money["currency"], locale="en")


# --- charts ------------------------------------------------------------------------------


def draw(name: str, report: dict[str, Any], choices: dict[str, Any]) -> str:
    """The chart of a report, as inline SVG (crm/reports/charts.py)."""
    if name == "funnel":
        return charts.funnel_chart(report, label=stage_label)
    if name == "time-in-stage":
        rows = report["rows"]
        latest = rows[-1]["month"] if rows else None
        bars = [
            (stage_label(r["stage"]), r["median_hours"], _visits(r["visits"]))
            for r in rows
            if r["month"] == latest
        ]
        title = f"Median hours in each stage, visits ended in {latest or 'no month'}"
        return charts.bar_chart(title, bars, unit="h", chart_id="time")
    if name == "agencies":
        names = choices["agency_names"]
        bars = [
            (
                _short(names.get(a["agency_id"], f"Agency {a['agency_id']}")),
                a["referrals"],
                f"({a['plan_accepted']} accepted, {a['completed']} completed)",
            )
            for a in report["agencies"]
        ]
        return charts.bar_chart("Referrals per agency", bars, chart_id="agencies")
    if name == "messaging":
        bars = []
        for row in report["channels"]:
            for status in ("queued", "sent", "delivered", "failed", "suppressed"):
                bars.append((f"{row['channel'].upper()} {status}", row[status]))
        return charts.bar_chart("Messages per channel and status", bars, chart_id="messaging")
    bars = [
        (
            service_level_label(level["service_level"]),
            round(100 * level["on_time_share"], 1) if level["on_time_share"] is not None else 0,
            f"({level['within']} of {level['finished']} in time)",
        )
        for level in report["levels"]
    ]
    return charts.bar_chart("Share of visits finished in time", bars, unit="%", chart_id="sla")
