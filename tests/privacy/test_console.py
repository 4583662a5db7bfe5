"""The console: the export button on the referral page, the privacy page's forms, retention."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.patients.models import Patient
from crm.privacy.operations import set_hold
from tests.console.support import csrf_token
from tests.console.test_report_pages import signed_in


def page_of(case) -> str:
    return f"/console/patients/{case.patient_id}/privacy"


def submit(client, case, path: str, data: dict):
    token = csrf_token(client, page_of(case))
    return client.post(path, data={**data, "csrf_token": token})


def test_a_manager_sees_the_export_button_on_the_referral_page(client, session, case):
    signed_in(client, session, "manager")
    html = client.get(f"/console/referrals/{case.id}").get_data(as_text=True)
    assert f'action="/console/patients/{case.patient_id}/export"' in html


def test_a_coordinator_sees_no_privacy_section_and_gets_403(client, session, case):
    signed_in(client, session, "coordinator")
    html = client.get(f"/console/referrals/{case.id}").get_data(as_text=True)
    assert "/export" not in html
    assert client.get(page_of(case)).status_code == 403


def test_the_console_export_is_the_zip_and_is_audited(client, session, case):
    signed_in(client, session, "manager")
    response = client.get(f"/console/patients/{case.patient_id}/export")
    assert response.status_code == 200
    assert "data.json" in zipfile.ZipFile(io.BytesIO(response.get_data())).namelist()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.referral_id == case.id))
    assert "privacy.export" in set(actions)


def test_the_erasure_form_erases_once_confirmed(client, session, case):
    signed_in(client, session, "manager")
    path = f"/console/patients/{case.patient_id}/erasure"
    response = submit(client, case, path, {"reason": "DSR-1", "confirm": "erase"})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Patient, case.patient_id).given_name == "Erased"
    assert "Erased: 1 patient record(s)" in client.get(page_of(case)).get_data(as_text=True)


def test_without_the_confirmation_word_nothing_is_erased(client, session, case):
    signed_in(client, session, "manager")
    path = f"/console/patients/{case.patient_id}/erasure"
    submit(client, case, path, {"reason": "DSR-1", "confirm": "yes"})
    session.expire_all()
    assert session.get(Patient, case.patient_id).given_name != "Erased"
    assert "type erase to confirm" in client.get(page_of(case)).get_data(as_text=True)


def test_a_held_patients_page_says_why_it_cannot_be_erased(client, session, manager, case):
    set_hold(case.patient_id, manager.actor, "claim 2026/77")
    session.commit()
    signed_in(client, session, "manager")
    html = client.get(page_of(case)).get_data(as_text=True)
    assert "Not possible now:" in html and "claim 2026/77" in html
    assert "Erase this person" not in html


def test_the_hold_forms_set_and_lift(client, session, case):
    signed_in(client, session, "manager")
    base = f"/console/patients/{case.patient_id}/legal-hold"
    submit(client, case, base, {"reason": "dispute"})
    assert "On hold." in client.get(page_of(case)).get_data(as_text=True)
    submit(client, case, f"{base}/lift", {"reason": "settled"})
    html = client.get(page_of(case)).get_data(as_text=True)
    assert "On hold." not in html and "Earlier holds: dispute" in html


def test_the_retention_page_lists_the_dry_run(app, client, session, case, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "RETENTION_DAYS_AFTER_COMPLETED", 30)
    signed_in(client, session, "manager")
    html = client.get("/console/privacy/retention", query_string={"horizon": 90})
    assert f"#{case.patient_id}</a>" in html.get_data(as_text=True)
