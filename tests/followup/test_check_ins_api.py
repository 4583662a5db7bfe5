"""The staff follow-up endpoints: the list, and answers entered from a phone call."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.db import utcnow
from crm.tasks.models import Task
from tests.followup.test_check_ins import CALM
from tests.helpers import API, assert_problem, field_errors
from tests.travel.support import discharged_referral

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")


@pytest.fixture
def discharged(factory, agency, coordinator):
    return discharged_referral(factory, agency, coordinator, utcnow() - timedelta(hours=1))


def _answer(client, caller, referral_id, label, **answers):
    return client.post(
        f"{API}/referrals/{referral_id}/check-ins/{label}/answers",
        json={**CALM, **answers},
        headers=caller.headers(),
    )


def test_staff_list_the_check_ins_in_schedule_order(client, discharged, factory):
    response = client.get(
        f"{API}/referrals/{discharged.id}/check-ins", headers=factory.staff("specialist").headers()
    )
    assert response.status_code == 200
    assert [c["label"] for c in response.json] == [
        "day_1",
        "week_2",
        "week_6_return_to_activity",
        "month_3",
    ]
    assert {c["status"] for c in response.json} == {"unanswered"}


def test_agencies_do_not_see_the_answers(client, discharged, agency):
    response = client.get(f"{API}/referrals/{discharged.id}/check-ins", headers=agency.headers())
    assert_problem(response, 403, "forbidden")


def test_a_coordinator_enters_answers_from_a_call(client, session, discharged, coordinator):
    response = _answer(client, coordinator, discharged.id, "day_1", leg_pain=7)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "answered"
    assert response.json["alert"] == "high_score"
    urgent = session.scalars(select(Task).where(Task.referral_id == discharged.id)).all()
    assert [t.priority for t in urgent] == ["urgent"]


def test_answering_twice_is_409(client, discharged, coordinator):
    assert _answer(client, coordinator, discharged.id, "day_1").status_code == 200
    assert_problem(_answer(client, coordinator, discharged.id, "day_1"), 409, "conflict")


def test_an_unknown_label_is_404(client, discharged, coordinator):
    assert_problem(_answer(client, coordinator, discharged.id, "year_5"), 404, "not-found")


def test_invalid_answers_are_422_naming_the_field(client, discharged, coordinator):
    response = _answer(client, coordinator, discharged.id, "day_1", back_pain=12)
    assert "back_pain" in field_errors(assert_problem(response, 422, "validation-failed"))


@pytest.mark.parametrize("role", ["specialist", "agency"])
def test_only_coordinators_and_managers_enter_answers(client, factory, discharged, agency, role):
    caller = agency if role == "agency" else factory.staff(role)
    assert_problem(_answer(client, caller, discharged.id, "day_1"), 403, "forbidden")


def test_an_opened_bleeding_wound_reaches_the_coordinator_at_once(
    client, session, discharged, coordinator
):
    response = _answer(
        client,
        coordinator,
        discharged.id,
        "day_1",
        wound="opened",
        free_text="the wound is open and bleeding",
    )
    assert response.status_code == 200, response.json
    assert response.json["alert"] == "red_flag"
    tasks = session.scalars(
        select(Task).where(Task.referral_id == discharged.id).order_by(Task.id)
    ).all()
    assert [t.priority for t in tasks] == ["urgent", "normal"]
    assert "the wound is open and bleeding" in tasks[1].detail
    detail = client.get(f"{API}/referrals/{discharged.id}", headers=coordinator.headers())
    assert [n["body"] for n in detail.json["notes"]] == ["the wound is open and bleeding"]


def test_fever_is_required_and_stored(client, discharged, coordinator):
    body = dict(CALM)
    del body["fever"]
    response = client.post(
        f"{API}/referrals/{discharged.id}/check-ins/day_1/answers",
        json=body,
        headers=coordinator.headers(),
    )
    assert "fever" in field_errors(assert_problem(response, 422, "validation-failed"))
    answered = _answer(client, coordinator, discharged.id, "day_1", fever=True)
    assert (answered.json["answers"]["fever"], answered.json["alert"]) == (True, "red_flag")


def test_a_check_in_before_its_window_is_409_and_does_not_complete_the_referral(
    client, session, discharged, coordinator
):
    response = _answer(client, coordinator, discharged.id, "month_3")
    body = assert_problem(response, 409, "conflict")
    assert "not open yet" in body["detail"]
    session.refresh(discharged)
    assert discharged.stage == "post_op"
