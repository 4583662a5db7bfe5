"""The SLA report: for each service level (crm.referrals.sla), the visits of its stage that
finished within the dates, how many in time, how many late, the median; and the breaches
listed, newest first, with the visits open right now that are past due.

The counts come from `report_sla_monthly` (judged when each visit ended) and the median
from `report_stage_duration`: both grow with months x stages x agencies x procedures.
The list comes from the source rows, through two indexes made for it:
`ix_stage_transitions_from_stage_occurred` (from_stage, occurred_at, id) walks the moves
out of a stage newest first in keyset pages (the visit's start is the referral's move
before it, one probe of `ix_stage_transitions_referral`), stopping once the list is full;
and
`ix_referrals_stage_entered_at` finds the referrals in the stage now that entered it before
the deadline.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import aliased

from crm.agencies.models import Agency
from crm.catalogue.models import Procedure
from crm.core.db import utcnow
from crm.extensions import db
from crm.referrals.models import Referral, StageTransition
from crm.referrals.references import hospital_reference
from crm.referrals.sla import ServiceLevel
from crm.reports.models import DIRECT, SlaMonthly, StageDuration
from crm.reports.percentiles import percentile

LIST_LIMIT = 200
BATCH = 400
# the order of ix_stage_transitions_from_stage_occurred, after its from_stage
ORDER = (StageTransition.occurred_at, StageTransition.id)
HOUR = 3600.0


def _month_start(day: date) -> datetime:
    return datetime.combine(day.replace(day=1), time.min, tzinfo=UTC)


def _day_end(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(days=1)


def _rollup_filtered(query: Select, model: Any, args: dict[str, Any]) -> Select:
    if args.get("date_from"):
        query = query.where(model.month >= args["date_from"].replace(day=1))
    if args.get("date_to"):
        query = query.where(model.month <= args["date_to"])
    if args.get("agency_id"):
        query = query.where(model.agency_id == args["agency_id"])
    if args.get("procedure"):
        query = query.where(model.procedure_code == args["procedure"])
    return query


def _referral_filtered(query: Select, args: dict[str, Any]) -> Select:
    if args.get("agency_id"):
        query = query.where(Referral.agency_id == args["agency_id"])
    if args.get("procedure"):
        query = query.where(Procedure.code == args["procedure"])
    return query


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / HOUR, 2)


def _counts(args: dict[str, Any]) -> dict[str, tuple[int, int]]:
    query = select(SlaMonthly.stage, func.sum(SlaMonthly.visits), func.sum(SlaMonthly.breached))
    query = _rollup_filtered(query.group_by(SlaMonthly.stage), SlaMonthly, args)
    return {stage: (int(v), int(b)) for stage, v, b in db.session.execute(query)}


def _histograms(args: dict[str, Any], stages: list[str]) -> dict[str, list[tuple[int, int]]]:
    query = (
        select(StageDuration.stage, StageDuration.bucket, func.sum(StageDuration.visits))
        .where(StageDuration.stage.in_(stages))
        .group_by(StageDuration.stage, StageDuration.bucket)
    )
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for stage, bucket, visits in db.session.execute(_rollup_filtered(query, StageDuration, args)):
        found[stage].append((bucket, int(visits)))
    return found


def _open_past_due(level: ServiceLevel, args: dict[str, Any], now: datetime) -> Select:
    query = select(Referral.id).where(
        Referral.stage == level.stage, Referral.stage_entered_at < now - level.allowed
    )
    if args.get("procedure"):
        query = query.join(Procedure, Procedure.id == Referral.procedure_id)
    return _referral_filtered(query, args)


def _open_breaches(level: ServiceLevel, args: dict[str, Any], now: datetime) -> list[dict]:
    query = _referral_filtered(
        select(
            Referral.id, Referral.agency_id, Agency.name, Procedure.code, Referral.stage_entered_at
        )
        .join(Procedure, Procedure.id == Referral.procedure_id)
        .outerjoin(Agency, Agency.id == Referral.agency_id)
        .where(Referral.stage == level.stage, Referral.stage_entered_at < now - level.allowed)
        .order_by(Referral.stage_entered_at.desc(), Referral.id.desc())
        .limit(LIST_LIMIT),
        args,
    )
    return [
        _breach(level, referral_id, agency_id, agency, code, entered, None, now)
        for referral_id, agency_id, agency, code, entered in db.session.execute(query)
    ]


def _finished_breaches(level: ServiceLevel, args: dict[str, Any], wanted: int) -> list[dict]:
    """Walk the moves out of the stage newest first, each with the move that began the
    visit, keeping the late ones until `wanted` are found."""
    before = aliased(StageTransition)
    entered = (
        select(before.occurred_at)
        .where(
            before.referral_id == StageTransition.referral_id,
            or_(
                before.occurred_at < StageTransition.occurred_at,
                and_(
                    before.occurred_at == StageTransition.occurred_at,
                    before.id < StageTransition.id,
                ),
            ),
        )
        .order_by(before.occurred_at.desc(), before.id.desc())
        .limit(1)
        .correlate(StageTransition)
        .scalar_subquery()
    )
    query = (
        select(
            StageTransition.referral_id,
            Referral.agency_id,
            Agency.name,
            Procedure.code,
            entered,
            StageTransition.occurred_at,
            StageTransition.id,
        )
        .join(Referral, Referral.id == StageTransition.referral_id)
        .join(Procedure, Procedure.id == Referral.procedure_id)
        .outerjoin(Agency, Agency.id == Referral.agency_id)
        .where(StageTransition.from_stage == level.stage)
        .order_by(StageTransition.occurred_at.desc(), StageTransition.id.desc())
    )
    if args.get("date_from"):
        query = query.where(StageTransition.occurred_at >= _month_start(args["date_from"]))
    if args.get("date_to"):
        query = query.where(StageTransition.occurred_at < _day_end(args["date_to"]))
    query = _referral_filtered(query, args)
    found: list[dict] = []
    last: tuple[datetime, int] | None = None
    while len(found) < wanted:
        # Keyset pages in the index's order: each page costs what it returns.
        page = query if last is None else query.where(tuple_(*ORDER) < tuple_(*last))
        rows = db.session.execute(page.limit(BATCH)).all()
        for referral_id, agency_id, agency, code, began, left, _id in rows:
            if began is not None and level.breached(_aware(began), _aware(left)):
                found.append(_breach(level, referral_id, agency_id, agency, code, began, left))
        if len(rows) < BATCH:
            break
        last = (rows[-1][5], rows[-1][6])
    return found[:wanted]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _breach(
    level: ServiceLevel,
    referral_id: int,
    agency_id: int | None,
    agency: str | None,
    code: str,
    entered: datetime,
    left: datetime | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    entered = _aware(entered)
    end = _aware(left) if left is not None else now
    assert end is not None
    over = (end - level.due_at(entered)).total_seconds()
    return {
        "service_level": level.name,
        "stage": str(level.stage),
        "referral_id": referral_id,
        "reference": hospital_reference(referral_id),
        "agency_id": agency_id or DIRECT,
        "agency": agency,
        "procedure": code,
        "entered_at": entered,
        "left_at": _aware(left) if left is not None else None,
        "hours_over": round(over / HOUR, 1),
    }


def sla(args: dict[str, Any], levels: tuple[ServiceLevel, ...]) -> dict[str, Any]:
    now = utcnow()
    counts = _counts(args)
    histograms = _histograms(args, [str(level.stage) for level in levels])
    rows, open_breaches, finished = [], [], []
    total = 0
    for level in levels:
        visits, breached = counts.get(str(level.stage), (0, 0))
        open_count = db.session.scalar(
            select(func.count()).select_from(_open_past_due(level, args, now).subquery())
        )
        rows.append(
            {
                "service_level": level.name,
                "stage": str(level.stage),
                "allowed_hours": round(level.allowed.total_seconds() / HOUR, 2),
                "finished": visits,
                "within": visits - breached,
                "breached": breached,
                "on_time_share": round((visits - breached) / visits, 4) if visits else None,
                "median_hours": _hours(percentile(histograms.get(str(level.stage), []), 0.5)),
                "open_past_due": int(open_count or 0),
            }
        )
        total += breached + int(open_count or 0)
        open_breaches += _open_breaches(level, args, now)
        finished += _finished_breaches(level, args, LIST_LIMIT)
    open_breaches.sort(key=lambda b: (b["entered_at"], b["referral_id"]), reverse=True)
    finished.sort(key=lambda b: (b["left_at"], b["referral_id"]), reverse=True)
    listed = (open_breaches + finished)[:LIST_LIMIT]
    return {"levels": rows, "breaches": listed, "breaches_total": total, "limit": LIST_LIMIT}
