"""The reports, read from the rollups; the SLA report's breach list from the source rows
(crm/reports/sla.py)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select

from crm.agencies.models import Agency
from crm.catalogue.queries import active_procedures
from crm.core import audit
from crm.core.actors import Actor
from crm.extensions import db
from crm.messaging.models import CHANNELS
from crm.referrals.sla import service_levels
from crm.referrals.stages import PIPELINE, LostReason, Stage
from crm.reports import sla as sla_report
from crm.reports.models import (
    DIRECT,
    MessageDaily,
    OptOutDaily,
    PlanDaily,
    StageDaily,
    StageDuration,
)
from crm.reports.percentiles import STEPS_PER_OCTAVE, percentile

APPROXIMATION = (
    "percentiles from quarter-octave histograms of finished visits, by the month the visit "
    "ended: each figure is within about 9% of the exact nearest-rank value"
)
HOUR = 3600.0


def _filtered(query: Select, model: Any, args: dict[str, Any], day_column: str = "day") -> Select:
    column = getattr(model, day_column)
    if args.get("date_from"):
        start = args["date_from"]
        query = query.where(column >= (start.replace(day=1) if day_column == "month" else start))
    if args.get("date_to"):
        query = query.where(column <= args["date_to"])
    if args.get("agency_id"):
        query = query.where(model.agency_id == args["agency_id"])
    if args.get("procedure") and hasattr(model, "procedure_code"):
        query = query.where(model.procedure_code == args["procedure"])
    return query


def _reached(args: dict[str, Any]) -> dict[str, int]:
    query = select(StageDaily.stage, func.sum(StageDaily.entered)).group_by(StageDaily.stage)
    return {stage: int(n) for stage, n in db.session.execute(_filtered(query, StageDaily, args))}


def funnel(args: dict[str, Any]) -> dict[str, Any]:
    """Referrals reaching each pipeline stage for the first time within the dates (an event
    count, not a cohort), conversion from the stage before, and the reasons lost."""
    reached = _reached(args)
    stages, before = [], None
    for stage in PIPELINE:
        count = reached.get(stage, 0)
        conversion = None if before is None else (round(count / before, 4) if before else None)
        stages.append({"stage": str(stage), "reached": count, "conversion": conversion})
        before = count
    query = (
        select(StageDaily.reason, func.sum(StageDaily.entered))
        .where(StageDaily.stage == Stage.LOST)
        .group_by(StageDaily.reason)
    )
    lost = {reason: int(n) for reason, n in db.session.execute(_filtered(query, StageDaily, args))}
    return {
        "stages": stages,
        "lost": [{"reason": str(r), "referrals": lost.get(r, 0)} for r in LostReason],
    }


def _histograms(args: dict[str, Any], *group: Any) -> dict[tuple, list[tuple[int, int]]]:
    query = select(*group, StageDuration.bucket, func.sum(StageDuration.visits)).group_by(
        *group, StageDuration.bucket
    )
    found: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for *key, bucket, visits in db.session.execute(_filtered(query, StageDuration, args, "month")):
        found[tuple(key)].append((bucket, int(visits)))
    return found


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / HOUR, 2)


def time_in_stage(args: dict[str, Any]) -> dict[str, Any]:
    histograms = _histograms(args, StageDuration.month, StageDuration.stage)
    order = {str(stage): i for i, stage in enumerate((*PIPELINE, Stage.LOST, Stage.ON_HOLD))}
    rows = []
    for (month, stage), histogram in sorted(
        histograms.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99))
    ):
        rows.append(
            {
                "month": month.strftime("%Y-%m"),
                "stage": stage,
                "visits": sum(n for _, n in histogram),
                "median_hours": _hours(percentile(histogram, 0.5)),
                "p90_hours": _hours(percentile(histogram, 0.9)),
            }
        )
    assert STEPS_PER_OCTAVE == 4  # APPROXIMATION says quarter-octave
    return {"approximation": APPROXIMATION, "rows": rows}


def agencies(args: dict[str, Any]) -> dict[str, Any]:
    """Per agency (0: direct): referrals submitted, how many reached plan_accepted and
    completed within the dates, the accepted plans' value per currency and the median time
    to the first move out of enquiry (the first response)."""
    query = (
        select(StageDaily.agency_id, StageDaily.stage, func.sum(StageDaily.entered))
        .where(StageDaily.stage.in_([Stage.ENQUIRY, Stage.PLAN_ACCEPTED, Stage.COMPLETED]))
        .group_by(StageDaily.agency_id, StageDaily.stage)
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for agency_id, stage, n in db.session.execute(_filtered(query, StageDaily, args)):
        counts[agency_id][stage] = int(n)
    money = select(PlanDaily.agency_id, PlanDaily.currency, func.sum(PlanDaily.value_minor))
    money = money.group_by(PlanDaily.agency_id, PlanDaily.currency)
    values: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for agency_id, currency, total in db.session.execute(_filtered(money, PlanDaily, args)):
        values[agency_id].append({"currency": currency, "amount_minor": int(total)})
        counts.setdefault(agency_id, {})
    response = _histograms({**args}, StageDuration.agency_id, StageDuration.stage)
    rows = []
    for agency_id in sorted(counts):
        submitted = counts[agency_id].get(Stage.ENQUIRY, 0)
        accepted = counts[agency_id].get(Stage.PLAN_ACCEPTED, 0)
        completed = counts[agency_id].get(Stage.COMPLETED, 0)
        first = response.get((agency_id, str(Stage.ENQUIRY)), [])
        rows.append(
            {
                "agency_id": agency_id,
                "referrals": submitted,
                "plan_accepted": accepted,
                "completed": completed,
                "conversion_plan_accepted": round(accepted / submitted, 4) if submitted else None,
                "conversion_completed": round(completed / submitted, 4) if submitted else None,
                "accepted_value": sorted(values[agency_id], key=lambda m: m["currency"]),
                "first_response_median_hours": _hours(percentile(first, 0.5)),
            }
        )
    return {"agencies": rows}


def messaging(args: dict[str, Any]) -> dict[str, Any]:
    """Per channel, the messages written within the dates by their status now, read from
    `report_message_daily` (kept by MessageStatusChanged); opt-outs from their rollup."""
    query = select(
        MessageDaily.channel,
        MessageDaily.status,
        MessageDaily.reason,
        func.sum(MessageDaily.messages),
        func.sum(MessageDaily.segments),
    ).group_by(MessageDaily.channel, MessageDaily.status, MessageDaily.reason)
    channels = {c: _empty_channel(c) for c in CHANNELS}
    suppressed: dict[str, int] = defaultdict(int)
    for channel, status, reason, n, segments in db.session.execute(
        _filtered(query, MessageDaily, args)
    ):
        n = int(n)
        if channel not in channels or not n:
            continue
        row = channels[channel]
        bucket = {"undelivered": "failed", "sending": "queued"}.get(status, status)
        row[bucket] += n
        if status in {"sent", "delivered", "undelivered"}:
            row["sent"] += n if status != "sent" else 0
        if channel == "sms" and status in {"sent", "delivered", "undelivered"}:
            row["sms_segments"] += int(segments)
        if status == "suppressed":
            suppressed[reason or "unknown"] += n
    opt_outs = select(OptOutDaily.channel, func.sum(OptOutDaily.opt_outs)).group_by(
        OptOutDaily.channel
    )
    for channel, n in db.session.execute(_filtered(opt_outs, OptOutDaily, args)):
        if channel in channels:
            channels[channel]["opt_outs"] = int(n)
    return {
        "channels": list(channels.values()),
        "suppressed": [{"reason": r, "messages": n} for r, n in sorted(suppressed.items())],
    }


def _empty_channel(channel: str) -> dict[str, Any]:
    keys = ("queued", "sent", "delivered", "failed", "suppressed", "cancelled")
    return {"channel": channel, **dict.fromkeys(keys, 0), "sms_segments": 0, "opt_outs": 0}


def sla(args: dict[str, Any]) -> dict[str, Any]:
    """Each service level's finished visits, in time and late, and the breaches listed
    (crm/reports/sla.py), under the settings in force."""
    return sla_report.sla(args, service_levels(current_app.config["CRM"]))


READERS = {
    "funnel": funnel,
    "time-in-stage": time_in_stage,
    "agencies": agencies,
    "messaging": messaging,
    "sla": sla,
}


def read(actor: Actor, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """One report, audited with its filters (the API and the console both read here)."""
    filters = {k: str(v) for k, v in args.items() if v not in (None, "") and k != "format"}
    audit.record(actor, "report.read", report=name, format=args.get("format", "json"), **filters)
    return READERS[name](args)


def filter_choices() -> dict[str, Any]:
    """What a report's filters offer: the agencies (by name) and the catalogue's active
    procedures; `agency_names` names a report's agency ids (0: direct)."""
    agencies = db.session.execute(select(Agency.id, Agency.name).order_by(Agency.name)).all()
    names = {DIRECT: "Direct (no agency)", **{agency_id: name for agency_id, name in agencies}}
    return {
        "agencies": [(agency_id, name) for agency_id, name in agencies],
        "procedures": [(p.code, p.name) for p in active_procedures()],
        "agency_names": names,
    }
