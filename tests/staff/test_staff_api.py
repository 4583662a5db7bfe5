"""GET /me (who is calling) and GET /staff (the directory staff choose owners from)."""

from __future__ import annotations

from crm.auth.models import StaffUser
from tests.helpers import API, assert_problem, field_errors


def _staff(client, caller, **query):
    return client.get(f"{API}/staff", query_string=query, headers=caller.headers())


def test_a_staff_user_learns_who_they_are_and_their_role(client, factory, session):
    specialist = factory.staff("specialist")
    response = client.get(f"{API}/me", headers=specialist.headers())
    assert response.status_code == 200
    user = session.get(StaffUser, specialist.actor.id)
    assert response.json == {
        "kind": "staff",
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": "specialist",
    }


def test_an_agency_key_learns_its_agencys_id_and_name(client, factory):
    agency = factory.agency("Berlin MedTravel")
    response = client.get(f"{API}/me", headers=agency.headers())
    assert response.status_code == 200
    assert response.json == {
        "kind": "agency",
        "id": agency.actor.agency_id,
        "name": "Berlin MedTravel",
        "email": None,
        "role": None,
    }


def test_me_without_a_credential_is_401(client):
    assert_problem(client.get(f"{API}/me"), 401, "unauthorized")


def test_staff_list_the_staff_with_their_roles_by_name(client, factory, session):
    coordinator, manager = factory.staff("coordinator"), factory.staff("manager")
    response = _staff(client, coordinator)
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json["items"]}
    user = session.get(StaffUser, manager.actor.id)
    assert items[manager.actor.id] == {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": "manager",
        "active": True,
    }
    names = [item["name"] for item in response.json["items"]]
    assert names == sorted(names)


def test_the_staff_list_filters_by_one_or_several_roles(client, factory):
    coordinator, specialist, manager = (
        factory.staff(r) for r in ("coordinator", "specialist", "manager")
    )
    only = _staff(client, specialist, role="specialist").json["items"]
    assert {item["role"] for item in only} == {"specialist"}
    assert specialist.actor.id in {item["id"] for item in only}
    several = _staff(client, specialist, role=["coordinator", "manager"]).json["items"]
    assert {coordinator.actor.id, manager.actor.id} <= {item["id"] for item in several}
    assert {item["role"] for item in several} == {"coordinator", "manager"}


def test_the_staff_list_filters_by_active(client, factory, session):
    coordinator, leaver = factory.staff(), factory.staff()
    session.get(StaffUser, leaver.actor.id).active = False
    session.commit()
    active = {item["id"] for item in _staff(client, coordinator, active="true").json["items"]}
    inactive = {item["id"] for item in _staff(client, coordinator, active="false").json["items"]}
    assert coordinator.actor.id in active and leaver.actor.id not in active
    assert inactive == {leaver.actor.id}


def test_an_unknown_role_is_422_naming_it(client, factory):
    response = _staff(client, factory.staff(), role="janitor")
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.role[0]" in errors


def test_an_agency_may_not_list_the_staff(client, factory):
    assert_problem(_staff(client, factory.agency()), 403, "forbidden")


def test_me_and_staff_are_in_the_openapi_document(client):
    paths = client.get(f"{API}/openapi.json").json["paths"]
    assert "/api/v1/me" in paths
    assert "/api/v1/staff" in paths
    parameters = {p["name"] for p in paths["/api/v1/staff"]["get"]["parameters"]}
    assert {"role", "active"} <= parameters
