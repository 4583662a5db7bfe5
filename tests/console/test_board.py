"""The pipeline board: columns with counts, cards that say what needs attention, filters,
and moving a card through the same guarded operation as the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.referrals.models import Referral, StageTransition
from crm.referrals.operations import assign_owner, move_to_stage
from crm.tasks.models import Task
from crm.tasks.operations import open_task, update_task
from tests.console.support import csrf_token, sign_in, staff_with_password

BOARD = "/console/board"
MOVE = "/console/board/move"


@pytest.fixture
def coordinator_in(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    return user


def _page(client, path: str = BOARD) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return page.get_data(as_text=True)


def _column(html: str, stage: str) -> str:
    """The HTML of one column, from its heading to the next column."""
    start = html.index(f'id="col-{stage}"')
    end = html.find('<section class="board-column"', start)
    return html[start : end if end != -1 else len(html)]


def _count(html: str, stage: str) -> int:
    found = re.search(rf'id="col-{stage}">[^<]*<span class="count">(\d+)<', html)
    assert found, f"no count for {stage}"
    return int(found.group(1))


def _card(html: str, referral: Referral) -> str:
    start = html.index(f'id="r-{referral.id}"')
    return html[start : html.index("</li>", start)]


def _move(client, referral: Referral, to: str, **extra: str):
    form = {"referral_id": str(referral.id), "to": to, "back": BOARD, **extra}
    return client.post(MOVE, data={**form, "csrf_token": csrf_token(client, BOARD)})


def _aged(session, referral: Referral, **age: float) -> Referral:
    referral.stage_entered_at = utcnow() - timedelta(**age)
    session.commit()
    return referral


# -- columns and cards ----------------------------------------------------------------


def test_each_stage_is_a_column_with_its_count_and_closed_stages_are_counts_only(
    client, session, factory, coordinator_in, without_clinical_guards
):
    agency = factory.agency()
    for _ in range(2):
        factory.referral(agency)
    waiting = factory.referral(agency)
    move_to_stage(waiting, "awaiting_mri", agency.actor)
    lost = factory.referral(agency)
    move_to_stage(lost, "lost", agency.actor, reason="price")
    session.commit()
    html = _page(client)
    assert (_count(html, "enquiry"), _count(html, "awaiting_mri")) == (2, 1)
    assert _count(html, "on_hold") == 0
    assert 'id="col-lost"' not in html and 'id="col-completed"' not in html
    assert ">Lost: 1</a>" in html and "/console/search?stage=lost" in html
    assert '<h2 id="col-mri_review">MRI review' in html


def test_a_card_shows_initials_not_the_name_the_reference_procedure_agency_and_days(
    client, session, factory, coordinator_in
):
    referral = factory.referral(
        factory.agency("Istanbul Care"), patient={"given_name": "Zeynep", "family_name": "Kaya"}
    )
    _aged(session, referral, days=3, hours=2)
    card = _card(_page(client), referral)
    assert ">ZK<" in card
    assert "Zeynep" not in card and "Kaya" not in card
    assert f'href="/console/referrals/{referral.id}"' in card and referral.reference in card
    assert "Microdiscectomy" in card and "Istanbul Care" in card
    assert "3 days in stage" in card


def test_a_direct_enquiry_says_direct(client, session, factory, coordinator_in):
    referral = factory.referral(factory.staff())
    assert "· Direct" in _card(_page(client), referral)


def test_the_oldest_in_stage_comes_first(client, session, factory, coordinator_in):
    agency = factory.agency()
    newer = _aged(session, factory.referral(agency), hours=1)
    older = _aged(session, factory.referral(agency), hours=5)
    html = _page(client)
    assert html.index(f'id="r-{older.id}"') < html.index(f'id="r-{newer.id}"')


def test_a_full_column_is_capped_with_a_link_to_the_rest(
    client, session, factory, coordinator_in, monkeypatch
):
    monkeypatch.setattr("crm.referrals.board.PER_COLUMN", 2)
    agency = factory.agency()
    for _ in range(3):
        factory.referral(agency)
    column = _column(_page(client), "enquiry")
    assert column.count('<li class="board-card') == 2
    assert "and 1 more in Enquiry" in column
    assert "/console/search?stage=enquiry" in column


def test_a_referral_past_its_service_level_says_how_late_in_words(
    app, client, session, factory, coordinator_in, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "FIRST_RESPONSE_SLA_HOURS", 24)
    late = _aged(session, factory.referral(factory.agency()), hours=29, minutes=10)
    in_time = _aged(session, factory.referral(factory.agency()), hours=20)
    html = _page(client)
    assert "SLA breached: late by 5\u00a0h" in _card(html, late)
    assert "late by" not in _card(html, in_time)


def test_days_late_are_said_in_days(app, client, session, factory, coordinator_in, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "FIRST_RESPONSE_SLA_HOURS", 24)
    late = _aged(session, factory.referral(factory.agency()), days=4, hours=1)
    assert "late by 3\u00a0d" in _card(_page(client), late)


def test_an_open_urgent_alert_task_marks_the_card_until_it_is_closed(
    client, session, factory, coordinator_in
):
    referral = factory.referral(factory.agency())
    task = open_task(referral, "URGENT follow-up alert", "alert", priority="urgent")
    session.commit()
    assert "Urgent alert open" in _card(_page(client), referral)
    update_task(task, {"status": "done"}, factory.staff().actor)
    session.commit()
    assert "Urgent alert open" not in _card(_page(client), referral)


def test_a_patients_sms_reply_is_unread_until_a_coordinator_opens_the_conversation(
    app, client, session, factory, coordinator_in, monkeypatch
):
    referral = factory.referral(factory.agency(), patient={"phone": "+905321110099"})
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", "board-token")
    for sid in ("SMboard1", "SMboard2"):
        form = {"MessageSid": sid, "From": "+905321110099", "To": "+15005550006", "Body": "Hi?"}
        url = app.config["CRM"]["PUBLIC_BASE_URL"] + "/webhooks/twilio/inbound"
        signature = RequestValidator("board-token").compute_signature(url, form)
        headers = {"X-Twilio-Signature": signature}
        answer = client.post("/webhooks/twilio/inbound", data=form, headers=headers)
        assert answer.status_code == 200
    assert "2 unread messages from the patient" in _card(_page(client), referral)
    first = session.scalars(select(Task).where(Task.referral_id == referral.id)).first()
    update_task(first, {"status": "done"}, factory.staff().actor)
    session.commit()
    assert "2 unread messages" in _card(_page(client), referral)  # a task is not a reading
    client.get(f"/console/referrals/{referral.id}")
    assert "unread" not in _card(_page(client), referral)


# -- filters --------------------------------------------------------------------------


def test_the_board_filters_by_agency(client, session, factory, coordinator_in):
    ours, theirs = factory.agency(), factory.agency()
    mine, other = factory.referral(ours), factory.referral(theirs)
    html = _page(client, f"{BOARD}?agency={ours.actor.agency_id}")
    assert f'id="r-{mine.id}"' in html and f'id="r-{other.id}"' not in html
    assert _count(html, "enquiry") == 1


def test_the_board_filters_unassigned_and_by_owner(client, session, factory, coordinator_in):
    agency = factory.agency()
    owned, free = factory.referral(agency), factory.referral(agency)
    assign_owner(owned, coordinator_in.id, agency.actor)
    session.commit()
    unassigned = _page(client, f"{BOARD}?owner=unassigned")
    assert f'id="r-{free.id}"' in unassigned and f'id="r-{owned.id}"' not in unassigned
    by_owner = _page(client, f"{BOARD}?owner={coordinator_in.id}")
    assert f'id="r-{owned.id}"' in by_owner and f'id="r-{free.id}"' not in by_owner


def test_the_board_filters_by_patient_language_and_procedure(
    client, session, factory, coordinator_in
):
    agency = factory.agency()
    german = factory.referral(agency)
    turkish = factory.referral(agency, patient={"language": "tr"})
    html = _page(client, f"{BOARD}?language=tr&procedure=microdiscectomy")
    assert f'id="r-{turkish.id}"' in html and f'id="r-{german.id}"' not in html
    assert f'id="r-{german.id}"' not in _page(client, f"{BOARD}?procedure=no-such-procedure")


def test_reading_the_board_is_audited_once_with_the_referrals_shown(
    client, session, factory, coordinator_in
):
    referral = factory.referral(factory.agency())
    _page(client)
    [read] = session.scalars(select(AuditEvent).where(AuditEvent.action == "board.read")).all()
    assert read.actor_id == coordinator_in.id
    assert referral.id in read.detail["referral_ids"]


# -- moving a card --------------------------------------------------------------------


def test_moving_a_card_through_its_form_moves_the_referral_and_records_the_transition(
    client, session, factory, coordinator_in
):
    referral = factory.referral(factory.agency())
    response = _move(client, referral, "awaiting_mri", note="asked for the MRI by phone")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{BOARD}#r-{referral.id}")
    session.refresh(referral)
    assert referral.stage == "awaiting_mri"
    last = session.scalars(
        select(StageTransition)
        .where(StageTransition.referral_id == referral.id)
        .order_by(StageTransition.id.desc())
    ).first()
    assert (last.from_stage, last.to_stage, last.actor_id) == (
        "enquiry",
        "awaiting_mri",
        coordinator_in.id,
    )
    assert last.note == "asked for the MRI by phone"
    assert f"{referral.reference} moved to Awaiting MRI." in _page(client)


def test_a_card_offers_only_the_moves_the_state_machine_allows(
    client, session, factory, coordinator_in
):
    referral = factory.referral(factory.agency())
    card = _card(_page(client), referral)
    select_to = card.split('name="to"')[1].split("</select>")[0]
    offered = set(re.findall(r'<option value="([a-z_]+)">', select_to))
    assert offered == {"awaiting_mri", "mri_review", "lost", "on_hold"}


def test_a_guard_refusal_is_shown_in_words_naming_the_referral_and_nothing_changes(
    client, session, factory, coordinator_in
):
    referral = factory.referral(factory.agency())
    _move(client, referral, "mri_review")
    html = _page(client)
    assert "Not done: an MRI study must be uploaded before the specialist review." in html
    assert f"{referral.reference} was not moved: it stays in Enquiry." in html
    session.refresh(referral)
    assert referral.stage == "enquiry"
    assert len(referral.history) == 1


def test_moving_to_lost_needs_a_reason_and_records_it(client, session, factory, coordinator_in):
    referral = factory.referral(factory.agency())
    _move(client, referral, "lost", reason="")
    assert "a reason is required to mark a referral lost" in _page(client)
    session.refresh(referral)
    assert referral.stage == "enquiry"
    _move(client, referral, "lost", reason="price")
    session.refresh(referral)
    assert (referral.stage, referral.lost_reason) == ("lost", "price")


def test_moving_a_referral_that_does_not_exist_is_a_404_page(client, session, coordinator_in):
    response = client.post(
        MOVE,
        data={"referral_id": "999999", "to": "lost", "csrf_token": csrf_token(client, BOARD)},
    )
    assert response.status_code == 404
    assert "no referral 999999" in response.get_data(as_text=True)


def test_a_move_without_the_csrf_token_is_refused_and_moves_nothing(
    client, session, factory, coordinator_in
):
    referral = factory.referral(factory.agency())
    response = client.post(MOVE, data={"referral_id": str(referral.id), "to": "awaiting_mri"})
    assert response.status_code == 400
    session.refresh(referral)
    assert referral.stage == "enquiry"


def test_the_move_takes_the_roles_of_the_transitions_api(app):
    # POST /api/v1/referrals/<id>/transitions is staff_only("coordinator", "specialist",
    # "manager"); an admin may do everything.
    assert app.view_functions["console.board_move"].console_roles == {
        "coordinator",
        "specialist",
        "manager",
    }


def test_a_specialist_sees_the_board_and_may_send_a_case_back_as_the_api_allows(
    client, session, factory, without_clinical_guards
):
    referral = factory.referral(factory.agency())
    move_to_stage(referral, "mri_review", factory.staff().actor)
    session.commit()
    sign_in(client, staff_with_password(session, "specialist").email)
    assert f"Move {referral.reference}" in _card(_page(client), referral)
    _move(client, referral, "awaiting_mri", note="the MRI is of the wrong level")
    session.refresh(referral)
    assert referral.stage == "awaiting_mri"


def test_signed_out_a_move_goes_to_sign_in_and_moves_nothing(client, session, factory):
    referral = factory.referral(factory.agency())
    token = csrf_token(client)
    response = client.post(
        MOVE, data={"referral_id": str(referral.id), "to": "awaiting_mri", "csrf_token": token}
    )
    assert response.status_code == 303
    assert "/console/sign-in" in response.headers["Location"]
    session.refresh(referral)
    assert referral.stage == "enquiry"


def test_signed_out_the_board_sends_to_sign_in(client):
    response = client.get(BOARD)
    assert response.status_code == 302
    assert "/console/sign-in" in response.headers["Location"]
