"""The coordinators' list of matches and their decision on a likely one."""

from __future__ import annotations

from sqlalchemy import select

from crm.core.audit import AuditEvent
from tests.duplicates.support import person
from tests.helpers import API, assert_problem


def _submit(client, caller, payload) -> dict:
    response = client.post(f"{API}/referrals", json=payload, headers=caller.headers())
    assert response.status_code == 201, response.json
    return response.json


def _likely_pair(client, first, second) -> dict:
    """Two referrals of a similar name born the same day: one open match."""
    same_day = {"date_of_birth": "1983-08-09"}
    _submit(client, first, person(given_name="Aleksandr", family_name="Ivanov", **same_day))
    return _submit(client, second, person(given_name="Alexandr", family_name="Ivanov", **same_day))


def _open_matches(client, staff) -> list[dict]:
    response = client.get(
        f"{API}/duplicates", query_string={"status": "open"}, headers=staff.headers()
    )
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_a_coordinator_lists_the_open_matches_with_their_evidence(client, factory, coordinator):
    later = _likely_pair(client, factory.agency(), factory.agency())
    [match] = _open_matches(client, coordinator)
    assert match["referral_id"] == later["id"]
    assert match["kind"] == "likely"
    assert match["evidence"]["fields"] == ["date_of_birth"]
    assert match["evidence"]["name_score"] >= 90
    assert match["matched_patient"]["name"] == "Aleksandr Ivanov"


def test_linking_a_likely_match_gives_the_patient_to_the_first_agency(client, factory, coordinator):
    first, second = factory.agency(), factory.agency()
    later = _likely_pair(client, first, second)
    assert later["attribution"] == "attributed"
    [match] = _open_matches(client, coordinator)
    response = client.post(f"{API}/duplicates/{match['id']}/link", headers=coordinator.headers())
    assert response.status_code == 200, response.json
    assert response.json["status"] == "linked"
    assert response.json["decided_by"] == coordinator.actor.label
    seen = client.get(f"{API}/referrals/{later['id']}", headers=second.headers()).json
    assert seen["attribution"] == "already_in_care"


def test_dismissing_a_match_closes_it_and_keeps_the_attribution(
    client, factory, coordinator, session
):
    first, second = factory.agency(), factory.agency()
    later = _likely_pair(client, first, second)
    [match] = _open_matches(client, coordinator)
    response = client.post(f"{API}/duplicates/{match['id']}/dismiss", headers=coordinator.headers())
    assert response.json["status"] == "dismissed"
    assert _open_matches(client, coordinator) == []
    seen = client.get(f"{API}/referrals/{later['id']}", headers=second.headers()).json
    assert seen["attribution"] == "attributed"
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.referral_id == later["id"])
    )
    assert "duplicate.dismissed" in set(actions)


def test_a_decided_match_cannot_be_decided_again(client, factory, coordinator):
    _likely_pair(client, factory.agency(), factory.agency())
    [match] = _open_matches(client, coordinator)
    client.post(f"{API}/duplicates/{match['id']}/dismiss", headers=coordinator.headers())
    response = client.post(f"{API}/duplicates/{match['id']}/link", headers=coordinator.headers())
    assert_problem(response, 409, "conflict")


def test_agencies_and_specialists_cannot_see_the_matches(client, factory, specialist):
    agency = factory.agency()
    assert client.get(f"{API}/duplicates", headers=agency.headers()).status_code == 403
    assert client.get(f"{API}/duplicates", headers=specialist.headers()).status_code == 403


def test_an_unknown_match_is_not_found(client, coordinator):
    response = client.post(f"{API}/duplicates/999999/link", headers=coordinator.headers())
    assert_problem(response, 404, "not-found")
