"""Every error is RFC 9457 problem+json, never a stack trace, and leaves nothing half-written."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, func, select, text

from crm import create_app
from crm.agencies.models import Agency
from crm.core import audit
from crm.core.errors import PROBLEM_MEDIA_TYPE
from crm.extensions import db
from crm.patients.models import Patient, PatientConsent
from crm.referrals.models import Referral, StageTransition
from tests.conftest import ROOT
from tests.factories import referral_payload
from tests.helpers import API, assert_problem


def _counts(session) -> tuple[int, ...]:
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Referral, Patient, PatientConsent, StageTransition)
    )


@pytest.mark.parametrize("path", [f"{API}/nothing-here", f"{API}/referrals/abc", "/nowhere"])
def test_an_unknown_route_is_a_404_problem(client, path):
    body = assert_problem(client.get(path), 404, "not-found")
    assert body["instance"] == path


def test_a_wrong_method_is_a_405_problem_with_allow(client, factory):
    agency = factory.agency()
    response = client.delete(f"{API}/referrals", headers=agency.headers())
    assert_problem(response, 405, "method-not-allowed")
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed


def test_a_wrong_method_on_one_referral_lists_what_it_takes(client, factory):
    agency = factory.agency()
    response = client.post(f"{API}/referrals/1/patient", json={}, headers=agency.headers())
    assert_problem(response, 405, "method-not-allowed")
    assert "PATCH" in response.headers["Allow"]


def test_a_body_over_max_content_length_is_a_413_problem(app, client, factory, session):
    agency = factory.agency()
    before = _counts(session)
    payload = referral_payload(intake={"notes": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)})
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    assert_problem(response, 413, "request-entity-too-large")
    assert _counts(session) == before


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", "procedure=microdiscectomy"),
        ("application/x-www-form-urlencoded", "procedure=microdiscectomy"),
        ("application/xml", "<referral/>"),
    ],
)
def test_a_body_that_is_not_json_is_a_415_problem(client, factory, session, content_type, data):
    agency = factory.agency()
    before = _counts(session)
    response = client.post(
        f"{API}/referrals", data=data, content_type=content_type, headers=agency.headers()
    )
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in body["detail"]
    assert _counts(session) == before


def test_a_patch_that_is_not_json_is_a_415_problem(client, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = client.patch(
        f"{API}/referrals/{referral.id}/patient",
        data="language=tr",
        content_type="text/plain",
        headers=agency.headers(),
    )
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize("data", ['{"procedure": ', "{not json}", "\xff\xfe"])
def test_malformed_json_is_a_400_problem(client, factory, session, data):
    agency = factory.agency()
    before = _counts(session)
    response = client.post(
        f"{API}/referrals", data=data, content_type="application/json", headers=agency.headers()
    )
    assert_problem(response, 400, "bad-request")
    assert _counts(session) == before


def test_json_that_is_not_an_object_is_a_422_problem(client, factory):
    agency = factory.agency()
    response = client.post(f"{API}/referrals", json=[1, 2, 3], headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"]


def test_a_validation_problem_carries_instance_and_detail(client, factory):
    agency = factory.agency()
    response = client.post(
        f"{API}/referrals",
        json=referral_payload(intake={"pain_score": 12}),
        headers=agency.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["title"] == "The request is not valid"
    assert body["instance"] == f"{API}/referrals"
    assert body["errors"] == [{"field": "intake.pain_score", "reason": body["errors"][0]["reason"]}]
    assert "intake.pain_score" in body["detail"]


def test_a_problem_carries_the_request_id(client):
    response = client.get(f"{API}/nothing", headers={"X-Request-ID": "trace-123"})
    assert response.headers["X-Request-ID"] == "trace-123"


def test_a_failure_after_rows_were_flushed_writes_nothing(client, factory, session, monkeypatch):
    """The referral, patient, consents and history are flushed before the audit write fails."""
    agency = factory.agency()
    before = _counts(session)

    def fail(*_args, **_kwargs):
        raise RuntimeError("audit store exploded: secret-internal-detail")

    monkeypatch.setattr(audit, "record", fail)
    response = client.post(f"{API}/referrals", json=referral_payload(), headers=agency.headers())
    body = assert_problem(response, 500, "internal-error")
    assert "secret-internal-detail" not in response.get_data(as_text=True)
    assert "RuntimeError" not in response.get_data(as_text=True)
    assert body["detail"] == "Something went wrong."
    assert _counts(session) == before


def test_a_refused_transition_writes_no_history(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    before = _counts(session)
    response = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "completed"},
        headers=coordinator.headers(),
    )
    assert response.status_code == 409
    assert _counts(session) == before


# --- 500 from a route that raises, on an app of its own --------------------------------------

BOOM_AGENCY = "Half-written Agency Ltd"


@pytest.fixture
def raising_app(database_url):
    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-123",
            "CATALOGUE_FILE": str(ROOT / "config" / "procedures.toml"),
        }
    )

    def explode():
        db.session.add(Agency(name=BOOM_AGENCY, country="DE"))
        db.session.flush()
        raise RuntimeError("kaboom at /srv/crm/secret.py line 12")

    app.add_url_rule(f"{API}/explode", "explode", explode, methods=["GET", "POST"])
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_route_that_raises_is_a_500_problem_without_a_traceback(raising_app, caplog, monkeypatch):
    # migrations/env.py's fileConfig() disables existing loggers once a migration has run
    # in this process; operators still need this one.
    monkeypatch.setattr(logging.getLogger("crm.core.errors"), "disabled", False)
    response = raising_app.test_client().get(f"{API}/explode")
    body = assert_problem(response, 500, "internal-error")
    assert response.headers["Content-Type"].startswith(PROBLEM_MEDIA_TYPE)
    text_body = response.get_data(as_text=True)
    assert "kaboom" not in text_body
    assert "secret.py" not in text_body
    assert body["title"] == "Internal server error"
    logged = [r for r in caplog.records if r.exc_info and "kaboom" in str(r.exc_info[1])]
    assert logged, "the error is logged for operators"


def test_a_route_that_raises_after_writing_leaves_nothing_behind(raising_app, database_url):
    response = raising_app.test_client().post(f"{API}/explode", json={})
    assert response.status_code == 500
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM agencies WHERE name = :name"), {"name": BOOM_AGENCY}
            ).scalar()
    finally:
        engine.dispose()
    assert found == 0


# --- input the database cannot hold is refused up front, never a 500 from the driver ------------

HUGE = 99_999_999_999_999_999_999


@pytest.mark.parametrize("referral_id", [2**31, 2**63, HUGE])
def test_an_id_too_large_for_the_database_is_a_404_like_any_missing_id(
    client, factory, referral_id
):
    agency = factory.agency()
    assert_problem(
        client.get(f"{API}/referrals/{referral_id}", headers=agency.headers()), 404, "not-found"
    )
    assert_problem(
        client.patch(f"{API}/referrals/{referral_id}/patient", json={}, headers=agency.headers()),
        404,
        "not-found",
    )


@pytest.mark.parametrize("param", ["agency_id", "owner_id"])
def test_a_filter_id_too_large_for_the_database_is_422_naming_it(client, factory, param):
    coordinator = factory.staff()
    response = client.get(
        f"{API}/referrals", query_string={param: HUGE}, headers=coordinator.headers()
    )
    body = assert_problem(response, 422, "validation-failed")
    assert f"query.{param}" in {e["field"] for e in body["errors"]}


def test_an_owner_id_too_large_for_the_database_is_422(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = client.put(
        f"{API}/referrals/{referral.id}/owner",
        json={"owner_id": HUGE},
        headers=coordinator.headers(),
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["field"] == "owner_id"


def test_a_nul_character_in_a_submitted_string_is_422_naming_the_field(client, factory, session):
    agency = factory.agency()
    before = _counts(session)
    payload = referral_payload(
        patient={"given_name": "Jo\u0000nas"}, intake={"complaints": ["ok", "b\u0000d"]}
    )
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert {e["field"] for e in body["errors"]} == {"patient.given_name", "intake.complaints[1]"}
    assert _counts(session) == before


def test_a_nul_character_in_a_note_or_contact_update_is_422(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    note = client.post(
        f"{API}/referrals/{referral.id}/notes",
        json={"body": "a\u0000b"},
        headers=coordinator.headers(),
    )
    assert assert_problem(note, 422, "validation-failed")["errors"][0]["field"] == "body"
    contact = client.patch(
        f"{API}/referrals/{referral.id}/patient",
        json={"email": "x\u0000@patient.example"},
        headers=agency.headers(),
    )
    assert assert_problem(contact, 422, "validation-failed")["errors"][0]["field"] == "email"


def test_a_nul_character_in_a_query_parameter_is_422_naming_it(client, factory):
    coordinator = factory.staff()
    response = client.get(f"{API}/referrals?q=ab%00cd", headers=coordinator.headers())
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["field"] == "query.q"


def test_an_unknown_address_is_said_in_plain_words(client):
    body = client.get("/api/v1/no-such-thing").json
    assert body["detail"] == "nothing is at /api/v1/no-such-thing: check the address and the id"


def test_a_method_not_allowed_names_the_ones_that_are(client):
    response = client.delete("/api/v1/procedures")
    assert response.status_code == 405
    assert response.json["detail"].startswith("DELETE is not allowed on /api/v1/procedures")
    assert "GET" in response.json["detail"]
