"""CSV for every report: RFC 4180 quoting (the csv module) and no formula injection: a
cell that a spreadsheet would run (starting with = + - @, or a tab or carriage return) is
prefixed with a single quote. Numbers are written as numbers, so -3 stays -3."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


def csv_response(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    return Response(
        to_csv(header, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def funnel_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows = [["stage", s["stage"], s["reached"], s["conversion"]] for s in report["stages"]]
    rows += [["lost_reason", r["reason"], r["referrals"], None] for r in report["lost"]]
    return ["kind", "name", "referrals", "conversion"], rows


def time_in_stage_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["month", "stage", "visits", "median_hours", "p90_hours"]
    return header, [[r[h] for h in header] for r in report["rows"]]


def agencies_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = [
        "agency_id",
        "referrals",
        "plan_accepted",
        "completed",
        "conversion_plan_accepted",
        "conversion_completed",
        "first_response_median_hours",
        "currency",
        "accepted_value_minor",
    ]
    rows = []
    for agency in report["agencies"]:
        common = [agency[h] for h in header[:7]]
        for money in agency["accepted_value"] or [{"currency": None, "amount_minor": None}]:
            rows.append([*common, money["currency"], money["amount_minor"]])
    return header, rows


def messaging_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["channel", "queued", "sent", "delivered", "failed", "suppressed", "cancelled"]
    header += ["sms_segments", "opt_outs"]
    rows = [[c[h] for h in header] for c in report["channels"]]
    rows += [
        [f"suppressed:{s['reason']}", *[None] * 4, s["messages"], None, None, None]
        for s in report["suppressed"]
    ]
    return header, rows


SLA_LEVEL = ["finished", "within", "breached", "on_time_share", "median_hours"]
SLA_LEVEL += ["open_past_due", "allowed_hours"]
SLA_BREACH = ["reference", "agency_id", "agency", "procedure", "entered_at", "left_at"]
SLA_BREACH += ["hours_over"]


def sla_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One line per service level (kind `level`), then one per breach listed (kind
    `breach`; `left_at` empty: still waiting)."""
    header = ["kind", "service_level", *SLA_LEVEL, *SLA_BREACH]
    rows = [
        ["level", level["service_level"], *[level[h] for h in SLA_LEVEL], *[None] * 7]
        for level in report["levels"]
    ]
    for breach in report["breaches"]:
        cells = [_iso(breach[h]) for h in SLA_BREACH]
        rows.append(["breach", breach["service_level"], *[None] * 7, *cells])
    return header, rows


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
