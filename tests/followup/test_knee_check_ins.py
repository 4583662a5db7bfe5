"""A second procedure's check-ins are catalogue data: knee replacement asks its own
questions, and its rules (a possible clot in the calf is a red flag) alert from data."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.catalogue.queries import procedure_by_code
from crm.core.actors import Actor
from crm.core.errors import ValidationFailed
from crm.followup.operations import record_answers
from crm.followup.queries import check_ins_of
from crm.tasks.models import Task
from tests.followup.support import KNEE_CALM, check_in, knee_patient_after_surgery
from tests.helpers import API, assert_problem, field_errors
from tests.messaging.support import outbox_for

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")


@pytest.fixture
def knee(factory, agency, coordinator):
    return knee_patient_after_surgery(factory, agency, coordinator)


def _patient(referral) -> Actor:
    return Actor("patient", referral.patient_id, f"patient {referral.patient_id} (link)")


def _answer(referral, label, **answers):
    due = check_in(referral, label)
    return record_answers(due, {**KNEE_CALM, **answers}, _patient(referral), now=due.due_at)


def _tasks(session, referral):
    return session.scalars(select(Task).where(Task.referral_id == referral.id)).all()


def test_the_knee_schedule_comes_from_its_catalogue_row(knee):
    labels = [c.label for c in check_ins_of(knee.id)]
    assert labels == ["day_1", "week_2", "week_6", "month_3", "year_1"]


def test_calm_knee_answers_are_stored_by_question_code_and_raise_nothing(session, knee):
    answered = _answer(knee, "day_1")
    assert answered.answers == {k: v for k, v in KNEE_CALM.items() if k != "free_text"}
    assert answered.alert == "none"
    assert not _tasks(session, knee)


def test_calf_pain_raises_an_urgent_task_for_a_possible_clot(session, knee):
    answered = _answer(knee, "day_1", calf_pain_or_swelling=True)
    assert answered.alert == "red_flag"
    [task] = _tasks(session, knee)
    assert task.priority == "urgent" and task.source == "alert"
    assert "calf pain or swelling (possible deep vein thrombosis)" in task.detail
    assert len(outbox_for(knee.id, kind="follow_up_alert_coordinator")) == 1


def test_new_breathlessness_is_a_red_flag_too(knee):
    assert _answer(knee, "day_1", breathless_or_chest_pain=True).alert == "red_flag"


def test_a_knee_swelling_more_opens_a_task_that_is_not_urgent(session, knee):
    answered = _answer(knee, "day_1", knee_swelling="getting_worse")
    assert answered.alert == "none"
    [task] = _tasks(session, knee)
    assert task.priority == "normal"
    assert "the knee is more swollen than before" in task.detail


def test_a_knee_pain_at_the_catalogues_threshold_is_a_high_score(knee):
    assert _answer(knee, "day_1", knee_pain=7).alert == "high_score"


def test_the_high_score_threshold_is_read_from_the_catalogue_row(session, knee):
    row = procedure_by_code("knee_replacement")
    row.check_in_questions = [
        {**q, "high_score": 9} if q["code"] == "knee_pain" else q for q in row.check_in_questions
    ]
    session.flush()
    assert _answer(knee, "day_1", knee_pain=8).alert == "none"


def test_the_rise_that_alerts_is_read_from_the_catalogue_row(session, knee):
    row = procedure_by_code("knee_replacement")
    row.check_in_questions = [
        {**q, "rising": 2} if q["code"] == "knee_pain" else q for q in row.check_in_questions
    ]
    session.flush()
    _answer(knee, "day_1", knee_pain=2)
    answered = _answer(knee, "week_2", knee_pain=4)
    assert answered.alert == "rising"
    assert "knee pain rose from 2 to 4" in _tasks(session, knee)[0].detail


def test_a_spine_question_is_not_a_knee_question(knee):
    with pytest.raises(ValidationFailed) as refused:
        _answer(knee, "day_1", saddle_numbness=True)
    errors = refused.value.extensions["errors"]
    assert errors == [{"field": "saddle_numbness", "reason": "not a field this endpoint takes"}]


def test_every_knee_question_must_be_answered(knee):
    answers = {k: v for k, v in KNEE_CALM.items() if k != "calf_pain_or_swelling"}
    due = check_in(knee, "day_1")
    with pytest.raises(ValidationFailed) as refused:
        record_answers(due, answers, _patient(knee), now=due.due_at)
    assert {e["field"] for e in refused.value.extensions["errors"]} == {"calf_pain_or_swelling"}


def _post(client, caller, referral, label, **answers):
    return client.post(
        f"{API}/referrals/{referral.id}/check-ins/{label}/answers",
        json={**KNEE_CALM, **answers},
        headers=caller.headers(),
    )


def test_the_api_takes_the_knee_answers_and_shows_them_by_code(client, knee, coordinator):
    response = _post(client, coordinator, knee, "day_1", calf_pain_or_swelling=True)
    assert response.status_code == 200, response.json
    assert response.json["answers"]["calf_pain_or_swelling"] is True
    assert response.json["alert"] == "red_flag"


def test_an_unknown_question_is_422_naming_it(client, knee, coordinator):
    response = _post(client, coordinator, knee, "day_1", back_pain=2)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert errors == {"back_pain": "not a field this endpoint takes"}


def test_a_score_out_of_range_is_422_naming_it(client, knee, coordinator):
    response = _post(client, coordinator, knee, "day_1", knee_pain=11)
    assert "knee_pain" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_an_option_the_question_does_not_have_is_422_naming_it(client, knee, coordinator):
    response = _post(client, coordinator, knee, "day_1", knee_swelling="huge")
    assert "knee_swelling" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_a_score_given_as_text_is_422(client, knee, coordinator):
    response = _post(client, coordinator, knee, "day_1", knee_pain="3")
    assert "knee_pain" in field_errors(assert_problem(response, 422, "validation-failed"))
