"""The audit trail, queryable by managers: who saw which patient's case, when, from where."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.core.db import utcnow
from tests.helpers import API, assert_problem, field_errors

TRAIL = f"{API}/audit-events"


@pytest.fixture
def manager(factory):
    return factory.staff("manager")


def _actions(response) -> list[str]:
    return [item["action"] for item in response.json["items"]]


def test_a_referral_trail_shows_its_reads_and_the_lists_that_showed_it(client, factory, manager):
    agency = factory.agency()
    referral, other = factory.referral(agency), factory.referral(agency)
    client.get(f"{API}/referrals/{referral.id}", headers=agency.headers(**{"X-Request-ID": "r1"}))
    client.get(f"{API}/referrals/{other.id}", headers=agency.headers())
    client.get(f"{API}/referrals", headers=agency.headers())
    response = client.get(
        TRAIL, query_string={"referral_id": referral.id}, headers=manager.headers()
    )
    assert response.status_code == 200, response.json
    actions = _actions(response)
    assert "referral.read" in actions and "referral.list" in actions
    read = next(i for i in response.json["items"] if i["action"] == "referral.read")
    assert (read["actor_type"], read["actor_id"], read["request_id"]) == (
        "agency",
        agency.actor.id,
        "r1",
    )
    assert read["remote_addr"]
    assert all(
        item["referral_id"] == referral.id or referral.id in item["detail"]["referral_ids"]
        for item in response.json["items"]
    )


def test_filters_by_actor_action_prefix_and_time(client, factory, manager):
    agency = factory.agency()
    referral = factory.referral(agency)
    client.get(f"{API}/referrals/{referral.id}", headers=agency.headers())
    since = (utcnow() - timedelta(minutes=5)).isoformat()
    response = client.get(
        TRAIL,
        query_string={
            "actor_type": "agency",
            "actor_id": agency.actor.id,
            "action": "referral.",
            "since": since,
        },
        headers=manager.headers(),
    )
    assert response.status_code == 200
    assert set(_actions(response)) <= {"referral.create", "referral.read", "referral.list"}
    assert "referral.read" in _actions(response)
    later = client.get(
        TRAIL,
        query_string={"since": (utcnow() + timedelta(hours=1)).isoformat()},
        headers=manager.headers(),
    )
    assert later.json["items"] == []


def test_pages_follow_a_cursor_newest_first(client, factory, manager):
    agency = factory.agency()
    referral = factory.referral(agency)
    for _ in range(3):
        client.get(f"{API}/referrals/{referral.id}", headers=agency.headers())
    query = {"referral_id": referral.id, "action": "referral.read", "limit": 2}
    first = client.get(TRAIL, query_string=query, headers=manager.headers())
    second = client.get(
        TRAIL,
        query_string={**query, "cursor": first.json["next_cursor"]},
        headers=manager.headers(),
    )
    ids = [i["id"] for i in first.json["items"]] + [i["id"] for i in second.json["items"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True)
    assert second.json["next_cursor"] is None


def test_reading_the_trail_is_itself_audited(client, factory, manager):
    client.get(TRAIL, query_string={"action": "referral.read"}, headers=manager.headers())
    response = client.get(TRAIL, query_string={"action": "audit.read"}, headers=manager.headers())
    [event] = response.json["items"][-1:]
    assert event["action"] == "audit.read"
    assert event["detail"]["filters"]["action"] == "referral.read"


def test_coordinators_and_agencies_may_not_read_the_trail(client, factory):
    coordinator, agency = factory.staff("coordinator"), factory.agency()
    assert_problem(client.get(TRAIL, headers=coordinator.headers()), 403, "forbidden")
    assert_problem(client.get(TRAIL, headers=agency.headers()), 403, "forbidden")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"actor_type": "robot"}, "actor_type"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"limit": 1000}, "limit"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_filters_are_422_naming_the_field(client, manager, query, field):
    response = client.get(TRAIL, query_string=query, headers=manager.headers())
    assert response.status_code == 422, response.json
    assert any(field in name for name in field_errors(response.json))
