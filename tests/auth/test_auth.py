"""Who may call: agency API keys and staff tokens, stored as hashes, revocable, role-checked."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.auth.models import AgencyApiKey, StaffToken, StaffUser
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from tests.helpers import API, assert_problem

ENDPOINTS = [
    ("get", "/referrals", None),
    ("post", "/referrals", {}),
    ("get", "/referrals/1", None),
    ("patch", "/referrals/1/patient", {}),
    ("post", "/referrals/1/transitions", {"to": "lost"}),
    ("put", "/referrals/1/owner", {"owner_id": None}),
    ("post", "/referrals/1/notes", {"body": "x"}),
    ("get", "/procedures", None),
    ("get", "/procedures/microdiscectomy", None),
]


def _call(client, method, path, body, headers):
    kwargs = {"headers": headers} | ({"json": body} if body is not None else {})
    return getattr(client, method)(API + path, **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_a_credential(client, method, path, body):
    body = assert_problem(_call(client, method, path, body, {}), 401, "unauthorized")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer    ",
        "Basic dXNlcjpwYXNz",
        "Token crm_ak_00000000_abc",
        "crm_ak_00000000_abc",
        "Bearer not-a-key",
        "Bearer crm_ak_00000000_unknownsecret",
        "Bearer crm_st_00000000_unknownsecret",
        "Bearer crm_xx_00000000_unknownsecret",
    ],
)
def test_a_missing_malformed_or_unknown_credential_is_a_401_problem(client, header):
    response = client.get(f"{API}/referrals", headers={"Authorization": header})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_real_prefix_with_a_wrong_secret_is_401(client, factory):
    agency = factory.agency()
    prefix = auth.public_part(agency.secret)
    forged = f"Bearer {prefix}_{'x' * 43}"
    assert_problem(
        client.get(f"{API}/referrals", headers={"Authorization": forged}), 401, "unauthorized"
    )


def test_the_bearer_scheme_is_case_insensitive(client, factory):
    agency = factory.agency()
    response = client.get(f"{API}/referrals", headers={"Authorization": f"bearer {agency.secret}"})
    assert response.status_code == 200


def test_a_revoked_agency_key_is_401(client, factory, session):
    agency = factory.agency()
    assert client.get(f"{API}/referrals", headers=agency.headers()).status_code == 200
    auth.revoke_agency_key(auth.public_part(agency.secret))
    session.commit()
    assert_problem(client.get(f"{API}/referrals", headers=agency.headers()), 401, "unauthorized")


def test_revoking_one_key_leaves_the_agencys_other_keys_working(client, factory, session):
    agency = factory.agency()
    row = session.get(Agency, agency.actor.agency_id)
    second = auth.issue_agency_key(row, label="second")
    session.commit()
    auth.revoke_agency_key(auth.public_part(agency.secret))
    session.commit()
    headers = {"Authorization": f"Bearer {second.secret}"}
    assert client.get(f"{API}/referrals", headers=headers).status_code == 200


def test_a_revoked_staff_token_is_401(client, factory, session):
    coordinator = factory.staff()
    token = session.scalar(
        select(StaffToken).where(StaffToken.prefix == auth.public_part(coordinator.secret))
    )
    token.revoked_at = utcnow()
    session.commit()
    assert_problem(
        client.get(f"{API}/referrals", headers=coordinator.headers()), 401, "unauthorized"
    )


def test_a_deactivated_agency_or_staff_user_is_401(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    session.get(Agency, agency.actor.agency_id).active = False
    session.get(StaffUser, coordinator.actor.id).active = False
    session.commit()
    for caller in (agency, coordinator):
        assert_problem(
            client.get(f"{API}/referrals", headers=caller.headers()), 401, "unauthorized"
        )


def test_an_agency_key_is_stored_only_as_a_hash_beside_its_visible_prefix(factory, session):
    agency = factory.agency()
    key = session.scalar(
        select(AgencyApiKey).where(AgencyApiKey.agency_id == agency.actor.agency_id)
    )
    assert agency.secret.startswith(key.prefix + "_")
    assert key.prefix.startswith("crm_ak_")
    assert key.key_hash == hashlib.sha256(agency.secret.encode()).hexdigest()
    private_part = agency.secret[len(key.prefix) + 1 :]
    assert len(private_part) >= 32
    stored = " ".join(str(getattr(key, c.key)) for c in AgencyApiKey.__table__.columns)
    assert private_part not in stored
    events = session.scalars(select(AuditEvent)).all()
    assert all(private_part not in str(event.detail) for event in events)


def test_a_staff_token_is_stored_only_as_a_hash_beside_its_visible_prefix(factory, session):
    coordinator = factory.staff()
    token = session.scalar(select(StaffToken).where(StaffToken.user_id == coordinator.actor.id))
    assert coordinator.secret.startswith(token.prefix + "_")
    assert token.prefix.startswith("crm_st_")
    assert token.token_hash == hashlib.sha256(coordinator.secret.encode()).hexdigest()
    assert coordinator.secret[len(token.prefix) + 1 :] not in token.token_hash


def test_two_keys_never_share_a_prefix_or_secret(factory):
    callers = [factory.agency() for _ in range(5)]
    secrets = {c.secret for c in callers}
    prefixes = {auth.public_part(c.secret) for c in callers}
    assert len(secrets) == len(prefixes) == 5


def _key_row(session, caller) -> AgencyApiKey:
    session.expire_all()
    return session.scalar(
        select(AgencyApiKey).where(AgencyApiKey.prefix == auth.public_part(caller.secret))
    )


def test_using_a_key_records_when_it_was_last_used(client, factory, session):
    agency = factory.agency()
    assert _key_row(session, agency).last_used_at is None
    before = utcnow()
    assert client.get(f"{API}/referrals", headers=agency.headers()).status_code == 200
    used = _key_row(session, agency).last_used_at
    assert used is not None
    assert before - timedelta(seconds=1) <= used <= utcnow()


def test_last_used_is_refreshed_once_it_is_older_than_a_minute(client, factory, session):
    agency = factory.agency()
    key = _key_row(session, agency)
    stale = utcnow() - timedelta(hours=2)
    key.last_used_at = stale
    session.commit()
    client.get(f"{API}/referrals", headers=agency.headers())
    assert _key_row(session, agency).last_used_at > stale + timedelta(hours=1)


def test_a_staff_token_records_its_last_use(client, factory, session):
    coordinator = factory.staff()
    client.get(f"{API}/referrals", headers=coordinator.headers())
    session.expire_all()
    token = session.scalar(select(StaffToken).where(StaffToken.user_id == coordinator.actor.id))
    assert token.last_used_at is not None


# --- roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("coordinator", True), ("manager", True), ("admin", True), ("specialist", False)],
)
def test_assigning_an_owner_needs_a_coordinator_or_manager(client, factory, role, allowed):
    agency, staff = factory.agency(), factory.staff(role)
    referral = factory.referral(agency)
    response = client.put(
        f"{API}/referrals/{referral.id}/owner", json={"owner_id": None}, headers=staff.headers()
    )
    if allowed:
        assert response.status_code == 200
    else:
        body = assert_problem(response, 403, "forbidden")
        assert "coordinator" in body["detail"]


@pytest.mark.parametrize("role", ["coordinator", "specialist", "manager", "admin"])
def test_every_staff_role_may_add_a_note(client, factory, role):
    agency, staff = factory.agency(), factory.staff(role)
    referral = factory.referral(agency)
    response = client.post(
        f"{API}/referrals/{referral.id}/notes", json={"body": "seen"}, headers=staff.headers()
    )
    assert response.status_code == 201


def test_staff_cannot_use_the_agency_contact_endpoint(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.patch(
        f"{API}/referrals/{referral.id}/patient",
        json={"language": "tr"},
        headers=coordinator.headers(),
    )
    body = assert_problem(response, 403, "forbidden")
    assert "agencies" in body["detail"]
    session.expire_all()
    assert session.get(type(referral), referral.id).patient.language == "de"


def test_a_forbidden_call_leaves_no_trace_of_its_work(client, factory, session):
    agency, specialist = factory.agency(), factory.staff("specialist")
    referral = factory.referral(agency)
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    client.put(
        f"{API}/referrals/{referral.id}/owner",
        json={"owner_id": specialist.actor.id},
        headers=specialist.headers(),
    )
    session.expire_all()
    after = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    assert after == before
