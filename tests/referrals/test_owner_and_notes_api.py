"""Owning a referral and the notes on it."""

from __future__ import annotations

from crm.referrals.models import Referral, ReferralNote
from tests.helpers import API, assert_problem, field_errors
from tests.referrals.support import (
    count_rows,
    list_referrals,
)


def test_a_coordinator_assigns_an_owner(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = factory.referral(agency)
    response = client.put(
        f"{API}/referrals/{referral.id}/owner",
        json={"owner_id": coordinator.actor.id},
        headers=coordinator.headers(),
    )
    assert response.status_code == 200, response.json
    assert response.json["owner"] == {"id": coordinator.actor.id, "name": coordinator.actor.label}
    session.expire_all()
    assert session.get(Referral, referral.id).owner_id == coordinator.actor.id


def test_an_owner_is_removed_with_null(client, factory, session):
    agency, manager = factory.agency(), factory.staff("manager")
    referral = factory.referral(agency)
    url = f"{API}/referrals/{referral.id}/owner"
    client.put(url, json={"owner_id": manager.actor.id}, headers=manager.headers())
    response = client.put(url, json={"owner_id": None}, headers=manager.headers())
    assert response.status_code == 200
    assert response.json["owner"] is None
    session.expire_all()
    assert session.get(Referral, referral.id).owner_id is None


def test_a_specialist_cannot_be_made_owner(client, factory, session):
    agency, coordinator, specialist = factory.agency(), factory.staff(), factory.staff("specialist")
    referral = factory.referral(agency)
    response = client.put(
        f"{API}/referrals/{referral.id}/owner",
        json={"owner_id": specialist.actor.id},
        headers=coordinator.headers(),
    )
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "specialist" in errors["owner_id"]
    session.expire_all()
    assert session.get(Referral, referral.id).owner_id is None


def test_an_unknown_owner_is_422(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.put(
        f"{API}/referrals/{referral.id}/owner",
        json={"owner_id": 987654},
        headers=coordinator.headers(),
    )
    assert "owner_id" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_owner_id_is_required(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.put(
        f"{API}/referrals/{referral.id}/owner", json={}, headers=coordinator.headers()
    )
    assert "owner_id" in field_errors(assert_problem(response, 422, "validation-failed"))


# --- notes ----------------------------------------------------------------------------------


def test_staff_add_a_note_and_see_it_on_the_referral(client, factory):
    agency, specialist = factory.agency(), factory.staff("specialist")
    referral = factory.referral(agency)
    response = client.post(
        f"{API}/referrals/{referral.id}/notes",
        json={"body": "L5-S1 looks compressed"},
        headers=specialist.headers(),
    )
    assert response.status_code == 201, response.json
    assert response.json["body"] == "L5-S1 looks compressed"
    assert response.json["author"] == specialist.actor.label
    detail = client.get(f"{API}/referrals/{referral.id}", headers=specialist.headers())
    assert [n["body"] for n in detail.json["notes"]] == ["L5-S1 looks compressed"]


def test_an_agency_never_sees_internal_notes(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    client.post(
        f"{API}/referrals/{referral.id}/notes",
        json={"body": "internal: agency price is too high"},
        headers=coordinator.headers(),
    )
    detail = client.get(f"{API}/referrals/{referral.id}", headers=agency.headers())
    listing = list_referrals(client, agency)
    assert detail.status_code == listing.status_code == 200
    assert "notes" not in detail.json
    for response in (detail, listing):
        assert "agency price is too high" not in response.get_data(as_text=True)


def test_an_empty_note_is_422_naming_body(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.post(
        f"{API}/referrals/{referral.id}/notes", json={"body": ""}, headers=coordinator.headers()
    )
    assert "body" in field_errors(assert_problem(response, 422, "validation-failed"))
    assert count_rows(session, ReferralNote) == 0


# --- transitions ----------------------------------------------------------------------------
