"""Two agencies: neither ever sees or touches the other's referrals, nor learns they exist."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm.core.audit import AuditEvent
from crm.referrals.models import Referral, ReferralNote, StageTransition
from tests.factories import referral_payload
from tests.helpers import API, assert_problem, without_instance

MISSING_ID = 987_654_321


@pytest.fixture
def tenants(factory):
    """Agency A (the caller) and agency B, each with one referral."""
    a, b = factory.agency("Agency A"), factory.agency("Agency B")
    return a, b, factory.referral(a), factory.referral(b)


def _referral_state(session, referral_id: int):
    session.expire_all()
    referral = session.get(Referral, referral_id)
    patient = referral.patient
    history = session.scalar(select(func.count()).where(StageTransition.referral_id == referral_id))
    notes = session.scalar(select(func.count()).where(ReferralNote.referral_id == referral_id))
    return (
        referral.stage,
        referral.owner_id,
        referral.updated_at,
        patient.phone,
        patient.email,
        patient.language,
        [(c.channel, c.granted) for c in patient.consents],
        history,
        notes,
    )


READS_AND_WRITES = [
    ("get", "/referrals/{id}", None),
    ("patch", "/referrals/{id}/patient", {"phone": "+905321234567", "language": "tr"}),
    ("patch", "/referrals/{id}/patient", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), READS_AND_WRITES)
def test_another_agencys_referral_is_404_exactly_like_a_missing_one(
    client, session, tenants, method, path, body
):
    a, _b, _own, theirs = tenants
    before = _referral_state(session, theirs.id)
    send = getattr(client, method)
    kwargs = {"headers": a.headers()} | ({"json": body} if body is not None else {})
    foreign = send(API + path.format(id=theirs.id), **kwargs)
    missing = send(API + path.format(id=MISSING_ID), **kwargs)
    foreign_body = assert_problem(foreign, 404, "not-found")
    missing_body = assert_problem(missing, 404, "not-found")
    assert without_instance(foreign_body, theirs.id) == without_instance(missing_body, MISSING_ID)
    assert set(foreign.headers.keys()) - {"X-Request-ID"} == set(missing.headers.keys()) - {
        "X-Request-ID"
    }
    assert _referral_state(session, theirs.id) == before


@pytest.mark.parametrize(("method", "path", "body"), READS_AND_WRITES)
def test_the_same_call_on_the_agencys_own_referral_succeeds(client, tenants, method, path, body):
    a, _b, own, _theirs = tenants
    send = getattr(client, method)
    kwargs = {"headers": a.headers()} | ({"json": body} if body is not None else {})
    assert send(API + path.format(id=own.id), **kwargs).status_code == 200


STAFF_ONLY_WRITES = [
    ("post", "/referrals/{id}/transitions", {"to": "awaiting_mri"}),
    ("post", "/referrals/{id}/transitions", {"to": "lost", "reason": "price"}),
    ("post", "/referrals/{id}/notes", {"body": "hello from another agency"}),
    ("put", "/referrals/{id}/owner", {"owner_id": None}),
]


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY_WRITES)
def test_staff_only_writes_answer_an_agency_the_same_for_any_referral_id(
    client, session, tenants, method, path, body
):
    """Agencies may not call these at all; the refusal must not depend on whose id it is."""
    a, _b, own, theirs = tenants
    before = {r.id: _referral_state(session, r.id) for r in (own, theirs)}
    send = getattr(client, method)
    bodies = [
        without_instance(
            assert_problem(
                send(API + path.format(id=referral_id), json=body, headers=a.headers()),
                403,
                "forbidden",
            ),
            referral_id,
        )
        for referral_id in (own.id, theirs.id, MISSING_ID)
    ]
    assert bodies[0] == bodies[1] == bodies[2]
    assert {r.id: _referral_state(session, r.id) for r in (own, theirs)} == before


def test_a_list_never_shows_another_agencys_referrals(client, session, tenants):
    a, _b, own, theirs = tenants
    response = client.get(f"{API}/referrals", headers=a.headers())
    assert [item["id"] for item in response.json["items"]] == [own.id]
    assert theirs.patient.family_name not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        {"agency_id": "{b_agency}"},
        {"direct": "true"},
        {"q": "{b_name}"},
        {"owner_id": "{staff}"},
        {"stage": "enquiry", "limit": 100},
        {"updated_since": "2000-01-01T00:00:00Z"},
    ],
)
def test_staff_filters_do_not_widen_what_an_agency_sees(client, factory, tenants, query):
    a, b, own, theirs = tenants
    coordinator = factory.staff()
    factory.referral(coordinator)  # a direct referral
    client.put(
        f"{API}/referrals/{theirs.id}/owner",
        json={"owner_id": coordinator.actor.id},
        headers=coordinator.headers(),
    )
    values = {
        "b_agency": b.actor.agency_id,
        "b_name": theirs.patient.family_name,
        "staff": coordinator.actor.id,
    }
    filled = {key: str(value).format(**values) for key, value in query.items()}
    response = client.get(f"{API}/referrals", query_string=filled, headers=a.headers())
    assert response.status_code == 200
    assert {item["id"] for item in response.json["items"]} <= {own.id}


def test_paging_through_an_agencys_list_never_reaches_another_agency(client, factory, tenants):
    a, b, own, _theirs = tenants
    mine = {own.id} | {factory.referral(a).id for _ in range(4)}
    theirs = {factory.referral(b).id for _ in range(4)}
    seen: set[int] = set()
    cursor = None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"{API}/referrals", query_string=query, headers=a.headers())
        seen |= {item["id"] for item in response.json["items"]}
        cursor = response.json["next_cursor"]
        if not cursor:
            break
    assert seen == mine
    assert not seen & theirs


def test_a_cursor_from_another_agency_only_pages_the_callers_own(client, factory, tenants):
    a, b, own, _theirs = tenants
    for _ in range(3):
        factory.referral(b)
    b_page = client.get(f"{API}/referrals", query_string={"limit": 1}, headers=b.headers())
    cursor = b_page.json["next_cursor"]
    assert cursor
    response = client.get(f"{API}/referrals", query_string={"cursor": cursor}, headers=a.headers())
    assert {item["id"] for item in response.json["items"]} <= {own.id}


def test_an_agency_may_reuse_a_reference_another_agency_uses(client, tenants):
    """A 409 here would tell agency A that agency B has a patient with that reference."""
    a, _b, _own, theirs = tenants
    response = client.post(
        f"{API}/referrals",
        json=referral_payload(agency_reference=theirs.agency_reference),
        headers=a.headers(),
    )
    assert response.status_code == 201, response.json
    assert response.json["agency"]["id"] == a.actor.agency_id


def test_a_refused_read_leaves_no_read_in_the_audit_log(client, session, tenants):
    a, _b, _own, theirs = tenants
    client.get(f"{API}/referrals/{theirs.id}", headers=a.headers())
    session.expire_all()
    reads = session.scalars(
        select(AuditEvent).where(
            AuditEvent.referral_id == theirs.id, AuditEvent.action == "referral.read"
        )
    ).all()
    assert reads == []


def test_an_idempotency_key_of_another_agency_never_replays_its_response(client, tenants):
    a, b, _own, _theirs = tenants
    body = referral_payload()
    first = client.post(
        f"{API}/referrals", json=body, headers=b.headers(**{"Idempotency-Key": "same-key"})
    )
    second = client.post(
        f"{API}/referrals", json=body, headers=a.headers(**{"Idempotency-Key": "same-key"})
    )
    assert first.status_code == second.status_code == 201
    assert second.json["agency"]["id"] == a.actor.agency_id
    assert "Idempotent-Replayed" not in second.headers


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/referrals/{id}/transitions", {"to": "awaiting_mri"}),
        ("post", "/referrals/{id}/notes", {"body": "x"}),
        ("put", "/referrals/{id}/owner", {"owner_id": None}),
    ],
)
def test_an_agency_calling_a_staff_endpoint_is_a_403_problem(client, tenants, method, path, body):
    a, _b, own, _theirs = tenants
    response = getattr(client, method)(API + path.format(id=own.id), json=body, headers=a.headers())
    problem = assert_problem(response, 403, "forbidden")
    assert "staff" in problem["detail"]


def test_staff_see_both_agencies(client, factory, tenants):
    _a, _b, own, theirs = tenants
    coordinator = factory.staff()
    for referral in (own, theirs):
        response = client.get(f"{API}/referrals/{referral.id}", headers=coordinator.headers())
        assert response.status_code == 200


def test_a_direct_referral_is_404_to_every_agency(client, factory, tenants):
    a, _b, _own, _theirs = tenants
    direct = factory.referral(factory.staff())
    foreign = client.get(f"{API}/referrals/{direct.id}", headers=a.headers())
    missing = client.get(f"{API}/referrals/{MISSING_ID}", headers=a.headers())
    assert without_instance(assert_problem(foreign, 404, "not-found"), direct.id) == (
        without_instance(assert_problem(missing, 404, "not-found"), MISSING_ID)
    )
