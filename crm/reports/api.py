"""The reports: JSON by default, the same rows as CSV with `?format=csv`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm.auth.guards import current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.reports import export, queries
from crm.reports.schemas import (
    AgenciesSchema,
    FunnelSchema,
    MessagingSchema,
    ReportArgs,
    SlaSchema,
    TimeInStageSchema,
)

blp = Blueprint("reports", __name__, description="Management reports (JSON or CSV)")

CSV = {"schema": {"type": "string", "description": "the same figures, one header line"}}


def _with_csv(schema: type) -> dict[str, Any]:
    """The 200 answer in both media types (flask-smorest documents only the JSON one)."""
    content = {"application/json": {"schema": schema}, "text/csv": CSV}
    return {
        "responses": {"200": {"description": "JSON, or CSV with ?format=csv", "content": content}}
    }


NO_REVENUE = ("coordinator", "specialist", "manager")  # and admin, always


def _answer(name: str, args: dict[str, Any], rows: Callable) -> Any:
    report = queries.read(current_actor(), name, args)  # audited
    if args["format"] == "csv":
        return export.csv_response(name, *rows(report))
    return report


@blp.get("/reports/funnel")
@staff_only(*NO_REVENUE)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, FunnelSchema)
@blp.doc(**_with_csv(FunnelSchema))
def funnel(args):
    """Referrals reaching each stage, conversion between consecutive stages, reasons lost."""
    return _answer("funnel", args, export.funnel_rows)


@blp.get("/reports/time-in-stage")
@staff_only(*NO_REVENUE)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, TimeInStageSchema)
@blp.doc(**_with_csv(TimeInStageSchema))
def time_in_stage(args):
    """Median and 90th percentile time in each stage, by the month a visit ended."""
    return _answer("time-in-stage", args, export.time_in_stage_rows)


@blp.get("/reports/agencies")
@staff_only("manager")
@blp.arguments(ReportArgs, location="query")
@blp.response(200, AgenciesSchema)
@blp.doc(**_with_csv(AgenciesSchema))
def agencies(args):
    """Per agency: referrals, conversion, accepted-plan value per currency, first response
    (managers and admins: it shows revenue)."""
    return _answer("agencies", args, export.agencies_rows)


@blp.get("/reports/messaging")
@staff_only(*NO_REVENUE)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, MessagingSchema)
@blp.doc(**_with_csv(MessagingSchema))
def messaging(args):
    """Messages queued, sent, delivered, failed, suppressed by reason; opt-outs; SMS segments."""
    return _answer("messaging", args, export.messaging_rows)


@blp.get("/reports/sla")
@staff_only(*NO_REVENUE)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, SlaSchema)
@blp.doc(**_with_csv(SlaSchema))
def sla(args):
    """Per service level (first response, MRI review, plan answer): visits finished, in
    time and late, the share on time, the median; the breaches listed (open ones past due
    first), newest first, at most `limit` of `breaches_total`."""
    return _answer("sla", args, export.sla_rows)
