"""Turning rules into scheduled nudges, and due nudges into outbox rows.

A stage change schedules the rules of the new stage and cancels those that stop when the
referral moves on; the sweep then only ever reads `scheduled_nudges` by (status, due_at),
so its cost follows what is due, not how many referrals exist.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select, update

from crm.core import audit
from crm.core.actors import Actor
from crm.core.cache import attach, columns_of, process_cache, watch
from crm.core.data_files import upsert_by_code
from crm.core.db import utcnow
from crm.core.errors import NotFound, ValidationFailed, flatten_marshmallow
from crm.core.events import publish
from crm.extensions import db
from crm.messaging.composing.outbox import enqueue
from crm.nudges.models import NudgeRule, ScheduledNudge
from crm.nudges.schemas import NudgeRuleArgs
from crm.referrals.events import AttentionNeeded
from crm.referrals.models import Referral

watch(NudgeRule.__tablename__)

NEVER_NUDGED_STAGES = frozenset({"lost", "on_hold"})


def _read(path: str | Path) -> dict[str, Any]:
    with Path(path).open("rb") as handle:
        return tomllib.load(handle)


def read_rules(path: str | Path) -> list[dict[str, Any]]:
    raw = _read(path).get("rule", [])
    try:
        rows = NudgeRuleArgs(many=True).load(raw)
    except ValidationError as exc:
        raise ValidationFailed(flatten_marshmallow(exc.messages, "rule")) from exc
    return rows


def load_rules(path: str | Path) -> tuple[int, int]:
    """Add and update the file's rules; switch off the ones it lists as `retired`.

    Rules an admin created through the API are not in the file and are left alone.
    """
    retire_rules(_read(path).get("retired", []))
    return upsert_by_code(NudgeRule, read_rules(path))


def rule_by_code(code: str) -> NudgeRule:
    rule = db.session.scalar(select(NudgeRule).where(NudgeRule.code == code))
    if rule is None:
        raise NotFound(f"no nudge rule {code!r}")
    return rule


def update_rule(code: str, changes: Mapping[str, Any], actor: Actor) -> NudgeRule:
    """Change timing, channels, repeats or switch a rule off (pending nudges check
    `active`). `changes` are NudgeRuleUpdateArgs already loaded; the rule as changed must
    still pass NudgeRuleArgs' checks as a whole (e.g. repeats need an interval)."""
    rule = rule_by_code(code)
    for name, value in changes.items():
        setattr(rule, name, value)
    checker = NudgeRuleArgs()
    errors = checker.validate({name: getattr(rule, name) for name in checker.fields})
    if errors:
        raise ValidationFailed(flatten_marshmallow(errors))
    db.session.flush()
    audit.record(actor, "nudge_rule.update", None, code=code, fields=sorted(changes))
    return rule


def retire_rules(codes: list[str]) -> int:
    result = db.session.execute(
        update(NudgeRule)
        .where(NudgeRule.code.in_(codes), NudgeRule.active.is_(True))
        .values(active=False)
    )
    return result.rowcount or 0


def active_rules(trigger: str, name: str) -> list[NudgeRule]:
    """The active rules for a stage ("stage_entered") or a date ("date"), in the caller's
    session, from the process's cache (crm/core/cache.py)."""
    rows = process_cache("nudge_rules").get((trigger, name), lambda: _rule_rows(trigger, name))
    return [attach(NudgeRule, values) for values in rows]


def _rule_rows(trigger: str, name: str) -> list[dict[str, Any]]:
    which = NudgeRule.stage if trigger == "stage_entered" else NudgeRule.date_name
    rules = db.session.scalars(
        select(NudgeRule)
        .where(NudgeRule.active.is_(True), NudgeRule.trigger == trigger, which == name)
        .order_by(NudgeRule.id)
    )
    return [columns_of(rule) for rule in rules]


def on_stage_entered(
    referral: Referral, now: datetime | None = None, *, new: bool = False, resumed: bool = False
) -> None:
    """Cancel what the move makes moot, schedule the new stage's rules, fire the immediate.

    A brand-new referral has nothing to cancel; a referral resuming from hold does not get
    the stage's immediate messages (thank-you, new-referral notice) a second time.
    """
    now = now or utcnow()
    if not new:
        _cancel_moot(referral, now)
    if referral.stage in NEVER_NUDGED_STAGES:
        return
    for rule in active_rules("stage_entered", referral.stage):
        if resumed and rule.offset_minutes <= 0:
            continue
        _schedule(rule, referral, referral.stage_entered_at, 0, now)


def schedule_for_date(
    referral: Referral,
    date_name: str,
    when: datetime,
    now: datetime | None = None,
    *,
    replace: bool = True,
    context: Mapping[str, Any] | None = None,
) -> None:
    """A dated event (travel, admission, discharge) was set or moved: (re)schedule its rules.

    `replace=False` adds one more date of the same name (a series, such as the follow-up
    check-ins) instead of moving the single pending one. `context` is kept with each
    nudge for its templates.
    """
    now = now or utcnow()
    rules = active_rules("date", date_name)
    if replace:
        db.session.execute(
            update(ScheduledNudge)
            .where(
                ScheduledNudge.referral_id == referral.id,
                ScheduledNudge.status == "pending",
                ScheduledNudge.rule_id.in_([rule.id for rule in rules]),
                ScheduledNudge.trigger_at != when,
            )
            .values(status="cancelled", finished_at=now)
        )
    for rule in rules:
        if when + timedelta(minutes=rule.offset_minutes) < now:
            continue
        existing = db.session.scalar(
            select(ScheduledNudge).where(
                ScheduledNudge.rule_id == rule.id,
                ScheduledNudge.referral_id == referral.id,
                ScheduledNudge.trigger_at == when,
                ScheduledNudge.occurrence == 0,
            )
        )
        if existing is None:
            _schedule(rule, referral, when, 0, now, context)
        elif existing.status == "cancelled":  # the date moved away and back: due again
            existing.status, existing.finished_at = "pending", None
        # pending: already scheduled for this date; fired: never twice for one date


def settle_date(referral: Referral, date_name: str, when: datetime, now: datetime) -> None:
    """What the date was waiting for happened (a check-in answered): its reminders are moot."""
    rules = select(NudgeRule.id).where(NudgeRule.date_name == date_name)
    db.session.execute(
        update(ScheduledNudge)
        .where(
            ScheduledNudge.referral_id == referral.id,
            ScheduledNudge.status == "pending",
            ScheduledNudge.trigger_at == when,
            ScheduledNudge.rule_id.in_(rules),
        )
        .values(status="cancelled", finished_at=now)
    )


def _cancel_moot(referral: Referral, now: datetime) -> None:
    # Only stage rules stop when the referral moves on; a dated event (travel) still comes.
    stopping = select(NudgeRule.id).where(
        NudgeRule.stop_when_stage_changes.is_(True), NudgeRule.trigger == "stage_entered"
    )
    statement = update(ScheduledNudge).where(
        ScheduledNudge.referral_id == referral.id, ScheduledNudge.status == "pending"
    )
    if referral.stage not in NEVER_NUDGED_STAGES:
        statement = statement.where(ScheduledNudge.rule_id.in_(stopping))
    db.session.execute(statement.values(status="cancelled", finished_at=now))


def _schedule(
    rule: NudgeRule,
    referral: Referral,
    trigger_at: datetime,
    occurrence: int,
    now: datetime,
    context: Mapping[str, Any] | None = None,
) -> ScheduledNudge:
    due = trigger_at + timedelta(
        minutes=rule.offset_minutes + occurrence * rule.repeat_every_minutes
    )
    nudge = ScheduledNudge(
        rule=rule,
        referral_id=referral.id,
        trigger_at=trigger_at,
        occurrence=occurrence,
        due_at=due,
        context=dict(context) if context else None,
    )
    db.session.add(nudge)  # written with the next flush: fired or pending, one INSERT
    if due <= now:
        fire(nudge, now)
    return nudge


def _still_relevant(nudge: ScheduledNudge, referral: Referral) -> bool:
    rule = nudge.rule
    if not rule.active or referral.stage in NEVER_NUDGED_STAGES:
        return False
    if rule.trigger == "stage_entered" and rule.stop_when_stage_changes:
        return referral.stage == rule.stage and referral.stage_entered_at == nudge.trigger_at
    return True


def _trigger_context(
    rule: NudgeRule, nudge: ScheduledNudge, referral: Referral, now: datetime
) -> dict[str, Any]:
    """What the templates say about the trigger: the date itself, or time since the stage."""
    if rule.trigger == "date" and rule.date_name:
        return {rule.date_name: nudge.trigger_at.date(), **(nudge.context or {})}
    return {"since_treatment": max(now - nudge.trigger_at, timedelta(0))}


def fire(nudge: ScheduledNudge, now: datetime) -> None:
    referral = db.session.get(Referral, nudge.referral_id)
    nudge.finished_at = now
    if referral is None or not _still_relevant(nudge, referral):
        nudge.status = "cancelled"
        return
    rule = nudge.rule
    key = f"nudge:{rule.code}:{referral.id}:{nudge.trigger_at:%Y%m%dT%H%M%S%f}:{nudge.occurrence}"
    nudge.status = "fired"  # before enqueue's flush writes the row: no second UPDATE
    result = enqueue(
        referral,
        kind=rule.kind,
        audience=rule.audience,
        channels=list(rule.channels),
        key=key,
        fallback=rule.fallback,
        rule_code=rule.code,
        extra=_trigger_context(rule, nudge, referral, now),
        now=now,
        stands=not rule.stop_when_stage_changes,
    )
    if result.held_by_cap:
        publish(
            AttentionNeeded(
                referral,
                "SMS spend cap reached: a patient nudge is held",
                "system",
                detail=f"rule {rule.code}; cap {result.held_by_cap}",
                dedupe_key=f"cap:{result.held_by_cap}:{key}",
            )
        )
    if nudge.occurrence < rule.max_repeats:
        _schedule(rule, referral, nudge.trigger_at, nudge.occurrence + 1, now, nudge.context)
    elif rule.task_after_last:
        publish(AttentionNeeded(referral, rule.task_after_last, "rule", dedupe_key=f"task:{key}"))
