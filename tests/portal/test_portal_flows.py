"""What a patient does on the private link: read and accept the plan, answer a check-in."""

import pytest

from crm.followup.queries import check_ins_of
from crm.patients import links
from crm.plans.queries import current_plan
from crm.referrals.operations import move_to_stage
from crm.tasks.models import Task
from tests.plans.support import plan_body, reviewed_as_candidate
from tests.portal.shown import shown_fields


@pytest.fixture
def offered(client, factory):
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = reviewed_as_candidate(factory, agency, coordinator)
    response = client.post(
        f"/api/v1/referrals/{referral.id}/plans", json=plan_body(), headers=coordinator.headers()
    )
    assert response.status_code == 201
    return referral


def _url(referral, tail=""):
    return f"/p/{links.token_for(links.link_for(referral.id))}{tail}"


def test_the_plan_shows_its_items_and_total_in_the_patients_language(client, offered):
    body = client.get(_url(offered)).get_data(as_text=True)
    assert "Ihr Behandlungsplan" in body  # the factory's patient speaks German
    assert "7.100,00" in body and "€" in body  # 6,500 + 2 x 300 in German formatting


def test_accepting_needs_both_consents(client, session, offered):
    plan = current_plan(offered.id)
    data = {"plan_id": plan.id, "ack_info": "yes", **shown_fields(client, _url(offered))}
    page = client.post(_url(offered, "/accept"), data=data)
    assert page.status_code == 422
    body = page.get_data(as_text=True)
    assert "Verarbeitung meiner Gesundheitsdaten" in body.split('role="alert"', 1)[1]
    assert "data_processing" not in body
    session.refresh(offered)
    assert offered.stage == "plan_offered"


def test_accepting_with_both_consents_moves_the_referral(client, session, offered):
    plan = current_plan(offered.id)
    response = client.post(
        _url(offered, "/accept"),
        data={
            "plan_id": plan.id,
            "ack_info": "yes",
            "ack_data": "yes",
            **shown_fields(client, _url(offered)),
        },
    )
    assert response.status_code == 303
    session.refresh(offered)
    assert offered.stage == "plan_accepted"
    assert current_plan(offered.id).acceptance["consents"]["data_processing"] is True


def test_a_plan_of_another_referral_cannot_be_accepted_through_this_link(client, factory, offered):
    other = factory.referral(factory.agency())
    plan = current_plan(offered.id)
    response = client.post(
        _url(other, "/accept"), data={"plan_id": plan.id, "ack_info": "yes", "ack_data": "yes"}
    )
    assert response.status_code == 404


TO_POST_OP = (
    "awaiting_mri",
    "mri_review",
    "plan_offered",
    "plan_accepted",
    "travel_booked",
    "in_treatment",
    "post_op",
)


def test_a_red_flag_answer_tells_the_patient_to_call_and_opens_an_urgent_task(
    client, session, factory, without_clinical_guards
):
    coordinator = factory.staff("coordinator")
    referral = factory.referral(factory.agency())
    for stage in TO_POST_OP:
        move_to_stage(referral, stage, coordinator.actor)
    session.commit()
    day_1 = check_ins_of(referral.id)[0]
    day_1.due_at = referral.stage_entered_at  # due now
    session.commit()
    assert "Wie geht es Ihnen?" in client.get(_url(referral)).get_data(as_text=True)
    answer = {
        "back_pain": "3",
        "leg_pain": "2",
        "wound": "healing_well",
        "bladder_or_bowel_trouble": "yes",
    }
    response = client.post(_url(referral, "/check-in"), data=answer)
    assert response.status_code == 303
    assert "done=urgent" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Bitte rufen Sie uns sofort an" in page
    task = session.query(Task).filter_by(referral_id=referral.id, priority="urgent").one()
    assert task.source == "alert"


def test_the_check_in_form_asks_about_fever_and_a_fever_is_urgent(
    client, session, factory, without_clinical_guards
):
    coordinator = factory.staff("coordinator")
    referral = factory.referral(factory.agency())
    for stage in TO_POST_OP:
        move_to_stage(referral, stage, coordinator.actor)
    day_1 = check_ins_of(referral.id)[0]
    day_1.due_at = referral.stage_entered_at  # due now
    session.commit()
    page = client.get(_url(referral)).get_data(as_text=True)
    assert 'name="fever"' in page and "Fieber (38" in page
    answer = {"back_pain": "1", "leg_pain": "1", "wound": "healing_well", "fever": "yes"}
    response = client.post(_url(referral, "/check-in"), data=answer)
    assert "done=urgent" in response.headers["Location"]
    session.refresh(day_1)
    assert (day_1.answers["fever"], day_1.alert) == (True, "red_flag")


def test_an_absurd_plan_id_is_a_plain_not_found(client, offered):
    data = {"plan_id": str(2**40), "ack_info": "yes", "ack_data": "yes"}
    assert client.post(_url(offered, "/accept"), data=data).status_code == 404
