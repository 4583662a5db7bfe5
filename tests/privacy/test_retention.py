"""Retention: the periods after completion or loss, the job that erases, and the dry run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.core.db import utcnow
from crm.patients.models import Patient
from crm.privacy.jobs import apply_retention
from crm.privacy.models import PatientErasure
from crm.privacy.operations import set_hold
from crm.referrals.operations import move_to_stage
from tests.privacy.support import API, new_referral


@pytest.fixture
def periods(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "RETENTION_DAYS_AFTER_COMPLETED", 365)
    monkeypatch.setitem(app.config["CRM"], "RETENTION_DAYS_AFTER_LOST", 30)


def lost(factory, agency, coordinator, days_ago: int):
    referral = new_referral(factory, agency)
    move_to_stage(referral, "lost", coordinator.actor, reason="price")
    referral.stage_entered_at = utcnow() - timedelta(days=days_ago)
    factory.session.commit()
    return referral


def aged(session, referral, days_ago: int):
    referral.stage_entered_at = utcnow() - timedelta(days=days_ago)
    session.commit()
    return referral


def is_erased(session, referral) -> bool:
    session.expire_all()
    return session.get(PatientErasure, referral.patient_id) is not None


def test_a_loss_older_than_its_period_is_erased(session, factory, agency, coordinator, periods):
    old = lost(factory, agency, coordinator, days_ago=31)
    assert apply_retention() == 1
    assert is_erased(session, old)
    patient = session.get(Patient, old.patient_id)
    assert patient.phone is None and patient.given_name == "Erased"
    assert session.get(PatientErasure, old.patient_id).source == "retention"


def test_a_recent_loss_is_kept(session, factory, agency, coordinator, periods):
    recent = lost(factory, agency, coordinator, days_ago=29)
    assert apply_retention() == 0
    assert not is_erased(session, recent)


def test_a_completion_has_its_own_longer_period(session, case, periods):
    aged(session, case, days_ago=200)
    assert apply_retention() == 0
    aged(session, case, days_ago=366)
    assert apply_retention() == 1
    assert is_erased(session, case)


def test_a_held_patient_is_skipped(session, factory, agency, coordinator, manager, periods):
    old = lost(factory, agency, coordinator, days_ago=90)
    set_hold(old.patient_id, manager.actor, "tax audit")
    session.commit()
    assert apply_retention() == 0
    assert not is_erased(session, old)


def test_a_patient_with_an_active_referral_is_not_due(
    session, factory, agency, coordinator, periods
):
    old = lost(factory, agency, coordinator, days_ago=90)
    again = factory.referral(
        agency, patient={**_same_person(old.patient), "email": "again@privacy.example"}
    )
    assert again.stage == "enquiry"
    assert apply_retention() == 0
    assert not is_erased(session, old)


def test_zero_days_means_never(app, session, factory, agency, coordinator, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "RETENTION_DAYS_AFTER_LOST", 0)
    old = lost(factory, agency, coordinator, days_ago=5000)
    assert apply_retention() == 0
    assert not is_erased(session, old)


def test_the_dry_run_command_lists_and_changes_nothing(
    app, session, factory, agency, coordinator, manager, periods
):
    old = lost(factory, agency, coordinator, days_ago=45)
    held = lost(factory, agency, coordinator, days_ago=40)
    set_hold(held.patient_id, manager.actor, "dispute")
    session.commit()
    result = app.test_cli_runner().invoke(args=["crm", "retention", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(f"patient {old.patient_id} " in line and "lost" in line for line in lines)
    assert any(f"patient {held.patient_id} " in line and "HELD" in line for line in lines)
    assert lines[-1] == "2 patient(s) due; nothing changed (dry run)"
    assert not is_erased(session, old)


def test_the_command_without_dry_run_erases(app, session, factory, agency, coordinator, periods):
    old = lost(factory, agency, coordinator, days_ago=45)
    result = app.test_cli_runner().invoke(args=["crm", "retention"])
    assert result.output.strip() == "erased 1 patient(s)"
    assert is_erased(session, old)


def test_the_api_lists_what_falls_due_within_a_horizon(
    client, session, factory, agency, coordinator, manager, periods
):
    soon = lost(factory, agency, coordinator, days_ago=20)
    url = f"{API}/privacy/retention"
    now = client.get(url, headers=manager.headers()).get_json()
    assert now["days_after_lost"] == 30
    assert soon.patient_id not in [i["patient_id"] for i in now["items"]]
    ahead = client.get(url, query_string={"horizon_days": 15}, headers=manager.headers())
    (item,) = [i for i in ahead.get_json()["items"] if i["patient_id"] == soon.patient_id]
    assert item["basis"] == "lost" and item["held"] is False
    assert not is_erased(session, soon)


def test_the_retention_view_is_for_managers(client, coordinator, agency):
    for caller in (coordinator, agency):
        response = client.get(f"{API}/privacy/retention", headers=caller.headers())
        assert response.status_code == 403


def _same_person(patient: Patient) -> dict:
    return {
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "phone": patient.phone,
        "date_of_birth": patient.date_of_birth.isoformat(),
    }
