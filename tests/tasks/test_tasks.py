"""Tasks: my queue, due today in my own time zone, overdue; closing, handing over, adding."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.auth.models import StaffUser
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.referrals.operations import assign_owner
from crm.tasks.models import Task
from crm.tasks.operations import open_task
from crm.tasks.queries import day_bounds, list_tasks
from tests.helpers import API, assert_problem, field_errors
from tests.travel.support import utc

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

ARGS = {"view": "mine", "due": "open", "limit": 50}


@pytest.fixture
def referral(factory, agency, coordinator):
    referral = factory.referral(agency)
    assign_owner(referral, coordinator.actor.id, coordinator.actor)
    factory.session.commit()
    return referral


def _in_zone(session, caller, zone: str) -> None:
    session.get(StaffUser, caller.actor.id).time_zone = zone
    session.commit()


def _titles(page) -> list[str]:
    return [item.title for item in page.items]


def test_today_is_the_users_own_day(session, referral, coordinator):
    # 06:00Z on 10 January: still the 9th in Los Angeles, already 09:00 on the 10th in Istanbul.
    now = utc(2030, 1, 10, 6)
    open_task(referral, "late evening in LA", "manual", due_at=utc(2030, 1, 10, 7))  # 23:00 LA
    open_task(referral, "Istanbul noon", "manual", due_at=utc(2030, 1, 10, 9))  # 01:00 LA, 10th
    _in_zone(session, coordinator, "America/Los_Angeles")
    page = list_tasks(coordinator.actor, {**ARGS, "due": "today"}, now=now)
    assert (page.time_zone, _titles(page)) == ("America/Los_Angeles", ["late evening in LA"])
    _in_zone(session, coordinator, "Europe/Istanbul")
    page = list_tasks(coordinator.actor, {**ARGS, "due": "today"}, now=now)
    assert _titles(page) == ["late evening in LA", "Istanbul noon"]


def test_a_day_with_a_dst_change_has_23_hours():
    start, end = day_bounds(utc(2030, 3, 31, 12), ZoneInfo("Europe/Berlin"))
    assert (start, end - start) == (utc(2030, 3, 30, 23), timedelta(hours=23))


def test_overdue_is_open_and_past_due_urgent_first(session, referral, coordinator):
    now = utcnow()
    open_task(referral, "yesterday", "manual", due_at=now - timedelta(days=1))
    open_task(
        referral, "urgent an hour ago", "alert", priority="urgent", due_at=now - timedelta(hours=1)
    )
    open_task(referral, "tomorrow", "manual", due_at=now + timedelta(days=1))
    done = open_task(referral, "done already", "manual", due_at=now - timedelta(days=2))
    done.status = "done"
    page = list_tasks(coordinator.actor, {**ARGS, "due": "overdue"}, now=now)
    assert _titles(page) == ["urgent an hour ago", "yesterday"]
    assert all(item.overdue for item in page.items)


def test_views_mine_unassigned_and_all(session, factory, agency, referral, coordinator):
    unowned = factory.referral(agency)
    open_task(referral, "mine", "manual")
    open_task(unowned, "nobody's", "manual")
    other = factory.staff("coordinator")
    for view, expected in (("mine", ["mine"]), ("unassigned", ["nobody's"])):
        assert _titles(list_tasks(coordinator.actor, {**ARGS, "view": view})) == expected
    assert set(_titles(list_tasks(other.actor, {**ARGS, "view": "all"}))) >= {"mine", "nobody's"}
    assert _titles(list_tasks(other.actor, ARGS)) == []


def test_the_api_lists_my_tasks_due_today_with_local_times(client, session, referral, coordinator):
    open_task(referral, "call the patient", "manual", due_at=utcnow())
    session.commit()
    response = client.get(
        f"{API}/tasks", query_string={"due": "today"}, headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json
    assert response.json["time_zone"] == "Europe/Istanbul"
    [item] = response.json["items"]
    assert item["title"] == "call the patient"
    assert item["due_at_local"].endswith("+03:00")


def test_a_task_is_marked_done(client, session, referral, coordinator):
    task = open_task(referral, "call", "manual")
    session.commit()
    response = client.patch(
        f"{API}/tasks/{task.id}", json={"status": "done"}, headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "done"
    assert response.json["completed_at"] is not None
    listed = client.get(f"{API}/tasks", headers=coordinator.headers()).json["items"]
    assert task.id not in [item["id"] for item in listed]


def test_a_task_is_handed_over_and_moved(client, session, factory, referral, coordinator):
    task = open_task(referral, "call", "manual")
    session.commit()
    colleague = factory.staff("manager")
    later = utc(2030, 5, 1, 9)
    response = client.patch(
        f"{API}/tasks/{task.id}",
        json={"owner_id": colleague.actor.id, "due_at": later.isoformat()},
        headers=coordinator.headers(),
    )
    assert response.status_code == 200, response.json
    assert response.json["owner_id"] == colleague.actor.id
    assert response.json["due_at"] == "2030-05-01T09:00:00+00:00"


def test_a_specialist_cannot_own_a_task(client, session, factory, referral, coordinator):
    task = open_task(referral, "call", "manual")
    session.commit()
    specialist = factory.staff("specialist")
    response = client.patch(
        f"{API}/tasks/{task.id}",
        json={"owner_id": specialist.actor.id},
        headers=coordinator.headers(),
    )
    assert "owner_id" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_an_empty_patch_is_422_and_a_missing_task_404(client, session, referral, coordinator):
    task = open_task(referral, "call", "manual")
    session.commit()
    empty = client.patch(f"{API}/tasks/{task.id}", json={}, headers=coordinator.headers())
    assert_problem(empty, 422, "validation-failed")
    missing = client.patch(
        f"{API}/tasks/999999", json={"status": "done"}, headers=coordinator.headers()
    )
    assert_problem(missing, 404, "not-found")


def test_a_manual_task_goes_to_the_referrals_owner(client, session, referral, coordinator):
    response = client.post(
        f"{API}/tasks",
        json={"referral_id": referral.id, "title": "Send hotel options", "priority": "urgent"},
        headers=coordinator.headers(),
    )
    assert response.status_code == 201, response.json
    assert response.json["source"] == "manual"
    assert response.json["owner_id"] == coordinator.actor.id
    task = session.get(Task, response.json["id"])
    assert task.referral_id == referral.id


def test_a_manual_task_on_a_missing_referral_is_404(client, coordinator):
    response = client.post(
        f"{API}/tasks", json={"referral_id": 999999, "title": "x"}, headers=coordinator.headers()
    )
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("role", ["specialist", "agency"])
def test_tasks_are_for_coordinators_and_managers(client, factory, referral, agency, role):
    caller = agency if role == "agency" else factory.staff(role)
    assert_problem(client.get(f"{API}/tasks", headers=caller.headers()), 403, "forbidden")
    response = client.post(
        f"{API}/tasks", json={"referral_id": referral.id, "title": "x"}, headers=caller.headers()
    )
    assert_problem(response, 403, "forbidden")


def test_changes_are_audited(client, session, referral, coordinator):
    task = open_task(referral, "call", "manual")
    session.commit()
    client.patch(
        f"{API}/tasks/{task.id}", json={"status": "cancelled"}, headers=coordinator.headers()
    )
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.referral_id == referral.id)
    ).all()
    assert "task.update" in actions


def test_listing_tasks_is_audited_with_the_tasks_and_referrals_shown(
    client, session, referral, coordinator
):
    task = open_task(referral, "pain 8/10 since yesterday: call", "manual", due_at=utcnow())
    session.commit()
    response = client.get(f"{API}/tasks", headers=coordinator.headers())
    assert response.status_code == 200, response.json
    session.expire_all()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "task.list")).all()
    assert (event.actor_type, event.actor_id) == ("staff", coordinator.actor.id)
    assert event.detail == {"task_ids": [task.id], "referral_ids": [referral.id]}


def test_an_empty_task_list_audits_nothing(client, session, coordinator):
    assert client.get(f"{API}/tasks", headers=coordinator.headers()).status_code == 200
    session.expire_all()
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "task.list")).all() == []
