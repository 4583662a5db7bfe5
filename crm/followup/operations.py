"""Follow-up check-ins: scheduled at discharge, answered by the patient or a coordinator.

What a check-in asks and which answers alert come from the procedure's catalogue row
(`check_in_questions`, `check_in_rules`; crm.catalogue.check_in): a red flag the rules
name is urgent, then a score at or above its `high_score`, then a rise of `rising` or more
on the previous answered check-in. Any alert opens an urgent task for the coordinator and
emails them, in the same transaction as the answers. What the patient writes in free
text, and a rule that raises a `task`, reach the coordinator too: a note on the
referral's timeline and a task (not urgent).

A check-in can be answered from `OPEN_AHEAD` (a day) before it is due, not earlier.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from crm.catalogue.check_in import FREE_TEXT, Assessment, CheckInForm
from crm.core import audit
from crm.core.actors import SYSTEM, Actor
from crm.core.db import utcnow
from crm.core.errors import (
    Conflict,
    Forbidden,
    GuardFailed,
    ValidationFailed,
    flatten_marshmallow,
)
from crm.core.events import publish
from crm.extensions import db
from crm.followup.events import AlertRaised, CheckInAnswered
from crm.followup.models import CheckIn
from crm.followup.queries import OPEN_AHEAD, check_ins_of, open_check_in
from crm.messaging.composing.outbox import enqueue
from crm.referrals.events import AttentionNeeded, MilestoneDated, MilestoneSettled
from crm.referrals.models import Referral, ReferralNote
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import Stage

__all__ = ["assess", "open_check_in", "record_answers", "schedule_check_ins"]

DATE_NAME = "check_in_due"


def check_in_form_of(referral: Referral) -> CheckInForm:
    """The questions and rules of the referral's procedure."""
    return referral.procedure.check_in_form


def assess(
    form: CheckInForm, answers: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> Assessment:
    """Pure: the alert one set of answers raises, against the previous answered one."""
    return form.assess(answers, previous)


def schedule_check_ins(
    referral: Referral, discharged_at: datetime, now: datetime | None = None
) -> list[CheckIn]:
    """One check-in per point of the procedure's schedule, counted from discharge, each a
    dated milestone (its messages say how long ago treatment was). Points already created
    are left as they are."""
    existing = {c.label: c for c in check_ins_of(referral.id)}
    created: list[tuple[CheckIn, int]] = []
    for position, point in enumerate(referral.procedure.follow_up_schedule):
        if point["label"] in existing:
            continue
        check_in = CheckIn(
            referral_id=referral.id,
            label=point["label"],
            position=position,
            due_at=discharged_at + timedelta(days=point["offset_days"]),
        )
        db.session.add(check_in)
        created.append((check_in, point["offset_days"]))
    db.session.flush()
    for check_in, offset_days in created:
        publish(
            MilestoneDated(
                referral,
                DATE_NAME,
                check_in.due_at,
                series=True,
                context={"since_treatment": offset_days},
            )
        )
    return [check_in for check_in, _ in created]


def _load(form: CheckInForm, answers: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return form.answers_schema().load(dict(answers))
    except ValidationError as exc:
        raise ValidationFailed(flatten_marshmallow(exc.messages)) from exc


def _locked(check_in: CheckIn) -> CheckIn:
    """The row again, locked and fresh: two answers at once cannot both win."""
    return db.session.scalars(
        select(CheckIn)
        .where(CheckIn.id == check_in.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _previous_answers(check_in: CheckIn) -> dict[str, Any] | None:
    previous = db.session.scalar(
        select(CheckIn)
        .where(
            CheckIn.referral_id == check_in.referral_id,
            CheckIn.answered_at.is_not(None),
            CheckIn.position < check_in.position,
        )
        .order_by(CheckIn.position.desc())
        .limit(1)
    )
    if previous is None:
        return None
    return dict(previous.answers or {})


def record_answers(
    check_in: CheckIn, answers: Mapping[str, Any], actor: Actor, now: datetime | None = None
) -> CheckIn:
    """Store the answers once (409 the second time), raise any alert, complete after the last."""
    if actor.is_agency:
        raise Forbidden("agencies cannot answer a patient's check-in")
    referral = db.session.get(Referral, check_in.referral_id)
    assert referral is not None  # the foreign key
    form = check_in_form_of(referral)
    data = _load(form, answers)
    now = now or utcnow()
    check_in = _locked(check_in)
    if check_in.answered_at is not None:
        raise Conflict(f"check-in {check_in.label!r} is already answered", label=check_in.label)
    opens_at = check_in.due_at - OPEN_AHEAD
    if now < opens_at:
        raise Conflict(
            f"check-in {check_in.label!r} is not open yet: it opens on {opens_at:%Y-%m-%d}",
            label=check_in.label,
            opens_at=opens_at.isoformat(),
        )
    check_in.free_text = data.pop(FREE_TEXT)
    check_in.answers = data
    check_in.answered_at = now
    assessment = assess(form, data, _previous_answers(check_in))
    check_in.alert = assessment.alert
    db.session.flush()
    publish(MilestoneSettled(referral, DATE_NAME, check_in.due_at))  # its reminder is moot
    audit.record(
        actor, "check_in.answer", referral.id, label=check_in.label, alert=assessment.alert
    )
    publish(CheckInAnswered(referral, check_in, actor, assessment.alert))
    if assessment.alert != "none":
        _raise_alert(referral, check_in, assessment, now)
    _pass_on_to_coordinator(referral, check_in, assessment, actor, now)
    _complete_after_last(referral, check_in, assessment)
    return check_in


def _raise_alert(
    referral: Referral, check_in: CheckIn, assessment: Assessment, now: datetime
) -> None:
    summary = f"{assessment.alert.replace('_', ' ')} at the {check_in.label} check-in: " + (
        "; ".join(assessment.reasons)
    )
    key = f"check-in-alert:{check_in.id}"
    publish(AlertRaised(referral, check_in, assessment.alert, summary, now))
    enqueue(
        referral,
        kind="follow_up_alert_coordinator",
        audience="coordinator",
        channels=["email"],
        key=key,
        extra={"message": summary},
        now=now,
    )


def _pass_on_to_coordinator(
    referral: Referral, check_in: CheckIn, assessment: Assessment, actor: Actor, now: datetime
) -> None:
    """Free text goes on the referral's timeline; it and any non-urgent concern open a task."""
    text = (check_in.free_text or "").strip()
    if text:
        referral.notes.append(
            ReferralNote(
                author_label=f"{actor.label}, {check_in.label} check-in",
                body=text,
                created_at=now,
            )
        )
    if not text and not assessment.watch:
        return
    detail = "; ".join(assessment.watch)
    if text:
        detail = f"{detail}\nThe patient wrote: {text}" if detail else f"The patient wrote: {text}"
    publish(
        AttentionNeeded(
            referral,
            f"Read the {check_in.label} check-in and reply to the patient",
            "alert",
            detail=detail,
            due_at=now,
            dedupe_key=f"check-in-note:{check_in.id}",
        )
    )
    db.session.flush()


def _complete_after_last(referral: Referral, check_in: CheckIn, assessment: Assessment) -> None:
    """The last point of the schedule answered in follow-up: the referral is complete.

    Not when that answer raised an alert, nor while an earlier urgent alert is open (the
    guard `no_open_urgent_alert` refuses the move): `completed` is terminal, and an
    alerting patient is not done; the coordinator completes it after the call.
    """
    last = max(c.position for c in check_ins_of(referral.id))
    if check_in.position != last or referral.stage != Stage.FOLLOW_UP:
        return
    if assessment.alert != "none":
        return
    try:
        move_to_stage(referral, Stage.COMPLETED, SYSTEM, note="last follow-up check-in answered")
    except GuardFailed:
        return  # refused before anything changed: the referral waits for the coordinator


def ensure_check_ins(referral: Referral) -> None:
    """On entering post_op (a subscriber), a backstop: with the `discharge_recorded` guard
    on, post_op is entered only by recording the discharge (which schedules the check-ins
    first); a deployment without that guard, moving there by hand, still gets them,
    counted from now."""
    schedule_check_ins(referral, referral.stage_entered_at)
