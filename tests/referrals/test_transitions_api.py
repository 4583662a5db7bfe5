"""Moving a referral: allowed targets, guards, lost reasons, hold and resume, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crm.referrals.models import Referral, StageTransition
from crm.referrals.stages import MRI_ON_FILE
from tests.helpers import API, assert_problem, field_errors
from tests.referrals.support import (
    move,
)


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
    response = move(client, coordinator, referral.id, "awaiting_mri", note="asked for the MRI")
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
    assert move(client, staff, referral.id, "awaiting_mri").status_code == 201


def test_an_illegal_move_is_409_naming_the_guard_and_the_allowed_targets(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    body = assert_problem(move(client, coordinator, referral.id, "completed"), 409, "guard-failed")
    assert body["guard"] == "allowed_transition"
    assert body["allowed"] == ["awaiting_mri", "lost", "mri_review", "on_hold"]
    assert "completed" in body["detail"]
    assert _history_rows(session, referral.id) == [(None, "enquiry")]
    assert session.get(Referral, referral.id).stage == "enquiry"


def test_nothing_leaves_a_terminal_stage(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    assert move(client, coordinator, referral.id, "lost", reason="price").status_code == 201
    body = assert_problem(move(client, coordinator, referral.id, "enquiry"), 409, "guard-failed")
    assert body["allowed"] == []


def test_lost_without_a_reason_is_409_naming_the_guard(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    body = assert_problem(move(client, coordinator, referral.id, "lost"), 409, "guard-failed")
    assert [g["guard"] for g in body["guards"]] == ["lost_reason_required"]
    assert "reason" in body["guards"][0]["reason"]
    session.expire_all()
    assert session.get(Referral, referral.id).stage == "enquiry"


def test_lost_for_an_other_reason_needs_a_note(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    body = assert_problem(
        move(client, coordinator, referral.id, "lost", reason="other"), 409, "guard-failed"
    )
    assert body["guards"][0]["guard"] == "lost_reason_required"
    ok = move(client, coordinator, referral.id, "lost", reason="other", note="moved abroad")
    assert ok.status_code == 201


def test_lost_with_a_reason_records_it(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = move(client, coordinator, referral.id, "lost", reason="chose_another_provider")
    assert response.status_code == 201, response.json
    assert response.json["reason"] == "chose_another_provider"
    detail = client.get(f"{API}/referrals/{referral.id}", headers=agency.headers())
    assert detail.json["stage"] == "lost"
    assert detail.json["lost_reason"] == "chose_another_provider"
    assert detail.json["allowed_transitions"] == []


def test_an_unknown_lost_reason_is_422_naming_reason(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = move(client, coordinator, referral.id, "lost", reason="bored")
    assert "reason" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_an_unknown_target_stage_is_422_naming_to(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    response = move(client, coordinator, referral.id, "teleported")
    assert "to" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_on_hold_then_resume_returns_to_the_stage_it_left(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    url = f"{API}/referrals/{referral.id}"
    assert move(client, coordinator, referral.id, "awaiting_mri").status_code == 201
    assert move(client, coordinator, referral.id, "on_hold").status_code == 201
    held = client.get(url, headers=coordinator.headers()).json
    assert held["stage"] == "on_hold"
    assert held["held_from_stage"] == "awaiting_mri"
    assert held["allowed_transitions"] == ["awaiting_mri", "lost"]
    elsewhere = assert_problem(
        move(client, coordinator, referral.id, "mri_review"), 409, "guard-failed"
    )
    assert elsewhere["allowed"] == ["awaiting_mri", "lost"]
    resumed = move(client, coordinator, referral.id, "awaiting_mri")
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


def test_a_pluggable_guard_refuses_by_name_until_its_fact_holds(client, factory, features):
    facts = {"has_mri": False}
    features.only().guards.switch_on(MRI_ON_FILE, lambda referral: dict(facts))
    agency, specialist = factory.agency(), factory.staff("specialist")
    referral = factory.referral(agency)
    body = assert_problem(move(client, specialist, referral.id, "mri_review"), 409, "guard-failed")
    assert body["guards"] == [
        {
            "guard": "mri_document_present",
            "reason": "an MRI study must be uploaded before the specialist review",
        }
    ]
    facts["has_mri"] = True
    assert move(client, specialist, referral.id, "mri_review").status_code == 201


def test_history_and_time_in_stages_are_reported(client, factory, session):
    agency, coordinator = factory.agency(), factory.staff()
    referral = factory.referral(agency)
    assert move(client, coordinator, referral.id, "awaiting_mri").status_code == 201
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
