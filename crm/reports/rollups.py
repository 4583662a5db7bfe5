"""Keeping the rollups: one increment per event, and a rebuild from the source rows.

Increments are single `INSERT ... ON CONFLICT DO UPDATE SET n = n + k` statements, so two
transactions counting the same cell never lose an update (PostgreSQL takes the row lock
on conflict; SQLite has the same upsert). The rebuild recounts with the very functions the
increments use (`bucket_of`, the first-reach rule), so both ways agree by construction,
and a test holds them to it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

from sqlalchemy import Insert, Table, bindparam, delete, func, insert, inspect, select
from sqlalchemy import column as sa_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from crm.catalogue.models import Procedure
from crm.extensions import db
from crm.messaging.events import StatusChange
from crm.messaging.models import OutboxMessage
from crm.plans.models import TreatmentPlan
from crm.referrals.models import Referral, StageTransition
from crm.referrals.sla import ServiceLevel
from crm.reports.models import (
    DIRECT,
    MessageDaily,
    OptOutDaily,
    PlanDaily,
    SlaMonthly,
    StageDaily,
    StageDuration,
)
from crm.reports.percentiles import bucket_of

ROLLUPS = (StageDaily, StageDuration, PlanDaily, OptOutDaily, SlaMonthly, MessageDaily)


@functools.cache
def _sqlite_upsert(model: type, measures: tuple[str, ...]) -> Insert:
    """SQLite: `INSERT ... ON CONFLICT (key) DO UPDATE SET m = m + excluded.m`, built once
    a process; the cells come as parameters (one row each)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    statement = sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=[column.name for column in table.primary_key.columns],
        set_={name: table.c[name] + statement.excluded[name] for name in measures},
    )


def _upsert(model: type, key: Mapping[str, object], increments: Mapping[str, int]) -> None:
    _upsert_many(model, [{**key, **increments}], tuple(increments))


def _upsert_many(model: type, rows: list[dict[str, object]], measures: Sequence[str]) -> None:
    """Many cells in one statement (PostgreSQL: `_upsert_arrays`), in key order (two
    writers never wait on each other in a circle); each key appears once."""
    if not rows:
        return
    table: Table = model.__table__  # type: ignore[attr-defined]
    keys = [column.name for column in table.primary_key.columns]
    rows = sorted(rows, key=lambda row: tuple(row[k] for k in keys))
    if db.session.get_bind().dialect.name == "postgresql":
        columns = (*keys, *measures)
        arrays = {name: [row[name] for row in rows] for name in columns}
        db.session.execute(_upsert_arrays(table, tuple(measures)), arrays)
        return
    db.session.execute(_sqlite_upsert(model, tuple(measures)), rows)


@functools.cache
def _upsert_arrays(table: Table, measures: tuple[str, ...]):
    """PostgreSQL: the cells as one array per column, joined with unnest() in their order: one
    constant statement, built and compiled once (an INSERT of many VALUES rows is never
    taken from SQLAlchemy's statement cache: it was compiled again at every call)."""
    keys = [column.name for column in table.primary_key.columns]
    columns = [table.c[name] for name in (*keys, *measures)]
    cells = (
        func.unnest(*(bindparam(c.name, type_=ARRAY(c.type)) for c in columns))
        .table_valued(*(sa_column(c.name, c.type) for c in columns), with_ordinality="n")
        .render_derived(name="cells", with_types=False)
    )
    rows = select(*(cells.c[c.name] for c in columns)).order_by(cells.c.n)
    statement = postgresql.insert(table).from_select([c.name for c in columns], rows)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + statement.excluded[name] for name in measures},
    )


def _month(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def _dimensions(referral: Referral) -> dict[str, object]:
    return {"agency_id": referral.agency_id or DIRECT, "procedure_code": referral.procedure.code}


def count_stage_reached(referral: Referral, stage: str, at: datetime, reason: str | None) -> None:
    key = {"day": at.date(), "stage": stage, "reason": reason or "", **_dimensions(referral)}
    _upsert(StageDaily, key, {"entered": 1})


def count_visit(referral: Referral, stage: str, entered: datetime, left: datetime) -> None:
    key = {
        "month": _month(left),
        "stage": stage,
        "bucket": bucket_of((left - entered).total_seconds()),
        **_dimensions(referral),
    }
    _upsert(StageDuration, key, {"visits": 1})


def count_sla(referral: Referral, level: ServiceLevel, entered: datetime, left: datetime) -> None:
    """A finished visit of a stage held to a service level, judged now, under the settings
    in force now."""
    key = {"month": _month(left), "stage": str(level.stage), **_dimensions(referral)}
    _upsert(SlaMonthly, key, {"visits": 1, "breached": int(level.breached(entered, left))})


def _level(levels: Sequence[ServiceLevel], stage: str) -> ServiceLevel | None:
    return next((level for level in levels if level.stage == stage), None)


def count_plan_accepted(referral: Referral, plan: TreatmentPlan) -> None:
    assert plan.accepted_at is not None
    key = {"day": plan.accepted_at.date(), "currency": plan.currency, **_dimensions(referral)}
    _upsert(PlanDaily, key, {"accepted": 1, "value_minor": plan.total_minor})


def _message_key(
    created_at: datetime,
    channel: str,
    status: str,
    reason: str | None,
    agency_id: int | None,
    code: str | None,
) -> tuple:
    day = (created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)).astimezone(UTC)
    status = "queued" if status == "sending" else status
    kept = (reason or "") if status == "suppressed" else ""
    return (day.date(), channel, status, kept, agency_id or DIRECT, code or "")


def procedure_codes(referral_ids: Iterable[int | None]) -> dict[int, str]:
    """Each referral's procedure code: from the session where it holds the referral and its
    procedure already (a submission's messages), else in one query."""
    ids = sorted({i for i in referral_ids if i is not None})
    codes = {i: code for i in ids if (code := _code_in_session(i)) is not None}
    missing = [i for i in ids if i not in codes]
    if missing:
        rows = db.session.execute(
            select(Referral.id, Procedure.code)
            .join(Procedure, Procedure.id == Referral.procedure_id)
            .where(Referral.id.in_(missing))
        )
        codes.update({referral_id: code for referral_id, code in rows})
    return codes


def _code_in_session(referral_id: int) -> str | None:
    key = db.session.identity_key(Referral, referral_id)
    referral = db.session.identity_map.get(key)
    procedure = inspect(referral).dict.get("procedure") if referral is not None else None
    return inspect(procedure).dict.get("code") if procedure is not None else None


def count_message_changes(changes: Sequence[StatusChange], codes: Mapping[int, str]) -> None:
    """Each change: -1 in the cell the row was in, +1 in the cell it is in now; folded so
    the whole step is one upsert."""
    deltas: dict[tuple, list[int]] = {}

    def add(status: str, reason: str | None, sign: int, c: StatusChange) -> None:
        code = codes.get(c.referral_id) if c.referral_id is not None else None
        key = _message_key(c.created_at, c.channel, status, reason, c.agency_id, code)
        cell = deltas.setdefault(key, [0, 0])
        cell[0] += sign
        cell[1] += sign * (c.segments or 0)

    for c in changes:
        if c.before is not None:
            add(c.before, c.before_reason, -1, c)
        add(c.after, c.after_reason, 1, c)
    names = [column.name for column in MessageDaily.__table__.primary_key.columns]
    rows = [
        {**dict(zip(names, key, strict=True)), "messages": n, "segments": segments}
        for key, (n, segments) in deltas.items()
        if n or segments
    ]
    _upsert_many(MessageDaily, rows, ("messages", "segments"))


def count_opt_out(agency_id: int | None, channel: str, at: datetime) -> None:
    key = {"day": at.date(), "channel": channel, "agency_id": agency_id or DIRECT}
    _upsert(OptOutDaily, key, {"opt_outs": 1})


def on_moved(
    referral: Referral,
    transition: StageTransition,
    earlier: list[StageTransition],
    levels: Sequence[ServiceLevel] = (),
):
    """A move recorded: the stage reached (if for the first time) and the visit it ended
    (and, for a stage held to one of `levels`, whether it ended in time)."""
    if all(t.to_stage != transition.to_stage for t in earlier):
        count_stage_reached(
            referral, transition.to_stage, transition.occurred_at, transition.reason
        )
    if earlier and transition.from_stage is not None:
        left = earlier[-1]
        count_visit(referral, left.to_stage, left.occurred_at, transition.occurred_at)
        level = _level(levels, left.to_stage)
        if level is not None:
            count_sla(referral, level, left.occurred_at, transition.occurred_at)


# The rebuild -----------------------------------------------------------------------------


def rebuild(levels: Sequence[ServiceLevel] = ()) -> dict[str, int]:
    """Recompute every rollup from the source rows (opt-outs excepted: consent rows keep
    only the latest state, so past opt-outs cannot be recounted; they are left as kept).
    SLA breaches are re-judged under `levels` (today's settings). Returns the rows written
    per table. Flushes; the caller commits."""
    for model in (StageDaily, StageDuration, PlanDaily, SlaMonthly, MessageDaily):
        db.session.execute(delete(model))
    reached, visits, sla = _recount_stages(levels)
    plans = _recount_plans()
    messages = _recount_messages()
    _insert(StageDaily, reached, "entered")
    _insert(StageDuration, visits, "visits")
    _insert_sla(sla)
    _insert_plans(plans)
    _insert_rows(MessageDaily.__table__, messages)  # type: ignore[arg-type]
    db.session.flush()
    return {
        "report_message_daily": len(messages),
        "report_stage_daily": len(reached),
        "report_stage_duration": len(visits),
        "report_sla_monthly": len(sla),
        "report_plan_daily": len(plans),
    }


def _recount_stages(levels: Sequence[ServiceLevel]) -> tuple[Counter, Counter, Counter]:
    rows = db.session.execute(
        select(
            StageTransition.referral_id,
            StageTransition.to_stage,
            StageTransition.reason,
            StageTransition.occurred_at,
            Referral.agency_id,
            Procedure.code,
        )
        .join(Referral, Referral.id == StageTransition.referral_id)
        .join(Procedure, Procedure.id == Referral.procedure_id)
        .order_by(StageTransition.referral_id, StageTransition.occurred_at, StageTransition.id)
        .execution_options(yield_per=5000)
    )
    reached: Counter = Counter()
    visits: Counter = Counter()
    sla: Counter = Counter()
    current, seen, previous = None, set(), None
    for referral_id, stage, reason, at, agency_id, code in rows:
        agency = agency_id or DIRECT
        if referral_id != current:
            current, seen, previous = referral_id, set(), None
        if stage not in seen:
            seen.add(stage)
            reached[(at.date(), stage, reason or "", agency, code)] += 1
        if previous is not None:
            left_stage, entered = previous
            seconds = (at - entered).total_seconds()
            visits[(_month(at), left_stage, agency, code, bucket_of(seconds))] += 1
            level = _level(levels, left_stage)
            if level is not None:
                sla[(_month(at), left_stage, agency, code, "visits")] += 1
                sla[(_month(at), left_stage, agency, code, "breached")] += level.breached(
                    entered, at
                )
        previous = (stage, at)
    return reached, visits, sla


def _recount_plans() -> Counter:
    rows = db.session.execute(
        select(TreatmentPlan, Referral.agency_id, Procedure.code)
        .join(Referral, Referral.id == TreatmentPlan.referral_id)
        .join(Procedure, Procedure.id == Referral.procedure_id)
        .where(TreatmentPlan.status == "accepted")
    )
    plans: Counter = Counter()
    for plan, agency_id, code in rows:
        key = (plan.accepted_at.date(), agency_id or DIRECT, code, plan.currency)
        plans[(*key, "accepted")] += 1
        plans[(*key, "value_minor")] += plan.total_minor
    return plans


def _recount_messages() -> list[dict[str, object]]:
    rows = db.session.execute(
        select(
            OutboxMessage.created_at,
            OutboxMessage.channel,
            OutboxMessage.status,
            OutboxMessage.suppressed_reason,
            OutboxMessage.agency_id,
            Procedure.code,
            OutboxMessage.segments,
        )
        .outerjoin(Referral, Referral.id == OutboxMessage.referral_id)
        .outerjoin(Procedure, Procedure.id == Referral.procedure_id)
        .execution_options(yield_per=5000)
    )
    cells: dict[tuple, list[int]] = {}
    for created_at, channel, status, reason, agency_id, code, segments in rows:
        cell = cells.setdefault(
            _message_key(created_at, channel, status, reason, agency_id, code), [0, 0]
        )
        cell[0] += 1
        cell[1] += segments or 0
    names = [column.name for column in MessageDaily.__table__.primary_key.columns]
    return [
        {**dict(zip(names, key, strict=True)), "messages": n, "segments": segments}
        for key, (n, segments) in cells.items()
    ]


def _insert(model: type, counts: Counter, measure: str) -> None:
    table: Table = model.__table__  # type: ignore[attr-defined]
    names = [c.name for c in table.primary_key.columns]
    rows = [{**dict(zip(names, key, strict=True)), measure: n} for key, n in counts.items()]
    _insert_rows(table, rows)


def _insert_sla(sla: Counter) -> None:
    merged: dict[tuple, dict[str, object]] = {}
    for (month, stage, agency, code, measure), n in sla.items():
        row = merged.setdefault(
            (month, stage, agency, code),
            {"month": month, "stage": stage, "agency_id": agency, "procedure_code": code},
        )
        row[measure] = n
    _insert_rows(SlaMonthly.__table__, list(merged.values()))  # type: ignore[arg-type]


def _insert_plans(plans: Counter) -> None:
    merged: dict[tuple, dict[str, object]] = {}
    for (day, agency, code, currency, measure), n in plans.items():
        row = merged.setdefault(
            (day, agency, code, currency),
            {"day": day, "agency_id": agency, "procedure_code": code, "currency": currency},
        )
        row[measure] = n
    _insert_rows(PlanDaily.__table__, list(merged.values()))  # type: ignore[arg-type]


def _insert_rows(table: Table, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(table), rows[start : start + 5000])
