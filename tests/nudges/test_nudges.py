"""Nudge rules into scheduled nudges, due nudges into outbox rows: once, on time, never moot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text

from crm.core.db import utcnow
from crm.followup.operations import schedule_check_ins
from crm.nudges.jobs import sweep
from crm.nudges.models import NudgeRule, ScheduledNudge
from crm.nudges.operations import schedule_for_date
from crm.referrals.operations import move_to_stage, submit_referral
from crm.referrals.schemas import ReferralCreateArgs
from crm.tasks.models import Task
from tests.conftest import postgres_only
from tests.factories import referral_payload
from tests.messaging.support import NO_QUIET_HOURS, new_referral, outbox_count, outbox_for

pytestmark = pytest.mark.usefixtures("without_clinical_guards")

MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)


@pytest.fixture(autouse=True)
def _no_quiet_hours(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)


@pytest.fixture
def coordinator(factory):
    return factory.staff("coordinator").actor


def _nudges(session, referral_id: int, code: str | None = None) -> list[ScheduledNudge]:
    statement = select(ScheduledNudge).where(ScheduledNudge.referral_id == referral_id)
    if code:
        statement = statement.join(NudgeRule).where(NudgeRule.code == code)
    return list(session.scalars(statement.order_by(ScheduledNudge.id)))


def _states(session, referral_id: int, code: str) -> list[tuple[int, str]]:
    return [(n.occurrence, n.status) for n in _nudges(session, referral_id, code)]


def _walk(referral, stages, actor) -> None:
    for stage in stages:
        move_to_stage(referral, stage, actor)


TO_POST_OP = [
    "awaiting_mri",
    "mri_review",
    "plan_offered",
    "plan_accepted",
    "travel_booked",
    "in_treatment",
    "post_op",
]


def test_submitting_fires_the_immediate_enquiry_rules_in_the_same_transaction(factory, session):
    agency = factory.agency()
    before = outbox_count()
    referral = submit_referral(ReferralCreateArgs().load(referral_payload()), agency.actor)
    assert _states(session, referral.id, "enquiry_thank_you") == [(0, "fired")]
    assert _states(session, referral.id, "enquiry_new_referral_coordinator") == [(0, "fired")]
    rows = outbox_for(referral.id)
    assert sorted((m.rule_code, m.channel) for m in rows) == [
        ("enquiry_new_referral_coordinator", "email"),
        ("enquiry_thank_you", "email"),
        ("enquiry_thank_you", "sms"),
    ]
    assert {m.status for m in rows} == {"queued"}
    referral_id = referral.id
    session.rollback()  # the referral is not stored: neither are its messages
    assert outbox_count() == before
    assert not session.scalars(
        select(ScheduledNudge).where(ScheduledNudge.referral_id == referral_id)
    ).all()


def test_entering_a_stage_schedules_its_rules_for_later(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    [nudge] = _nudges(session, referral.id, "mri_missing_reminder")
    assert nudge.status == "pending"
    assert nudge.trigger_at == referral.stage_entered_at
    assert nudge.due_at == referral.stage_entered_at + timedelta(minutes=4320)
    assert not outbox_for(referral.id, rule_code="mri_missing_reminder")


def test_moving_on_cancels_pending_nudges_of_rules_that_stop(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    move_to_stage(referral, "mri_review", coordinator)
    assert _states(session, referral.id, "mri_missing_reminder") == [(0, "cancelled")]
    assert _states(session, referral.id, "mri_review_overdue") == [(0, "pending")]
    fired = sweep(utcnow() + 30 * DAY)
    assert not outbox_for(referral.id, rule_code="mri_missing_reminder")
    assert fired >= 1


def test_the_sweep_fires_only_due_nudges_then_repeats_then_opens_the_last_task_once(
    factory, session, coordinator
):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    entered = referral.stage_entered_at
    first_due = entered + 3 * DAY
    sweep(first_due - MINUTE)
    assert not outbox_for(referral.id, rule_code="mri_missing_reminder")

    sweep(first_due)
    assert _states(session, referral.id, "mri_missing_reminder") == [(0, "fired"), (1, "pending")]
    [second] = [n for n in _nudges(session, referral.id, "mri_missing_reminder") if n.occurrence]
    assert second.due_at == entered + 6 * DAY
    assert len(outbox_for(referral.id, rule_code="mri_missing_reminder")) == 1

    sweep(entered + 6 * DAY)
    sweep(entered + 9 * DAY)
    assert _states(session, referral.id, "mri_missing_reminder") == [
        (0, "fired"),
        (1, "fired"),
        (2, "fired"),
    ]
    reminders = outbox_for(referral.id, rule_code="mri_missing_reminder")
    assert len(reminders) == 3  # the first send and max_repeats = 2 more
    assert len({m.idempotency_key for m in reminders}) == 3
    tasks = list(session.scalars(select(Task).where(Task.referral_id == referral.id)))
    assert [(t.source, t.title) for t in tasks] == [
        ("rule", "No MRI after three reminders: call the patient")
    ]
    sweep(entered + 30 * DAY)
    assert len(outbox_for(referral.id, rule_code="mri_missing_reminder")) == 3
    assert session.scalar(select(func.count(Task.id)).where(Task.referral_id == referral.id)) == 1


def test_a_late_sweep_catches_up_on_every_occurrence_once(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    sweep(referral.stage_entered_at + 20 * DAY)
    assert len(outbox_for(referral.id, rule_code="mri_missing_reminder")) == 3
    assert session.scalar(select(func.count(Task.id)).where(Task.referral_id == referral.id)) == 1


def test_a_referral_that_moved_on_gets_no_more_nudges(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    sweep(referral.stage_entered_at + 3 * DAY)  # the first reminder; the second is pending
    move_to_stage(referral, "mri_review", coordinator)
    sweep(utcnow() + 20 * DAY)
    assert len(outbox_for(referral.id, rule_code="mri_missing_reminder")) == 1
    assert not session.scalars(select(Task).where(Task.referral_id == referral.id)).all()


@pytest.mark.parametrize(("stage", "reason"), [("lost", "price"), ("on_hold", None)])
def test_lost_or_on_hold_referrals_get_no_nudges_at_all(
    factory, session, coordinator, stage, reason
):
    referral = new_referral(factory)
    _walk(referral, TO_POST_OP, coordinator)
    schedule_check_ins(referral, referral.stage_entered_at)  # what recording discharge does
    pending = [n for n in _nudges(session, referral.id) if n.status == "pending"]
    assert [n.rule.code for n in pending].count("follow_up_checkin") == 4
    move_to_stage(referral, stage, coordinator, reason=reason)
    assert all(n.status != "pending" for n in _nudges(session, referral.id))
    before = outbox_count()
    sweep(utcnow() + 200 * DAY)
    assert outbox_count() == before


def test_follow_ups_survive_the_stage_change_and_say_how_long_ago_treatment_was(
    factory, session, coordinator
):
    referral = new_referral(factory, patient={"language": "en"})
    _walk(referral, TO_POST_OP, coordinator)
    discharged = referral.stage_entered_at
    schedule_check_ins(referral, discharged)
    move_to_stage(referral, "follow_up", coordinator)
    sweep(discharged + 14 * DAY)
    rows = outbox_for(referral.id, rule_code="follow_up_checkin", channel="sms")
    assert len(rows) == 2  # day 1 and week 2; week 6 and month 3 still to come
    assert {m.kind for m in rows} == {"follow_up_checkin"}
    assert {m.status for m in rows} == {"queued"}


def test_a_follow_up_email_renders_the_time_since_treatment(factory, session, coordinator):
    referral = new_referral(
        factory,
        patient={"language": "en", "consents": {"sms": False, "email": True, "source": "form"}},
    )
    _walk(referral, TO_POST_OP, coordinator)
    schedule_check_ins(referral, referral.stage_entered_at)
    sweep(referral.stage_entered_at + DAY)
    sweep(referral.stage_entered_at + 14 * DAY)
    day_1, week_2 = outbox_for(referral.id, channel="email", rule_code="follow_up_checkin")
    assert "1 day ago" in day_1.body_text
    assert "2 weeks ago" in week_2.body_text


def test_a_rule_switched_off_stops_its_pending_nudges(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    rule = session.scalar(select(NudgeRule).where(NudgeRule.code == "mri_missing_reminder"))
    rule.active = False
    sweep(utcnow() + 4 * DAY)
    assert _states(session, referral.id, "mri_missing_reminder") == [(0, "cancelled")]
    assert not outbox_for(referral.id, rule_code="mri_missing_reminder")


# -- date rules -------------------------------------------------------------------------


def test_date_rules_are_scheduled_before_the_date_and_say_the_date(factory, session):
    referral = new_referral(
        factory,
        patient={"language": "en", "consents": {"sms": False, "email": True, "source": "form"}},
    )
    travel = (utcnow() + 30 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    schedule_for_date(referral, "travel_date", travel)
    week = _nudges(session, referral.id, "travel_in_7_days")
    day = _nudges(session, referral.id, "travel_in_1_day")
    assert [(n.status, n.due_at) for n in week] == [("pending", travel - 7 * DAY)]
    assert [(n.status, n.due_at) for n in day] == [("pending", travel - DAY)]
    sweep(travel - 7 * DAY)
    [email] = outbox_for(referral.id, rule_code="travel_in_7_days")
    assert "None" not in email.body_text
    assert str(travel.year) in email.body_text and str(travel.day) in email.body_text
    assert _states(session, referral.id, "travel_in_1_day") == [(0, "pending")]


def test_moving_the_date_reschedules_its_nudges(factory, session):
    referral = new_referral(factory)
    travel = utcnow() + 30 * DAY
    schedule_for_date(referral, "travel_date", travel)
    later = travel + 10 * DAY
    schedule_for_date(referral, "travel_date", later)
    nudges = _nudges(session, referral.id, "travel_in_1_day")
    assert [(n.status, n.due_at) for n in nudges] == [
        ("cancelled", travel - DAY),
        ("pending", later - DAY),
    ]


def test_setting_the_same_date_again_keeps_one_pending_nudge(factory, session):
    referral = new_referral(factory)
    travel = utcnow() + 30 * DAY
    schedule_for_date(referral, "travel_date", travel)
    schedule_for_date(referral, "travel_date", travel)  # the form saved again, unchanged
    assert _states(session, referral.id, "travel_in_1_day") == [(0, "pending")]


def test_moving_the_date_back_revives_its_nudges_but_never_resends_a_fired_one(factory, session):
    referral = new_referral(factory)
    travel = utcnow() + 10 * DAY
    schedule_for_date(referral, "travel_date", travel)
    sweep(travel - 7 * DAY)  # the week-before message went out for this date
    schedule_for_date(referral, "travel_date", travel + 5 * DAY, now=travel - 7 * DAY)
    schedule_for_date(referral, "travel_date", travel, now=travel - 7 * DAY)
    assert [n.status for n in _nudges(session, referral.id, "travel_in_1_day")] == [
        "pending",
        "cancelled",
    ]
    sweep(travel)
    assert len(outbox_for(referral.id, rule_code="travel_in_7_days", channel="sms")) == 1
    assert len(outbox_for(referral.id, rule_code="travel_in_1_day", channel="sms")) == 1


def test_a_date_too_close_skips_the_rules_whose_moment_has_passed(factory, session):
    referral = new_referral(factory)
    travel = utcnow() + 3 * DAY
    schedule_for_date(referral, "travel_date", travel)
    assert _nudges(session, referral.id, "travel_in_7_days") == []
    assert _states(session, referral.id, "travel_in_1_day") == [(0, "pending")]


def test_date_nudges_survive_an_ordinary_stage_change(factory, session, coordinator):
    referral = new_referral(factory)
    _walk(referral, TO_POST_OP[:4], coordinator)  # plan accepted
    schedule_for_date(referral, "travel_date", utcnow() + 30 * DAY)
    move_to_stage(referral, "travel_booked", coordinator)
    assert _states(session, referral.id, "travel_in_1_day") == [(0, "pending")]
    move_to_stage(referral, "lost", coordinator, reason="travel_not_possible")
    assert _states(session, referral.id, "travel_in_1_day") == [(0, "cancelled")]


# -- once, and cheaply ------------------------------------------------------------------------


def test_sweeping_twice_writes_no_duplicate_outbox_rows(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    when = referral.stage_entered_at + 3 * DAY
    assert sweep(when) >= 1
    before = outbox_count()
    assert sweep(when) == 0
    assert outbox_count() == before


def test_a_nudge_that_cannot_be_rendered_does_not_block_the_others(
    factory, session, coordinator, monkeypatch
):
    broken, healthy = new_referral(factory), new_referral(factory)
    for referral in (broken, healthy):
        move_to_stage(referral, "awaiting_mri", coordinator)
    broken.patient.time_zone = "Mars/Olympus_Mons"  # a bad row must not stop every nudge
    session.commit()
    sweep(utcnow() + 3 * DAY + MINUTE)
    assert len(outbox_for(healthy.id, rule_code="mri_missing_reminder")) == 1
    assert not outbox_for(broken.id, rule_code="mri_missing_reminder")
    [nudge] = _nudges(session, broken.id, "mri_missing_reminder")
    assert nudge.status == "cancelled"


def test_the_sweep_reads_scheduled_nudges_by_status_and_due_time(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    statements: list[str] = []
    connection = session.connection()

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        sweep(utcnow())  # nothing due
    finally:
        event.remove(connection, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements
    assert "scheduled_nudges.status" in selects[0] and "scheduled_nudges.due_at" in selects[0]
    assert "referrals" not in selects[0].split("FROM", 1)[1].split("WHERE", 1)[0]


@postgres_only
def test_the_sweep_query_uses_the_due_index_on_postgresql(factory, session, coordinator):
    referral = new_referral(factory)
    rule_id = session.scalar(select(NudgeRule.id).where(NudgeRule.code == "mri_missing_reminder"))
    session.execute(
        text(
            "INSERT INTO scheduled_nudges "
            "(rule_id, referral_id, trigger_at, occurrence, due_at, status, created_at) "
            "SELECT :rule, :referral, now() - make_interval(secs => n), 0, "
            "now() - make_interval(secs => n), 'fired', now() "
            "FROM generate_series(1, 20000) AS n"
        ),
        {"rule": rule_id, "referral": referral.id},
    )
    session.execute(text("ANALYZE scheduled_nudges"))
    due = (
        select(ScheduledNudge)
        .where(ScheduledNudge.status == "pending", ScheduledNudge.due_at <= utcnow())
        .order_by(ScheduledNudge.due_at, ScheduledNudge.id)
        .limit(200)
        .with_for_update(skip_locked=True, of=ScheduledNudge)
    )
    compiled = due.compile(dialect=session.get_bind().dialect)
    rows = session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    plan = "\n".join(row[0] for row in rows)
    assert "ix_scheduled_nudges_due" in plan, plan
    assert "Seq Scan on scheduled_nudges" not in plan, plan


def test_resuming_from_hold_does_not_resend_the_stages_immediate_messages(
    factory, session, coordinator
):
    referral = new_referral(factory)
    before = len(outbox_for(referral.id))
    move_to_stage(referral, "on_hold", coordinator, note="patient travelling")
    move_to_stage(referral, "enquiry", coordinator)
    session.commit()
    assert len(outbox_for(referral.id)) == before


def test_resuming_from_hold_restarts_the_stages_reminders(factory, session, coordinator):
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator)
    move_to_stage(referral, "on_hold", coordinator)
    move_to_stage(referral, "awaiting_mri", coordinator)
    session.commit()
    pending = [
        n for n in _nudges(session, referral.id, "mri_missing_reminder") if n.status == "pending"
    ]
    assert len(pending) == 1
    assert pending[0].trigger_at == referral.stage_entered_at


def test_loading_the_rules_switches_off_retired_ones_and_leaves_admin_rules_alone(session):
    from crm.nudges.operations import load_rules
    from tests.conftest import ROOT

    session.add(
        NudgeRule(
            code="follow_up_day_1",
            trigger="stage_entered",
            stage="post_op",
            offset_minutes=1440,
            audience="patient",
            channels=["sms"],
            kind="follow_up_checkin",
        )
    )
    session.add(
        NudgeRule(
            code="admin_made",
            trigger="stage_entered",
            stage="enquiry",
            audience="coordinator",
            channels=["email"],
            kind="ad_hoc",
        )
    )
    session.flush()
    load_rules(ROOT / "config" / "nudge_rules.toml")
    active = dict(session.execute(select(NudgeRule.code, NudgeRule.active)).all())
    assert active["follow_up_day_1"] is False
    assert active["admin_made"] is True
    assert active["follow_up_checkin"] is True
