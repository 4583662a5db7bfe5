"""Listing referrals: order, filters, keyset pages, search."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import API, assert_problem, field_errors
from tests.referrals.support import (
    ids_of,
    list_referrals,
    move,
    second_procedure,
    set_updated_at,
)


def test_an_agency_lists_its_referrals_most_recently_changed_first(client, factory, session):
    agency = factory.agency()
    first, second = factory.referral(agency), factory.referral(agency)
    set_updated_at(session, first.id, datetime(2025, 1, 2, tzinfo=UTC))
    set_updated_at(session, second.id, datetime(2025, 1, 1, tzinfo=UTC))
    response = list_referrals(client, agency)
    assert ids_of(response) == [first.id, second.id]
    assert response.json["next_cursor"] is None
    item = response.json["items"][0]
    assert item["patient"]["family_name"]
    assert "history" not in item
    assert "notes" not in item


def test_the_list_filters_by_one_or_several_stages(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    stays, moves, holds = (factory.referral(agency) for _ in range(3))
    assert move(client, coordinator, moves.id, "awaiting_mri").status_code == 201
    assert move(client, coordinator, holds.id, "on_hold").status_code == 201
    assert ids_of(list_referrals(client, agency, stage="awaiting_mri")) == [moves.id]
    assert ids_of(list_referrals(client, agency, stage="enquiry")) == [stays.id]
    both = client.get(f"{API}/referrals?stage=enquiry&stage=on_hold", headers=agency.headers())
    assert sorted(ids_of(both)) == sorted([stays.id, holds.id])


def test_an_unknown_stage_filter_is_422(client, factory):
    agency = factory.agency()
    errors = field_errors(
        assert_problem(list_referrals(client, agency, stage="done"), 422, "validation-failed")
    )
    assert any(field.startswith("query.stage") for field in errors)


def test_the_list_filters_by_updated_since(client, factory, session):
    agency = factory.agency()
    old, recent = factory.referral(agency), factory.referral(agency)
    set_updated_at(session, old.id, datetime(2024, 1, 1, tzinfo=UTC))
    set_updated_at(session, recent.id, datetime(2025, 6, 1, 12, tzinfo=UTC))
    assert ids_of(list_referrals(client, agency, updated_since="2025-01-01T00:00:00Z")) == [
        recent.id
    ]
    # the same instant in another zone
    assert ids_of(list_referrals(client, agency, updated_since="2025-06-01T14:00:00+02:00")) == [
        recent.id
    ]
    assert ids_of(list_referrals(client, agency, updated_since="2025-06-01T12:00:01Z")) == []
    assert len(ids_of(list_referrals(client, agency, updated_since="2023-01-01T00:00:00Z"))) == 2


def test_updated_since_without_a_zone_is_422(client, factory):
    agency = factory.agency()
    response = list_referrals(client, agency, updated_since="2025-01-01T00:00:00")
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.updated_since" in errors


def test_cursor_pagination_visits_every_referral_once_in_order(client, factory, session):
    agency = factory.agency()
    referrals = [factory.referral(agency) for _ in range(8)]
    # Ties on updated_at must be broken by id, or a page boundary would skip or repeat.
    tie = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    for index, referral in enumerate(referrals):
        moment = tie if index in (2, 3, 4) else tie - timedelta(minutes=index)
        set_updated_at(session, referral.id, moment)
    seen: list[int] = []
    pages = 0
    cursor = None
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = list_referrals(client, agency, **query)
        page = ids_of(response)
        assert len(page) <= 3
        seen.extend(page)
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    assert set(seen) == {r.id for r in referrals}
    expected = sorted(
        referrals,
        key=lambda r: (
            tie if referrals.index(r) in (2, 3, 4) else tie - timedelta(minutes=referrals.index(r)),
            r.id,
        ),
        reverse=True,
    )
    assert seen == [r.id for r in expected]


def test_a_full_last_page_has_no_next_cursor(client, factory):
    agency = factory.agency()
    for _ in range(2):
        factory.referral(agency)
    response = list_referrals(client, agency, limit=2)
    assert len(ids_of(response)) == 2
    assert response.json["next_cursor"] is None


@pytest.mark.parametrize("limit", [101, 1000, 0, -1])
def test_a_limit_outside_1_to_100_is_422_naming_limit(client, factory, limit):
    agency = factory.agency()
    response = list_referrals(client, agency, limit=limit)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.limit" in errors


def test_a_limit_of_100_is_accepted(client, factory):
    agency = factory.agency()
    assert list_referrals(client, agency, limit=100).status_code == 200


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!",
        _b64(["2025-01-01T00:00:00", 5]),
        _b64(["2025-01-01T00:00:00+00:00", "5"]),
        _b64(["yesterday", 5]),
        _b64({"a": 1}),
        _b64([1, 2, 3]),
    ],
)
def test_a_cursor_the_api_did_not_issue_is_422(client, factory, cursor):
    agency = factory.agency()
    factory.referral(agency)
    response = list_referrals(client, agency, cursor=cursor)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.cursor" in errors


# --- staff: search and filters -------------------------------------------------------------


def test_staff_see_every_agencys_referrals_and_direct_ones(client, factory):
    first, second, coordinator = factory.agency(), factory.agency(), factory.staff()
    a, b, direct = factory.referral(first), factory.referral(second), factory.referral(coordinator)
    seen = set(ids_of(list_referrals(client, coordinator, limit=100)))
    assert {a.id, b.id, direct.id} <= seen


def test_staff_filter_by_agency_and_by_direct(client, factory):
    first, second, coordinator = factory.agency(), factory.agency(), factory.staff()
    a, b, direct = factory.referral(first), factory.referral(second), factory.referral(coordinator)
    assert ids_of(list_referrals(client, coordinator, agency_id=first.actor.agency_id)) == [a.id]
    assert ids_of(list_referrals(client, coordinator, agency_id=second.actor.agency_id)) == [b.id]
    directs = ids_of(list_referrals(client, coordinator, direct="true", limit=100))
    assert direct.id in directs
    assert a.id not in directs and b.id not in directs


def test_staff_filter_by_owner_and_unassigned(client, factory):
    agency, coordinator, other = factory.agency(), factory.staff(), factory.staff()
    mine, theirs, nobodys = (factory.referral(agency) for _ in range(3))
    for referral, owner in ((mine, coordinator), (theirs, other)):
        response = client.put(
            f"{API}/referrals/{referral.id}/owner",
            json={"owner_id": owner.actor.id},
            headers=coordinator.headers(),
        )
        assert response.status_code == 200, response.json
    assert ids_of(list_referrals(client, coordinator, owner_id=coordinator.actor.id)) == [mine.id]
    assert ids_of(list_referrals(client, coordinator, owner_id=other.actor.id)) == [theirs.id]
    unassigned = ids_of(
        list_referrals(client, coordinator, unassigned="true", agency_id=agency.actor.agency_id)
    )
    assert unassigned == [nobodys.id]


def test_staff_filter_by_procedure(client, factory, session):
    second_procedure(session)
    agency, coordinator = factory.agency(), factory.staff()
    spine = factory.referral(agency)
    knee = factory.referral(agency, procedure="knee_replacement")
    scoped = {"agency_id": agency.actor.agency_id}
    assert ids_of(list_referrals(client, coordinator, procedure="knee_replacement", **scoped)) == [
        knee.id
    ]
    assert ids_of(list_referrals(client, coordinator, procedure="microdiscectomy", **scoped)) == [
        spine.id
    ]
    assert ids_of(list_referrals(client, coordinator, procedure="nothing_like_it", **scoped)) == []


def test_staff_search_by_name_email_phone_and_agency_reference(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(
        agency,
        agency_reference="GULF-77-XQ",
        patient={
            "given_name": "Zeynep",
            "family_name": "Quasimodo",
            "email": "zeynep.unique@patient.example",
            "phone": "+905321234567",
            "country": "TR",
        },
    )
    factory.referral(agency)
    for text in ("quasimodo", "ZEYNEP", "zeynep.unique@", "5321234567", "gulf-77"):
        assert ids_of(list_referrals(client, coordinator, q=text)) == [target.id], text


def test_search_treats_percent_and_underscore_literally(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    factory.referral(agency, agency_reference="ABC-1")
    scoped = {"agency_id": agency.actor.agency_id}
    assert ids_of(list_referrals(client, coordinator, q="%%", **scoped)) == []
    assert ids_of(list_referrals(client, coordinator, q="A_C", **scoped)) == []


def test_a_one_letter_search_is_422_naming_q(client, factory):
    coordinator = factory.staff()
    errors = field_errors(
        assert_problem(list_referrals(client, coordinator, q="a"), 422, "validation-failed")
    )
    assert "query.q" in errors


# --- owner ----------------------------------------------------------------------------------
