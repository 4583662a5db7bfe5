"""The referral endpoints: submit, validate, list and page, search, own, note, move, update."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from crm.catalogue.models import Procedure
from crm.core.audit import AuditEvent
from crm.patients.models import Patient
from crm.referrals import guards
from crm.referrals.models import Referral, ReferralNote, StageTransition
from crm.referrals.stages import CORE_GUARDS, MRI_ON_FILE
from tests.api.helpers import API, assert_problem, field_errors
from tests.factories import referral_payload


def _count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def _submit(client, caller, **overrides):
    return client.post(
        f"{API}/referrals", json=referral_payload(**overrides), headers=caller.headers()
    )


def _move(client, staff, referral_id: int, to: str, **extra):
    return client.post(
        f"{API}/referrals/{referral_id}/transitions",
        json={"to": to, **extra},
        headers=staff.headers(),
    )


def _list(client, caller, **query):
    return client.get(f"{API}/referrals", query_string=query, headers=caller.headers())


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def _set_updated_at(session, referral_id: int, moment: datetime) -> None:
    session.execute(update(Referral).where(Referral.id == referral_id).values(updated_at=moment))
    session.commit()


def _second_procedure(session) -> Procedure:
    procedure = Procedure(
        code="knee_replacement",
        name="Total knee replacement",
        specialty="Orthopaedics",
        anaesthesia="regional",
        duration_minutes_min=60,
        duration_minutes_max=120,
        hospital_nights_min=2,
        hospital_nights_max=4,
        recovery_weeks_min=6,
        recovery_weeks_max=12,
    )
    session.add(procedure)
    session.commit()
    return procedure


# --- submitting -------------------------------------------------------------------------


def test_an_agency_submits_a_referral_and_gets_it_back_with_its_location(client, factory, session):
    agency = factory.agency()
    response = _submit(client, agency, agency_reference="BMT-0001")
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/referrals/{body['id']}")
    assert body["stage"] == "enquiry"
    assert body["procedure"] == "microdiscectomy"
    assert body["agency_reference"] == "BMT-0001"
    assert body["agency"] == {"id": agency.actor.agency_id, "name": agency.actor.label}
    assert body["owner"] is None
    assert body["patient"]["phone"] == "+4915112345678"
    assert body["intake"]["pain_score"] == 7
    assert body["intake"]["treatments_tried"] == [
        {"treatment": "physical_therapy", "duration_weeks": 8}
    ]
    assert body["history"][0]["from"] is None
    assert body["history"][0]["to"] == "enquiry"
    assert body["history"][0]["actor_type"] == "agency"
    assert "awaiting_mri" in body["allowed_transitions"]
    assert "notes" not in body
    session.expire_all()
    stored = session.get(Referral, body["id"])
    assert stored.agency_id == agency.actor.agency_id
    assert stored.patient.agency_id == agency.actor.agency_id
    assert {c.channel: c.granted for c in stored.patient.consents} == {"sms": True, "email": True}


def test_staff_submit_a_direct_enquiry_that_belongs_to_no_agency(client, factory):
    coordinator = factory.staff("coordinator")
    response = _submit(client, coordinator, agency_reference=None)
    assert response.status_code == 201, response.json
    assert response.json["agency"] is None
    assert response.json["history"][0]["actor_type"] == "staff"


def test_a_national_phone_number_is_stored_in_e164_using_the_patients_country(client, factory):
    agency = factory.agency()
    response = _submit(client, agency, patient={"phone": "0151 12345678", "country": "DE"})
    assert response.status_code == 201, response.json
    assert response.json["patient"]["phone"] == "+4915112345678"


def test_country_language_and_email_are_normalised(client, factory):
    agency = factory.agency()
    response = _submit(
        client,
        agency,
        patient={"country": "de", "language": "pt_BR", "email": "Jonas@Patient.EXAMPLE"},
    )
    assert response.status_code == 201, response.json
    patient = response.json["patient"]
    assert patient["country"] == "DE"
    assert patient["language"] == "pt-BR"
    assert patient["email"] == "Jonas@patient.example"


def test_an_email_alone_is_enough_to_reach_the_patient(client, factory):
    agency = factory.agency()
    response = _submit(client, agency, patient={"phone": None})
    assert response.status_code == 201, response.json
    assert response.json["patient"]["phone"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"patient": {"phone": "+49123"}}, "patient.phone"),
        ({"patient": {"phone": "call me maybe"}}, "patient.phone"),
        ({"patient": {"email": "not-an-email"}}, "patient.email"),
        ({"patient": {"email": "jonas@"}}, "patient.email"),
        ({"patient": {"time_zone": "Mars/Olympus_Mons"}}, "patient.time_zone"),
        ({"patient": {"time_zone": "europe/berlin"}}, "patient.time_zone"),
        ({"patient": {"language": "klingon"}}, "patient.language"),
        ({"patient": {"language": "zz"}}, "patient.language"),
        ({"patient": {"country": "XX"}}, "patient.country"),
        ({"patient": {"country": "Germany"}}, "patient.country"),
        ({"patient": {"date_of_birth": "2999-01-01"}}, "patient.date_of_birth"),
        ({"patient": {"date_of_birth": "1850-01-01"}}, "patient.date_of_birth"),
        ({"patient": {"date_of_birth": "1980-13-45"}}, "patient.date_of_birth"),
        ({"patient": {"sex": "robot"}}, "patient.sex"),
        ({"patient": {"given_name": ""}}, "patient.given_name"),
        ({"intake": {"pain_score": 11}}, "intake.pain_score"),
        ({"intake": {"pain_score": -1}}, "intake.pain_score"),
        ({"intake": {"pain_score": "severe"}}, "intake.pain_score"),
        ({"intake": {"symptom_duration_weeks": -3}}, "intake.symptom_duration_weeks"),
        (
            {"intake": {"treatments_tried": [{"treatment": "rest", "duration_weeks": -1}]}},
            "intake.treatments_tried[0].duration_weeks",
        ),
        ({"procedure": "time_travel"}, "procedure"),
    ],
)
def test_a_bad_value_is_422_naming_the_field_and_nothing_is_stored(
    client, factory, session, overrides, field
):
    agency = factory.agency()
    before = (_count(session, Referral), _count(session, Patient))
    response = _submit(client, agency, **overrides)
    body = assert_problem(response, 422, "validation-failed")
    errors = field_errors(body)
    assert field in errors, errors
    assert errors[field]
    assert field in body["detail"]
    assert (_count(session, Referral), _count(session, Patient)) == before


def test_a_patient_with_neither_phone_nor_email_is_422_saying_how_to_reach_them(client, factory):
    agency = factory.agency()
    response = _submit(client, agency, patient={"phone": None, "email": None})
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "phone number or an email" in errors["patient.phone"]


def test_a_missing_required_field_is_named(client, factory):
    agency = factory.agency()
    payload = referral_payload()
    del payload["patient"]["time_zone"]
    del payload["procedure"]
    response = client.post(f"{API}/referrals", json=payload, headers=agency.headers())
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert {"patient.time_zone", "procedure"} <= set(errors)


def test_every_bad_field_is_named_in_one_response(client, factory):
    agency = factory.agency()
    response = _submit(
        client,
        agency,
        patient={"email": "nope", "time_zone": "Nowhere/Town", "country": "QQ"},
        intake={"pain_score": 99},
    )
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert {
        "patient.email",
        "patient.time_zone",
        "patient.country",
        "intake.pain_score",
    } <= set(errors)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"stage": "completed"}, "stage"),
        ({"agency_id": 1}, "agency_id"),
        ({"owner_id": 1}, "owner_id"),
        ({"patient": {"agency_id": 1}}, "patient.agency_id"),
    ],
)
def test_a_field_a_client_may_not_set_is_refused(client, factory, overrides, field):
    agency = factory.agency()
    response = _submit(client, agency, **overrides)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert field in errors


def test_an_agency_reference_used_twice_by_the_same_agency_is_409(client, factory, session):
    agency = factory.agency()
    assert _submit(client, agency, agency_reference="DUP-1").status_code == 201
    before = _count(session, Referral)
    again = _submit(client, agency, agency_reference="DUP-1")
    body = assert_problem(again, 409, "conflict")
    assert body["field"] == "agency_reference"
    assert _count(session, Referral) == before


# --- listing and paging -----------------------------------------------------------------


def test_an_agency_lists_its_referrals_most_recently_changed_first(client, factory, session):
    agency = factory.agency()
    first, second = factory.referral(agency), factory.referral(agency)
    _set_updated_at(session, first.id, datetime(2025, 1, 2, tzinfo=UTC))
    _set_updated_at(session, second.id, datetime(2025, 1, 1, tzinfo=UTC))
    response = _list(client, agency)
    assert _ids(response) == [first.id, second.id]
    assert response.json["next_cursor"] is None
    item = response.json["items"][0]
    assert item["patient"]["family_name"]
    assert "history" not in item
    assert "notes" not in item


def test_the_list_filters_by_one_or_several_stages(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    stays, moves, holds = (factory.referral(agency) for _ in range(3))
    assert _move(client, coordinator, moves.id, "awaiting_mri").status_code == 201
    assert _move(client, coordinator, holds.id, "on_hold").status_code == 201
    assert _ids(_list(client, agency, stage="awaiting_mri")) == [moves.id]
    assert _ids(_list(client, agency, stage="enquiry")) == [stays.id]
    both = client.get(f"{API}/referrals?stage=enquiry&stage=on_hold", headers=agency.headers())
    assert sorted(_ids(both)) == sorted([stays.id, holds.id])


def test_an_unknown_stage_filter_is_422(client, factory):
    agency = factory.agency()
    errors = field_errors(
        assert_problem(_list(client, agency, stage="done"), 422, "validation-failed")
    )
    assert any(field.startswith("query.stage") for field in errors)


def test_the_list_filters_by_updated_since(client, factory, session):
    agency = factory.agency()
    old, recent = factory.referral(agency), factory.referral(agency)
    _set_updated_at(session, old.id, datetime(2024, 1, 1, tzinfo=UTC))
    _set_updated_at(session, recent.id, datetime(2025, 6, 1, 12, tzinfo=UTC))
    assert _ids(_list(client, agency, updated_since="2025-01-01T00:00:00Z")) == [recent.id]
    # the same instant in another zone
    assert _ids(_list(client, agency, updated_since="2025-06-01T14:00:00+02:00")) == [recent.id]
    assert _ids(_list(client, agency, updated_since="2025-06-01T12:00:01Z")) == []
    assert len(_ids(_list(client, agency, updated_since="2023-01-01T00:00:00Z"))) == 2


def test_updated_since_without_a_zone_is_422(client, factory):
    agency = factory.agency()
    response = _list(client, agency, updated_since="2025-01-01T00:00:00")
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.updated_since" in errors


def test_cursor_pagination_visits_every_referral_once_in_order(client, factory, session):
    agency = factory.agency()
    referrals = [factory.referral(agency) for _ in range(8)]
    # Ties on updated_at must be broken by id, or a page boundary would skip or repeat.
    tie = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    for index, referral in enumerate(referrals):
        moment = tie if index in (2, 3, 4) else tie - timedelta(minutes=index)
        _set_updated_at(session, referral.id, moment)
    seen: list[int] = []
    pages = 0
    cursor = None
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = _list(client, agency, **query)
        page = _ids(response)
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
    response = _list(client, agency, limit=2)
    assert len(_ids(response)) == 2
    assert response.json["next_cursor"] is None


@pytest.mark.parametrize("limit", [101, 1000, 0, -1])
def test_a_limit_outside_1_to_100_is_422_naming_limit(client, factory, limit):
    agency = factory.agency()
    response = _list(client, agency, limit=limit)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.limit" in errors


def test_a_limit_of_100_is_accepted(client, factory):
    agency = factory.agency()
    assert _list(client, agency, limit=100).status_code == 200


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
    response = _list(client, agency, cursor=cursor)
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "query.cursor" in errors


# --- staff: search and filters -------------------------------------------------------------


def test_staff_see_every_agencys_referrals_and_direct_ones(client, factory):
    first, second, coordinator = factory.agency(), factory.agency(), factory.staff()
    a, b, direct = factory.referral(first), factory.referral(second), factory.referral(coordinator)
    seen = set(_ids(_list(client, coordinator, limit=100)))
    assert {a.id, b.id, direct.id} <= seen


def test_staff_filter_by_agency_and_by_direct(client, factory):
    first, second, coordinator = factory.agency(), factory.agency(), factory.staff()
    a, b, direct = factory.referral(first), factory.referral(second), factory.referral(coordinator)
    assert _ids(_list(client, coordinator, agency_id=first.actor.agency_id)) == [a.id]
    assert _ids(_list(client, coordinator, agency_id=second.actor.agency_id)) == [b.id]
    directs = _ids(_list(client, coordinator, direct="true", limit=100))
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
    assert _ids(_list(client, coordinator, owner_id=coordinator.actor.id)) == [mine.id]
    assert _ids(_list(client, coordinator, owner_id=other.actor.id)) == [theirs.id]
    unassigned = _ids(
        _list(client, coordinator, unassigned="true", agency_id=agency.actor.agency_id)
    )
    assert unassigned == [nobodys.id]


def test_staff_filter_by_procedure(client, factory, session):
    _second_procedure(session)
    agency, coordinator = factory.agency(), factory.staff()
    spine = factory.referral(agency)
    knee = factory.referral(agency, procedure="knee_replacement")
    scoped = {"agency_id": agency.actor.agency_id}
    assert _ids(_list(client, coordinator, procedure="knee_replacement", **scoped)) == [knee.id]
    assert _ids(_list(client, coordinator, procedure="microdiscectomy", **scoped)) == [spine.id]
    assert _ids(_list(client, coordinator, procedure="nothing_like_it", **scoped)) == []


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
        assert _ids(_list(client, coordinator, q=text)) == [target.id], text


def test_search_treats_percent_and_underscore_literally(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    factory.referral(agency, agency_reference="ABC-1")
    scoped = {"agency_id": agency.actor.agency_id}
    assert _ids(_list(client, coordinator, q="%%", **scoped)) == []
    assert _ids(_list(client, coordinator, q="A_C", **scoped)) == []


def test_a_one_letter_search_is_422_naming_q(client, factory):
    coordinator = factory.staff()
    errors = field_errors(
        assert_problem(_list(client, coordinator, q="a"), 422, "validation-failed")
    )
    assert "query.q" in errors


# --- owner ----------------------------------------------------------------------------------


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
    listing = _list(client, agency)
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
    assert _count(session, ReferralNote) == 0


# --- transitions ----------------------------------------------------------------------------


def _history_rows(session, referral_id: int) -> list[tuple[str | None, str]]:
    session.expire_all()
    return [
        (row.from_stage, row.to_stage)
        for row in session.scalars(
            select(StageTransition)
            .where(StageTransition.referral_id == referral_id)
            .order_by(StageTransition.id)
        )
    ]


def test_a_coordinator_moves_a_referral_forward(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = _move(client, coordinator, referral.id, "awaiting_mri", note="asked for the MRI")
    assert response.status_code == 201, response.json
    assert response.json["from"] == "enquiry"
    assert response.json["to"] == "awaiting_mri"
    assert response.json["actor"] == coordinator.actor.label
    assert response.json["actor_type"] == "staff"
    assert response.json["note"] == "asked for the MRI"
    assert _history_rows(session, referral.id) == [(None, "enquiry"), ("enquiry", "awaiting_mri")]
    assert session.get(Referral, referral.id).stage == "awaiting_mri"


@pytest.mark.parametrize("role", ["specialist", "manager", "admin"])
def test_other_clinical_roles_may_move_a_referral_too(client, factory, role):
    agency, staff = factory.agency(), factory.staff(role)
    referral = factory.referral(agency)
    assert _move(client, staff, referral.id, "awaiting_mri").status_code == 201


def test_an_illegal_move_is_409_naming_the_guard_and_the_allowed_targets(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    body = assert_problem(_move(client, coordinator, referral.id, "completed"), 409, "guard-failed")
    assert body["guard"] == "allowed_transition"
    assert body["allowed"] == ["awaiting_mri", "lost", "mri_review", "on_hold"]
    assert "completed" in body["detail"]
    assert _history_rows(session, referral.id) == [(None, "enquiry")]
    assert session.get(Referral, referral.id).stage == "enquiry"


def test_nothing_leaves_a_terminal_stage(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    assert _move(client, coordinator, referral.id, "lost", reason="price").status_code == 201
    body = assert_problem(_move(client, coordinator, referral.id, "enquiry"), 409, "guard-failed")
    assert body["allowed"] == []


def test_lost_without_a_reason_is_409_naming_the_guard(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    body = assert_problem(_move(client, coordinator, referral.id, "lost"), 409, "guard-failed")
    assert [g["guard"] for g in body["guards"]] == ["lost_reason_required"]
    assert "reason" in body["guards"][0]["reason"]
    session.expire_all()
    assert session.get(Referral, referral.id).stage == "enquiry"


def test_lost_for_an_other_reason_needs_a_note(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    body = assert_problem(
        _move(client, coordinator, referral.id, "lost", reason="other"), 409, "guard-failed"
    )
    assert body["guards"][0]["guard"] == "lost_reason_required"
    ok = _move(client, coordinator, referral.id, "lost", reason="other", note="moved abroad")
    assert ok.status_code == 201


def test_lost_with_a_reason_records_it(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = _move(client, coordinator, referral.id, "lost", reason="chose_another_provider")
    assert response.status_code == 201, response.json
    assert response.json["reason"] == "chose_another_provider"
    detail = client.get(f"{API}/referrals/{referral.id}", headers=agency.headers())
    assert detail.json["stage"] == "lost"
    assert detail.json["lost_reason"] == "chose_another_provider"
    assert detail.json["allowed_transitions"] == []


def test_an_unknown_lost_reason_is_422_naming_reason(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = _move(client, coordinator, referral.id, "lost", reason="bored")
    assert "reason" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_an_unknown_target_stage_is_422_naming_to(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = _move(client, coordinator, referral.id, "teleported")
    assert "to" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_on_hold_then_resume_returns_to_the_stage_it_left(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    url = f"{API}/referrals/{referral.id}"
    assert _move(client, coordinator, referral.id, "awaiting_mri").status_code == 201
    assert _move(client, coordinator, referral.id, "on_hold").status_code == 201
    held = client.get(url, headers=coordinator.headers()).json
    assert held["stage"] == "on_hold"
    assert held["held_from_stage"] == "awaiting_mri"
    assert held["allowed_transitions"] == ["awaiting_mri", "lost"]
    elsewhere = assert_problem(
        _move(client, coordinator, referral.id, "mri_review"), 409, "guard-failed"
    )
    assert elsewhere["allowed"] == ["awaiting_mri", "lost"]
    resumed = _move(client, coordinator, referral.id, "awaiting_mri")
    assert resumed.status_code == 201
    assert resumed.json["from"] == "on_hold"
    back = client.get(url, headers=coordinator.headers()).json
    assert back["stage"] == "awaiting_mri"
    assert back["held_from_stage"] is None
    assert [h["to"] for h in back["history"]] == [
        "enquiry",
        "awaiting_mri",
        "on_hold",
        "awaiting_mri",
    ]


def test_a_pluggable_guard_refuses_by_name_until_its_fact_holds(client, factory, monkeypatch):
    facts = {"has_mri": False}
    monkeypatch.setattr(guards, "_guards", [*CORE_GUARDS, MRI_ON_FILE])
    monkeypatch.setattr(guards, "_fact_providers", [lambda referral: dict(facts)])
    agency, specialist = factory.agency(), factory.staff("specialist")
    referral = factory.referral(agency)
    body = assert_problem(_move(client, specialist, referral.id, "mri_review"), 409, "guard-failed")
    assert body["guards"] == [
        {
            "guard": "mri_document_present",
            "reason": "an MRI study must be uploaded before the specialist review",
        }
    ]
    facts["has_mri"] = True
    assert _move(client, specialist, referral.id, "mri_review").status_code == 201


def test_history_and_time_in_stages_are_reported(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    assert _move(client, coordinator, referral.id, "awaiting_mri").status_code == 201
    now = datetime.now(UTC)
    rows = session.scalars(
        select(StageTransition)
        .where(StageTransition.referral_id == referral.id)
        .order_by(StageTransition.id)
    ).all()
    rows[0].occurred_at = now - timedelta(hours=3)
    rows[1].occurred_at = now - timedelta(hours=1)
    session.commit()
    body = client.get(f"{API}/referrals/{referral.id}", headers=agency.headers()).json
    assert [(h["from"], h["to"]) for h in body["history"]] == [
        (None, "enquiry"),
        ("enquiry", "awaiting_mri"),
    ]
    for entry in body["history"]:
        assert entry["occurred_at"]
        assert entry["actor"]
    assert set(body["time_in_stages"]) == {"enquiry", "awaiting_mri"}
    assert abs(body["time_in_stages"]["enquiry"] - 7200) <= 5
    assert abs(body["time_in_stages"]["awaiting_mri"] - 3600) <= 60


# --- patient contact ------------------------------------------------------------------------


def _patch(client, caller, referral_id: int, body: dict):
    return client.patch(
        f"{API}/referrals/{referral_id}/patient", json=body, headers=caller.headers()
    )


def test_an_agency_updates_the_patients_contact_details(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(
        client,
        agency,
        referral.id,
        {
            "phone": "+905321234567",
            "email": "new.address@patient.example",
            "language": "tr",
            "time_zone": "Europe/Istanbul",
        },
    )
    assert response.status_code == 200, response.json
    patient = response.json["patient"]
    assert patient["phone"] == "+905321234567"
    assert patient["email"] == "new.address@patient.example"
    assert patient["language"] == "tr"
    assert patient["time_zone"] == "Europe/Istanbul"
    session.expire_all()
    stored = session.get(Referral, referral.id).patient
    assert (stored.phone, stored.language, stored.time_zone) == (
        "+905321234567",
        "tr",
        "Europe/Istanbul",
    )


def test_only_the_fields_sent_are_changed(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency, patient={"email": "keep.me@patient.example"})
    response = _patch(client, agency, referral.id, {"language": "en"})
    assert response.status_code == 200
    assert response.json["patient"]["email"] == "keep.me@patient.example"
    assert response.json["patient"]["phone"] == "+4915112345678"


def test_a_consent_change_is_recorded_with_its_source_and_audited(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(
        client, agency, referral.id, {"consents": {"sms": False, "source": "patient phoned"}}
    )
    assert response.status_code == 200, response.json
    consents = {c["channel"]: c for c in response.json["patient"]["consents"]}
    assert consents["sms"]["granted"] is False
    assert consents["sms"]["source"] == "patient phoned"
    assert consents["email"]["granted"] is True
    session.expire_all()
    assert session.get(Referral, referral.id).patient.may_contact("sms") is False
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "patient.contact_update", AuditEvent.referral_id == referral.id
        )
    ).one()
    assert event.actor_type == "agency"
    assert event.actor_id == agency.actor.agency_id
    assert event.detail["consents"] == {"sms": False}


def test_a_consent_given_without_a_source_names_the_agency(client, factory):
    agency = factory.agency()
    referral = factory.referral(agency, patient={"consents": {}})
    response = _patch(client, agency, referral.id, {"consents": {"email": True}})
    consent = response.json["patient"]["consents"][0]
    assert consent["channel"] == "email"
    assert agency.actor.label in consent["source"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "+1"}, "phone"),
        ({"email": "nobody"}, "email"),
        ({"language": "klingon"}, "language"),
        ({"time_zone": "Atlantis/Capital"}, "time_zone"),
        ({"consents": {"sms": "perhaps"}}, "consents.sms"),
        ({"given_name": "Someone Else"}, "given_name"),
        ({"country": "TR"}, "country"),
    ],
)
def test_a_bad_or_forbidden_contact_change_is_422_and_changes_nothing(
    client, factory, session, body, field
):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(client, agency, referral.id, {"language": "en"} | body)
    assert field in field_errors(assert_problem(response, 422, "validation-failed"))
    session.expire_all()
    assert session.get(Referral, referral.id).patient.language == "de"


# --- the catalogue -------------------------------------------------------------------------


def test_an_agency_reads_the_procedure_catalogue(client, factory):
    agency = factory.agency()
    response = client.get(f"{API}/procedures", headers=agency.headers())
    assert response.status_code == 200
    spine = next(p for p in response.json if p["code"] == "microdiscectomy")
    assert spine["requires_mri"] is True
    assert spine["anaesthesia"] == "general"
    assert (spine["duration_minutes_min"], spine["duration_minutes_max"]) == (45, 60)
    assert (spine["hospital_nights_min"], spine["hospital_nights_max"]) == (1, 2)
    assert (spine["recovery_weeks_min"], spine["recovery_weeks_max"]) == (4, 6)
    one = client.get(f"{API}/procedures/microdiscectomy", headers=agency.headers())
    assert one.json["follow_up_schedule"][0] == {"label": "day_1", "offset_days": 1}


def test_an_unknown_procedure_is_a_404_problem(client, factory):
    agency = factory.agency()
    assert_problem(
        client.get(f"{API}/procedures/nothing", headers=agency.headers()), 404, "not-found"
    )


def test_removing_both_phone_and_email_is_422_and_keeps_the_patient_reachable(
    client, factory, session
):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(client, agency, referral.id, {"phone": None, "email": None})
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "phone number or an email" in errors["phone"]
    session.expire_all()
    patient = session.get(Referral, referral.id).patient
    assert patient.phone == "+4915112345678"
    assert patient.email


def test_removing_one_channel_while_the_other_remains_is_fine(client, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = _patch(client, agency, referral.id, {"phone": None})
    assert response.status_code == 200, response.json
    assert response.json["patient"]["phone"] is None
