"""Today: my tasks by my own day, the unassigned queue, urgent alerts, the review queue and
the week's stays, each for the roles that may see it; the done button; the audit."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from crm.auth.models import StaffUser
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from crm.tasks.models import Task
from crm.tasks.operations import open_task
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.console.support import csrf_token, sign_in, staff_with_password
from tests.travel.support import accepted_referral, trip_around, utc

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

FAR_EAST = "Pacific/Kiritimati"  # UTC+14: its day is not UTC's day most of the time


def _user(session, role: str = "coordinator", zone: str = "Europe/Istanbul") -> StaffUser:
    user = staff_with_password(session, role)
    user.time_zone = zone
    session.commit()
    return user


def _task(session, referral, title: str, owner: StaffUser | None, due_at: datetime, **kw) -> Task:
    task = open_task(referral, title, kw.pop("source", "manual"), due_at=due_at, **kw)
    task.owner_id = owner.id if owner else None
    session.commit()
    return task


def _page(client, path: str = "/console/today") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return page.get_data(as_text=True)


def _section(html: str, heading_id: str) -> str:
    """The text of one <section> of the page, found by its heading's id."""
    found = re.search(rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', html, re.S)
    assert found, f"no section {heading_id}"
    return found.group(0)


def _local_day_end(zone: str) -> datetime:
    tz = ZoneInfo(zone)
    tomorrow = utcnow().astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=tz)


def test_my_overdue_and_due_today_tasks_follow_my_own_day(client, session, factory, agency):
    user = _user(session, zone=FAR_EAST)
    referral = factory.referral(agency)
    end_of_my_day = _local_day_end(FAR_EAST)
    _task(session, referral, "Call about the MRI", user, utcnow() - timedelta(hours=2))
    _task(session, referral, "Send the hotel details", user, end_of_my_day - timedelta(minutes=5))
    _task(session, referral, "Tomorrow for me", user, end_of_my_day + timedelta(hours=1))
    sign_in(client, user.email)
    mine = _section(_page(client), "mine-h")
    overdue, due_today = mine.split("Due today", 1)
    assert "Call about the MRI" in overdue and ">overdue</span>" in overdue
    assert "Send the hotel details" in due_today and "Call about the MRI" not in due_today
    assert "Tomorrow for me" not in mine


def test_another_coordinators_tasks_are_not_mine(client, session, factory, agency):
    user, other = _user(session), _user(session)
    _task(session, factory.referral(agency), "Their task", other, utcnow() - timedelta(hours=1))
    sign_in(client, user.email)
    assert "Their task" not in _section(_page(client), "mine-h")


def test_coordinators_see_the_unassigned_queue(client, session, factory, agency):
    user = _user(session)
    referral = factory.referral(agency)
    _task(session, referral, "Nobody owns this", None, utcnow() + timedelta(days=3))
    sign_in(client, user.email)
    unassigned = _section(_page(client), "unassigned-h")
    assert "Nobody owns this" in unassigned
    assert referral.patient.family_name in unassigned  # the patient named, linked
    assert f"/console/referrals/{referral.id}" in unassigned


def test_urgent_alerts_are_listed_oldest_first_with_a_link_to_the_referral(
    client, session, factory, agency
):
    user = _user(session)
    first, second = factory.referral(agency), factory.referral(agency)
    _task(session, second, "Red flag: fever", None, utcnow(), source="alert", priority="urgent")
    older = _task(
        session,
        first,
        "Red flag: saddle numbness",
        None,
        utcnow(),
        source="alert",
        priority="urgent",
    )
    older.created_at = utcnow() - timedelta(hours=3)
    _task(session, first, "A normal reply", None, utcnow(), source="reply")
    session.commit()
    sign_in(client, user.email)
    alerts = _section(_page(client), "alerts-h")
    assert alerts.index("saddle numbness") < alerts.index("fever")
    assert f'href="/console/referrals/{first.id}"' in alerts
    assert "A normal reply" not in alerts


def test_a_specialist_sees_the_review_queue_with_its_sla_and_no_tasks(
    client, session, factory, agency
):
    referral = factory.referral(agency)
    _task(session, referral, "Coordinator business", None, utcnow())
    for stage in ("awaiting_mri", "mri_review"):
        move_to_stage(referral, stage, factory.staff().actor)
    referral.stage_entered_at = utcnow() - timedelta(hours=80)  # past the review SLA
    session.commit()
    sign_in(client, _user(session, "specialist").email)
    html = _page(client)
    queue = _section(html, "queue-h")
    assert referral.patient.family_name in queue
    assert "80 h" in queue and "past SLA" in queue
    assert "Coordinator business" not in html
    assert 'id="mine-h"' not in html and 'id="alerts-h"' not in html
    assert "/console/outbox" not in html  # the outbox is not a specialist's page


def test_done_closes_the_task_like_the_api_and_is_audited(client, session, factory, agency):
    user = _user(session)
    task = _task(session, factory.referral(agency), "Close me", user, utcnow())
    sign_in(client, user.email)
    answer = client.post(
        f"/console/today/tasks/{task.id}/done",
        data={"csrf_token": csrf_token(client, "/console/today")},
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/console/today")
    session.refresh(task)
    assert (task.status, task.completed_at is not None) == ("done", True)
    assert session.scalar(
        select(AuditEvent).where(AuditEvent.action == "task.update", AuditEvent.actor_id == user.id)
    )
    page = client.get("/console/today").get_data(as_text=True)
    assert "Task marked done." in page and "Close me" not in page


def test_a_task_that_does_not_exist_is_refused_in_words(client, session):
    sign_in(client, _user(session).email)
    answer = client.post(
        "/console/today/tasks/999999/done",
        data={"csrf_token": csrf_token(client, "/console/today")},
        follow_redirects=True,
    )
    assert "no task 999999" in answer.get_data(as_text=True)


def test_a_specialist_may_not_close_tasks(client, session, factory, agency):
    task = _task(session, factory.referral(agency), "Not yours", None, utcnow())
    sign_in(client, _user(session, "specialist").email)
    answer = client.post(
        f"/console/today/tasks/{task.id}/done",
        data={"csrf_token": csrf_token(client, "/console/today")},
    )
    assert answer.status_code == 403
    session.refresh(task)
    assert task.status == "open"


def _booked(factory, agency, coordinator, admission_at: datetime):
    referral = accepted_referral(factory, agency, coordinator)
    travel.book_trip(referral, TripArgs().load(trip_around(admission_at)), coordinator.actor)
    factory.session.commit()
    return referral


def _day(html: str, label: str) -> str:
    found = re.search(
        rf"<li class=\"week-day[^\"]*\">\s*<h3>{label}.*?</li>\s*(?=<li class=\"week-day|</ol>)",
        html,
        re.S,
    )
    assert found, f"no day {label}"
    return found.group(0)


def test_an_arrival_near_midnight_is_on_the_viewers_own_local_day(
    client, session, factory, agency, coordinator
):
    # The inbound flight lands at 03:30Z on Monday 1 April 2030: 23:30 on Sunday 31 March
    # in New York (EDT), 06:30 on Monday in Istanbul where the patient lands.
    referral = _booked(factory, agency, coordinator, admission_at=utc(2030, 4, 2, 3, 30))
    sign_in(client, _user(session, zone="America/New_York").email)
    week = _page(client, "/console/today?week=2030-03-27")  # any day picks its Monday
    assert "Week of 25 March 2030" in week
    sunday = _day(week, "Sun 31 Mar")
    assert "Arrival" in sunday and referral.patient.full_name in sunday
    assert "23:30" in sunday and "06:30 local (Europe/Istanbul)" in sunday
    assert "TK1588 FRA\u2192IST" in sunday
    next_week = _page(client, "/console/today?week=2030-04-01")
    assert "Arrival" not in _day(next_week, "Mon 1 Apr")
    admission = _day(next_week, "Mon 1 Apr")  # 03:30Z on the 2nd is 23:30 on the 1st in NY
    assert "Admission" in admission and "(planned)" in admission


def test_the_week_links_to_the_previous_and_the_next_week(client, session):
    sign_in(client, _user(session).email)
    html = _page(client, "/console/today?week=2030-03-25")
    assert "week=2030-03-18" in html and "week=2030-04-01" in html


def test_a_lost_referrals_trip_is_not_on_the_calendar(
    client, session, factory, agency, coordinator
):
    referral = _booked(factory, agency, coordinator, admission_at=utc(2030, 4, 2, 9))
    move_to_stage(referral, "lost", coordinator.actor, reason="price")
    session.commit()
    sign_in(client, _user(session).email)
    assert referral.patient.full_name not in _page(client, "/console/today?week=2030-04-01")


def test_reading_today_is_audited_with_the_referrals_shown(client, session, factory, agency):
    user = _user(session)
    referral = factory.referral(agency)
    _task(session, referral, "Audited", user, utcnow())
    sign_in(client, user.email)
    _page(client)
    event = session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "console.today", AuditEvent.actor_id == user.id
        )
    )
    assert event is not None and referral.id in event.detail["referral_ids"]


def test_signed_out_today_sends_to_sign_in(client):
    answer = client.get("/console/today")
    assert answer.status_code == 302 and "/console/sign-in" in answer.headers["Location"]


def test_an_urgent_alert_of_mine_is_listed_once_in_its_own_section(
    client, session, factory, agency
):
    user = _user(session)
    _task(session, factory.referral(agency), "Red flag: fever", user, utcnow(), source="alert",
          priority="urgent")  # fmt: skip
    sign_in(client, user.email)
    html = _page(client)
    assert "Red flag: fever" in _section(html, "alerts-h")
    assert "Red flag: fever" not in _section(html, "mine-h")
    assert html.count("Done: Red flag: fever") == 1


def _selects_for(client, connection, path: str) -> int:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(connection, "before_cursor_execute", record)
    return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))


def test_the_page_reads_as_much_for_three_patients_as_for_one(
    client, connection, session, factory, agency, coordinator
):
    user = _user(session)
    sign_in(client, user.email)
    path = "/console/today?week=2030-04-01"

    def one_more():
        referral = _booked(factory, agency, coordinator, admission_at=utc(2030, 4, 2, 9))
        _task(session, referral, "Call", user, utcnow())
        _task(session, referral, "Alert", None, utcnow(), source="alert", priority="urgent")

    one_more()
    with_one = _selects_for(client, connection, path)
    assert with_one >= 8  # the session, the user, and each section
    one_more()
    one_more()
    assert _selects_for(client, connection, path) == with_one


def test_a_week_that_is_not_a_date_is_refused_in_words_and_this_week_shown(client, session):
    sign_in(client, _user(session).email)
    html = _page(client, "/console/today?week=next-tuesday")
    assert "That week is not a date (YYYY-MM-DD); showing this week." in html
