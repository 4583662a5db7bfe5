"""Check-ins: scheduled from the catalogue at discharge, answered once, alerts, completion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.catalogue.queries import procedure_by_code
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, Forbidden, ValidationFailed
from crm.followup.models import CheckIn
from crm.followup.operations import assess, record_answers
from crm.followup.queries import check_ins_of, open_check_in
from crm.nudges.jobs import sweep
from crm.nudges.models import NudgeRule, ScheduledNudge
from crm.referrals.operations import assign_owner, move_to_stage
from crm.tasks.models import Task
from crm.travel.operations import record_departure
from tests.messaging.support import outbox_for
from tests.travel.support import discharged_referral

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

DAY = timedelta(days=1)
CALM = {
    "back_pain": 2,
    "leg_pain": 1,
    "numbness": False,
    "weakness": False,
    "wound": "healing_well",
    "bladder_or_bowel_trouble": False,
    "saddle_numbness": False,
    "fever": False,
    "free_text": "",
}


def _patient(referral) -> Actor:
    return Actor("patient", referral.patient_id, f"patient {referral.patient_id} (link)")


@pytest.fixture
def spine(session):
    """Microdiscectomy's questions and rules, as the catalogue holds them."""
    return procedure_by_code("microdiscectomy").check_in_form


@pytest.fixture
def discharged(factory, agency, coordinator):
    """Discharged an hour ago: day 1 is due tomorrow, the rest later."""
    return discharged_referral(factory, agency, coordinator, utcnow() - timedelta(hours=1))


def _check_in(referral, label) -> CheckIn:
    return next(c for c in check_ins_of(referral.id) if c.label == label)


def _answer(referral, label, **answers):
    """Answered when it falls due (a check-in opens a day before)."""
    check_in = _check_in(referral, label)
    return record_answers(check_in, {**CALM, **answers}, _patient(referral), now=check_in.due_at)


def _checkin_nudges(session, referral_id):
    return list(
        session.scalars(
            select(ScheduledNudge)
            .join(NudgeRule)
            .where(ScheduledNudge.referral_id == referral_id, NudgeRule.code == "follow_up_checkin")
            .order_by(ScheduledNudge.due_at)
        )
    )


def test_discharge_schedules_a_nudge_for_every_check_in(session, discharged):
    check_ins = check_ins_of(discharged.id)
    nudges = _checkin_nudges(session, discharged.id)
    assert [n.due_at for n in nudges] == [c.due_at for c in check_ins]
    assert {n.status for n in nudges} == {"pending"}


def test_a_due_check_in_sends_the_patient_the_link(session, discharged):
    day_1 = _check_in(discharged, "day_1")
    sweep(day_1.due_at - timedelta(seconds=1))
    assert not outbox_for(discharged.id, kind="follow_up_checkin")
    sweep(day_1.due_at)
    [message] = outbox_for(discharged.id, kind="follow_up_checkin")
    assert message.audience == "patient"
    assert message.rule_code == "follow_up_checkin"


def test_the_open_check_in_is_the_earliest_due_within_a_day(discharged):
    day_1 = _check_in(discharged, "day_1")
    assert open_check_in(discharged.id, now=day_1.due_at - 2 * DAY) is None
    assert open_check_in(discharged.id, now=day_1.due_at - DAY) == day_1
    assert open_check_in(discharged.id, now=day_1.due_at + 30 * DAY) == day_1  # still unanswered
    _answer(discharged, "day_1")
    week_2 = _check_in(discharged, "week_2")
    assert open_check_in(discharged.id, now=day_1.due_at + 30 * DAY) == week_2


def test_answers_are_stored_and_the_reminder_is_cancelled(session, discharged):
    check_in = _answer(discharged, "day_1", back_pain=3, free_text="a little sore")
    assert (check_in.answers["back_pain"], check_in.free_text) == (3, "a little sore")
    assert check_in.alert == "none"
    assert check_in.answered_at is not None
    statuses = [n.status for n in _checkin_nudges(session, discharged.id)]
    assert statuses == ["cancelled", "pending", "pending", "pending"]


def test_answering_twice_is_a_conflict(discharged):
    _answer(discharged, "day_1")
    with pytest.raises(Conflict):
        _answer(discharged, "day_1")


def test_agencies_cannot_answer(discharged, agency):
    with pytest.raises(Forbidden):
        record_answers(_check_in(discharged, "day_1"), CALM, agency.actor)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"back_pain": 11}, "back_pain"),
        ({"leg_pain": -1}, "leg_pain"),
        ({"wound": "fine"}, "wound"),
        ({"free_text": "x" * 2001}, "free_text"),
        ({"saddle_numbness": None}, "saddle_numbness"),
    ],
)
def test_invalid_answers_are_refused(discharged, answers, field):
    with pytest.raises(ValidationFailed) as raised:
        _answer(discharged, "day_1", **answers)
    assert field in {e["field"] for e in raised.value.extensions["errors"]}


@pytest.mark.parametrize(
    ("answers", "previous", "alert"),
    [
        ({**CALM}, None, "none"),
        ({**CALM, "back_pain": 7}, None, "high_score"),
        ({**CALM, "leg_pain": 9}, None, "high_score"),
        ({**CALM, "leg_pain": 5}, {"back_pain": 2, "leg_pain": 2}, "rising"),
        ({**CALM, "back_pain": 4}, {"back_pain": 2, "leg_pain": 2}, "none"),
        ({**CALM, "bladder_or_bowel_trouble": True}, None, "red_flag"),
        ({**CALM, "saddle_numbness": True, "back_pain": 9}, {"back_pain": 2}, "red_flag"),
        ({**CALM, "back_pain": 8}, {"back_pain": 2, "leg_pain": 1}, "high_score"),
    ],
)
def test_the_most_severe_alert_wins(spine, answers, previous, alert):
    assert assess(spine, answers, previous).alert == alert


def test_a_high_score_opens_an_urgent_task_for_the_owner_and_emails_them(
    session, discharged, coordinator
):
    assign_owner(discharged, coordinator.actor.id, coordinator.actor)
    check_in = _answer(discharged, "day_1", back_pain=8)
    assert check_in.alert == "high_score"
    [task] = session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert (task.priority, task.source, task.owner_id) == ("urgent", "alert", coordinator.actor.id)
    assert task.due_at <= check_in.answered_at
    assert "back pain 8/10" in task.detail
    [email] = outbox_for(discharged.id, kind="follow_up_alert_coordinator")
    assert email.channel == "email" and email.audience == "coordinator"
    assert "day_1" in email.body_text


def test_a_rise_of_three_against_the_previous_answer_alerts(session, discharged):
    _answer(discharged, "day_1", leg_pain=2)
    check_in = _answer(discharged, "week_2", leg_pain=5)
    assert check_in.alert == "rising"
    [task] = session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert "leg pain rose from 2 to 5" in task.detail


def test_a_red_flag_alerts_even_with_low_pain(session, discharged):
    check_in = _answer(discharged, "day_1", bladder_or_bowel_trouble=True)
    assert check_in.alert == "red_flag"
    assert session.scalars(
        select(Task.priority).where(Task.referral_id == discharged.id)
    ).all() == ["urgent"]
    assert len(outbox_for(discharged.id, kind="follow_up_alert_coordinator")) == 1


def test_no_alert_no_task(session, discharged):
    _answer(discharged, "day_1")
    assert not session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert not outbox_for(discharged.id, kind="follow_up_alert_coordinator")


def _went_home(referral, coordinator):
    record_departure(referral, utcnow(), coordinator.actor)


def test_the_last_answer_completes_the_referral(discharged, coordinator):
    _went_home(discharged, coordinator)
    for label in ("day_1", "week_2", "week_6_return_to_activity"):
        _answer(discharged, label)
        assert discharged.stage == "follow_up"
    _answer(discharged, "month_3")
    assert discharged.stage == "completed"
    assert discharged.history[-1].actor_type == "system"


def test_the_last_answer_completes_even_if_an_earlier_one_was_skipped(discharged, coordinator):
    _went_home(discharged, coordinator)
    _answer(discharged, "month_3")
    assert discharged.stage == "completed"


def test_a_last_answer_with_an_alert_leaves_the_referral_open_for_the_coordinator(
    discharged, coordinator
):
    _went_home(discharged, coordinator)
    _answer(discharged, "month_3", saddle_numbness=True)
    assert discharged.stage == "follow_up"


def test_a_lost_referral_gets_no_more_check_in_messages(session, discharged, coordinator):
    move_to_stage(discharged, "lost", coordinator.actor, reason="patient_withdrew")
    assert {n.status for n in _checkin_nudges(session, discharged.id)} == {"cancelled"}


def test_a_manual_move_to_post_op_still_creates_the_check_ins(
    session, factory, agency, coordinator
):
    referral = factory.referral(agency)
    for stage in [
        "awaiting_mri",
        "mri_review",
        "plan_offered",
        "plan_accepted",
        "travel_booked",
        "in_treatment",
        "post_op",
    ]:
        move_to_stage(referral, stage, coordinator.actor)
    labels = [c.label for c in check_ins_of(referral.id)]
    assert labels == ["day_1", "week_2", "week_6_return_to_activity", "month_3"]
    day_1 = _check_in(referral, "day_1")
    assert day_1.due_at == referral.stage_entered_at + DAY


def test_a_recorded_discharge_counts_the_check_ins_from_the_discharge_time(discharged):
    day_1 = _check_in(discharged, "day_1")
    assert day_1.due_at > utcnow()  # discharged an hour ago: due in about 23 hours
    assert day_1.due_at < utcnow() + DAY


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({"wound": "opened"}, "the wound has opened"),
        ({"wound": "discharge"}, "the wound is leaking fluid"),
        ({"fever": True}, "fever"),
        ({"wound": "red_or_swollen", "fever": True}, "fever with a red or swollen wound"),
    ],
)
def test_the_wound_and_fever_are_red_flags(spine, answers, reason):
    assessment = assess(spine, {**CALM, **answers}, None)
    assert (assessment.alert, assessment.reasons) == ("red_flag", (reason,))


def test_a_red_wound_without_fever_is_not_urgent_but_watched(spine):
    assessment = assess(spine, {**CALM, "wound": "red_or_swollen"}, None)
    assert assessment.alert == "none"
    assert assessment.watch == ("the wound is red or swollen (no fever)",)


def test_an_opened_wound_opens_an_urgent_task_and_emails_the_coordinator(session, discharged):
    check_in = _answer(discharged, "day_1", wound="opened")
    assert check_in.alert == "red_flag"
    [task] = session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert task.priority == "urgent"
    assert "the wound has opened" in task.detail
    assert len(outbox_for(discharged.id, kind="follow_up_alert_coordinator")) == 1


def test_free_text_goes_on_the_timeline_and_opens_a_task(session, discharged):
    _answer(discharged, "day_1", free_text="I cannot sleep on my side")
    [note] = discharged.notes
    assert note.body == "I cannot sleep on my side"
    assert "day_1 check-in" in note.author_label
    [task] = session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert task.priority == "normal"
    assert "I cannot sleep on my side" in task.detail


def test_a_red_wound_without_fever_opens_a_task_that_is_not_urgent(session, discharged):
    _answer(discharged, "day_1", wound="red_or_swollen")
    [task] = session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert (task.priority, task.source) == ("normal", "alert")
    assert "red or swollen" in task.detail


def test_a_check_in_is_not_answered_before_its_window_opens(discharged):
    month_3 = _check_in(discharged, "month_3")
    with pytest.raises(Conflict) as refused:
        record_answers(month_3, CALM, _patient(discharged), now=month_3.due_at - 2 * DAY)
    assert "not open yet" in refused.value.detail
    assert month_3.answered_at is None


def test_a_check_in_opens_a_day_before_it_is_due(discharged):
    week_2 = _check_in(discharged, "week_2")
    answered = record_answers(week_2, CALM, _patient(discharged), now=week_2.due_at - DAY)
    assert answered.answered_at is not None


def test_the_last_answer_does_not_complete_while_an_earlier_urgent_alert_is_open(
    discharged, coordinator
):
    _went_home(discharged, coordinator)
    _answer(discharged, "day_1", fever=True)
    _answer(discharged, "month_3")
    assert discharged.stage == "follow_up"


def test_new_leg_weakness_after_spine_surgery_is_a_red_flag(spine):
    assessment = assess(spine, {**CALM, "weakness": True}, None)
    assert (assessment.alert, assessment.reasons) == ("red_flag", ("new weakness in the leg",))
