"""Messages about a referral between its agency and the coordinators: written in the
panel, the console or the API, read on the other side, each side's unread marked."""

from __future__ import annotations

from sqlalchemy import func, select

from crm.agencies.models import Agency
from crm.agency_messages.models import AgencyMessage
from crm.agency_messages.operations import TASK_TITLE, post_message
from crm.messaging.models import OutboxMessage
from crm.tasks.models import Task
from tests.console.support import post, sign_in, staff_with_password
from tests.helpers import API, assert_problem
from tests.panel.support import panel_post, signed_in_agency, text


def _messages(session) -> list[AgencyMessage]:
    return session.scalars(select(AgencyMessage).order_by(AgencyMessage.id)).all()


def test_an_agency_writes_from_the_panel_and_the_coordinator_sees_it(client, session, factory):
    agency = factory.agency("Berlin MedTravel")
    referral = factory.referral(agency)
    user = signed_in_agency(client, session, agency.actor.agency_id)
    page = f"/agency/referrals/{referral.id}"
    sent = panel_post(client, f"{page}/messages", {"body": "The MRI is on its way."}, page)
    assert sent.status_code == 303 and sent.headers["Location"].endswith("#messages")
    [message] = _messages(session)
    assert message.direction == "from_agency" and message.read_at is None
    assert message.author_label == f"{user.name} (Berlin MedTravel)"
    client.post("/console/sign-out", data={"csrf_token": _token(client, page)})
    sign_in(client, staff_with_password(session).email)
    console = text(client.get(f"/console/referrals/{referral.id}"))
    assert "Messages with the agency" in console and "The MRI is on its way." in console
    assert "1 new" in console
    session.expire_all()
    assert _messages(session)[0].read_at is not None  # the coordinator opened the page


def _token(client, page):
    from tests.console.support import csrf_token

    return csrf_token(client, page)


def test_an_agencys_message_opens_one_coordinator_task_until_it_is_read(
    client, session, factory, coordinator
):
    agency = factory.agency()
    referral = factory.referral(agency)
    post_message(referral, "first", agency.actor)
    post_message(referral, "second", agency.actor)
    tasks = session.scalars(select(Task).where(Task.title == TASK_TITLE)).all()
    assert len(tasks) == 1 and tasks[0].referral_id == referral.id


def test_a_coordinators_answer_closes_the_agency_message_task(session, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    post_message(referral, "Any news?", agency.actor)
    post_message(referral, "Review tomorrow.", coordinator.actor)
    task = session.scalars(select(Task).where(Task.title == TASK_TITLE)).one()
    assert task.status == "done"


def test_a_coordinator_writes_on_the_console_and_the_agency_sees_it_new(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    sign_in(client, staff_with_password(session).email)
    page = f"/console/referrals/{referral.id}"
    sent = post(client, f"{page}/agency-messages", {"body": "Please send the MRI."}, page)
    assert sent.status_code == 303
    client.post("/console/sign-out", data={"csrf_token": _token(client, page)})
    signed_in_agency(client, session, agency.actor.agency_id)
    listed = text(client.get("/agency/referrals"))
    assert "1 new message" in listed
    shown = text(client.get(f"/agency/referrals/{referral.id}"))
    assert "Please send the MRI." in shown and shown.count("is-new") == 1
    again = text(client.get(f"/agency/referrals/{referral.id}"))
    assert "is-new" not in again  # read when the page was opened


def test_a_message_to_the_agency_is_exactly_what_the_coordinator_typed(session, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    message = post_message(referral, "  Plan offered; see the patient's page.  ", coordinator.actor)
    assert message.body == "Plan offered; see the patient's page."
    assert message.direction == "to_agency"


def test_an_empty_message_is_refused_beside_the_form_with_nothing_stored(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    signed_in_agency(client, session, agency.actor.agency_id)
    page = f"/agency/referrals/{referral.id}"
    refused = panel_post(client, f"{page}/messages", {"body": "   "}, page)
    assert refused.status_code == 422
    assert 'id="message-error"' in text(refused) and "write a message" in text(refused)
    assert _messages(session) == []


def test_the_api_thread_works_for_the_agency_key_and_for_staff(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    url = f"{API}/referrals/{referral.id}/agency-messages"
    asked = client.post(url, json={"body": "Any news?"}, headers=agency.headers())
    assert asked.status_code == 201 and asked.json["direction"] == "from_agency"
    answered = client.post(url, json={"body": "Review tomorrow."}, headers=coordinator.headers())
    assert answered.json["direction"] == "to_agency"
    thread = client.get(url, headers=agency.headers()).json
    assert [m["body"] for m in thread] == ["Any news?", "Review tomorrow."]
    assert thread[1]["read_at"] is not None and thread[0]["read_at"] is None


def test_the_api_thread_of_another_agencys_referral_is_a_404(client, factory):
    ours, theirs = factory.agency(), factory.agency()
    referral = factory.referral(theirs)
    url = f"{API}/referrals/{referral.id}/agency-messages"
    assert_problem(client.get(url, headers=ours.headers()), 404, "not-found")
    assert_problem(
        client.post(url, json={"body": "hello"}, headers=ours.headers()), 404, "not-found"
    )


def test_a_specialist_reads_the_thread_but_may_not_write_to_the_agency(client, factory):
    agency, specialist = factory.agency(), factory.staff("specialist")
    referral = factory.referral(agency)
    url = f"{API}/referrals/{referral.id}/agency-messages"
    assert client.get(url, headers=specialist.headers()).status_code == 200
    assert_problem(
        client.post(url, json={"body": "hi"}, headers=specialist.headers()), 403, "forbidden"
    )


def test_a_direct_enquiry_has_no_agency_to_write_to(client, factory, session):
    coordinator = factory.staff()
    referral = factory.referral(coordinator)
    url = f"{API}/referrals/{referral.id}/agency-messages"
    assert_problem(
        client.post(url, json={"body": "hi"}, headers=coordinator.headers()), 409, "conflict"
    )
    assert session.scalar(select(func.count()).select_from(AgencyMessage)) == 0


def test_the_agency_is_emailed_a_link_to_its_panel_not_the_text(session, factory):
    agency, coordinator = factory.agency("Vienna Care"), factory.staff()
    referral = factory.referral(agency)
    session.get(Agency, referral.agency_id).contact_email = "desk@vienna-care.example"
    message = post_message(referral, "Pain score 8 since the fall; please call.", coordinator.actor)
    post_message(referral, "We will.", agency.actor)  # the agency's own: no email to itself
    emails = session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "agency_message_agency")
    ).all()
    [email] = emails
    assert email.idempotency_key == f"agency-message:{message.id}:email"
    assert (email.audience, email.channel, email.agency_id) == (
        "agency",
        "email",
        referral.agency_id,
    )
    assert (email.to_address, email.status) == ("desk@vienna-care.example", "queued")
    assert f"/agency/referrals/{referral.id}" in email.body_text
    assert referral.reference in email.subject
    assert "Pain score" not in email.body_text and "Pain score" not in (email.body_html or "")
