"""The referral page's timeline: every kind of event, newest first, filtered by kind; no
revenue for specialists; documents download through the access check and the audit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from crm.auth.signin import staff_actor
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.documents.upload import storage
from crm.extensions import db
from crm.messaging.operations import send_ad_hoc
from tests.console.history import (
    PLAN_TOTAL,
    REPLY_TEXT,
    patient_replies,
    talk,
    upload_mri,
    walk_through_treatment,
)
from tests.console.support import sign_in, staff_with_password


@pytest.fixture
def coordinator_user(session):
    return staff_with_password(session, "coordinator")


@pytest.fixture
def treated(app, client, session, factory, coordinator_user, no_quiet_hours, tmp_path):
    """A referral through MRI, review, plan, trip, stay and a red-flag check-in, with a
    note, a message and the patient's SMS reply."""
    referral = factory.referral(factory.agency("Berlin Medical Travel"))
    staff = staff_actor(coordinator_user)
    walk_through_treatment(referral, staff, factory.staff("specialist").actor, tmp_path)
    talk(referral, staff)
    session.commit()
    patient_replies(app, client, referral.patient.phone)
    return referral


def _page(client, referral, kind: str | None = None) -> str:
    query = f"?kind={kind}" if kind else ""
    page = client.get(f"/console/referrals/{referral.id}{query}")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return page.get_data(as_text=True)


def _timeline(html: str) -> str:
    return html[html.index('id="timeline-title"') :]


def _kinds_in_order(html: str) -> list[str]:
    return re.findall(r'class="entry kind-([a-z_]+)', _timeline(html))


def test_the_timeline_shows_an_entry_of_every_kind(client, treated, coordinator_user):
    sign_in(client, coordinator_user.email)
    html = _timeline(_page(client, treated))
    for words in (
        "Referral created in Enquiry",
        "Moved from Enquiry to MRI review",
        "Document uploaded: mri study",
        "Modality: MR · Body part: LSPINE · Study date: 2026-11-01 · Images: 1",
        "Review: candidate",
        "L4-L5 posterolateral herniation",
        "Treatment plan version 1 offered",
        "Plan version 1 accepted",
        "Travel booked",
        "Admitted to hospital",
        "Discharged from hospital",
        "Check-in answered",
        "Alert: red flag (bladder or bowel trouble)",
        "Task opened:",
        "Called the patient: prefers email.",
        "EMAIL to the patient: a message from staff",
        REPLY_TEXT,
    ):
        assert words in html, words
    assert set(_kinds_in_order(html)) >= {
        "stage",
        "message",
        "reply",
        "document",
        "review",
        "plan",
        "travel",
        "check_in",
        "task",
        "note",
    }


def test_entries_are_newest_first(client, treated, coordinator_user):
    sign_in(client, coordinator_user.email)
    html = _timeline(_page(client, treated))
    stamps = re.findall(r'<time datetime="([^"]+)"', html)
    assert len(stamps) > 10
    assert stamps == sorted(stamps, reverse=True)
    assert html.index(REPLY_TEXT) < html.index("Referral created in Enquiry")


def test_a_message_shows_its_delivery_status_and_the_patients_local_time(
    client, treated, coordinator_user
):
    sign_in(client, coordinator_user.email)
    html = _timeline(_page(client, treated, "message"))
    assert set(_kinds_in_order(html)) == {"message"}
    assert 'class="status status-queued"' in html
    assert "patient's time" in html and "CET" in html  # Europe/Berlin, beside the viewer's UTC


def test_a_held_message_says_when_it_goes_out_in_both_zones(
    client, session, factory, coordinator_user, no_quiet_hours
):
    referral = factory.referral(factory.agency())
    args = {"channels": ["sms"], "fallback": False, "subject": "s", "message": "m"}
    [sms] = send_ad_hoc(referral, args, staff_actor(coordinator_user))
    sms.next_attempt_at = utcnow() + timedelta(hours=5)  # as quiet hours at night would
    session.commit()
    sign_in(client, coordinator_user.email)
    html = _timeline(_page(client, referral, "message"))
    assert 'class="status status-held"' in html
    assert "Held by quiet hours or a spend cap" in html and "Goes out" in html


def test_a_suppressed_message_says_why(client, treated, coordinator_user):
    sign_in(client, coordinator_user.email)
    html = _timeline(_page(client, treated, "message"))
    assert 'class="status status-suppressed"' in html
    assert "Suppressed: no address" in html  # the agency has no email address


def test_the_filter_shows_one_kind_only(client, treated, coordinator_user):
    sign_in(client, coordinator_user.email)
    assert set(_kinds_in_order(_page(client, treated, "reply"))) == {"reply"}
    assert set(_kinds_in_order(_page(client, treated, "note"))) == {"note"}


def test_the_audit_trail_shows_who_read_and_changed_the_referral(client, treated, coordinator_user):
    sign_in(client, coordinator_user.email)
    html = _timeline(_page(client, treated, "audit"))
    assert set(_kinds_in_order(html)) == {"audit"}
    assert "referral.read" in html and "referral.note" in html
    assert coordinator_user.name in html
    assert "kind-audit" not in _timeline(_page(client, treated))  # not in the default view


def test_a_coordinator_sees_the_plan_total(client, treated, coordinator_user):
    sign_in(client, coordinator_user.email)
    assert f"Total {PLAN_TOTAL}" in _page(client, treated, "plan")


def test_a_specialist_sees_the_plan_versions_but_no_amounts(client, treated, session):
    sign_in(client, staff_with_password(session, "specialist").email)
    html = _page(client, treated, "everything")
    assert "Treatment plan version 1 offered" in html
    assert PLAN_TOTAL not in html and "Total " not in html
    assert "6,500" not in html and "7,200" not in html
    assert "The text sent" not in html  # a plan's email quotes its price


def test_reading_the_page_with_its_timeline_is_audited_once(
    client, treated, coordinator_user, session
):
    sign_in(client, coordinator_user.email)
    _page(client, treated, "everything")
    reads = session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.referral_id == treated.id,
            AuditEvent.actor_id == coordinator_user.id,
            AuditEvent.action.like("%.read"),  # not conversation.marked_read: a change
        )
    )
    assert reads == 1


def _queries_for(app, client, referral) -> int:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        _page(client, referral, "everything")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_the_number_of_queries_does_not_grow_with_the_entries(
    app, client, factory, treated, coordinator_user
):
    fresh = factory.referral(factory.agency())
    sign_in(client, coordinator_user.email)
    _queries_for(app, client, treated)  # the first view marks the patient's reply read
    few, many = _queries_for(app, client, fresh), _queries_for(app, client, treated)
    # loaded once each when there is one, whatever the entries: the timeline's plan lines
    # and trip flights, the clinical section's plan versions and trip
    assert many <= few + 4, (few, many)


# -- documents -------------------------------------------------------------------------


@pytest.fixture
def with_mri(factory, session, coordinator_user, tmp_path):
    referral = factory.referral(factory.agency())
    document = upload_mri(referral, staff_actor(coordinator_user), tmp_path, someone_else=True)
    session.commit()
    return referral, document


def test_a_name_mismatch_is_flagged_on_the_document(client, with_mri, coordinator_user):
    referral, _ = with_mri
    sign_in(client, coordinator_user.email)
    assert "Name mismatch:" in _page(client, referral, "document")


def test_a_document_downloads_with_its_bytes_and_an_audit_row(
    client, with_mri, session, coordinator_user
):
    referral, document = with_mri
    sign_in(client, coordinator_user.email)
    link = f"/console/documents/{document.id}/content"
    assert link in _page(client, referral, "document")
    response = client.get(link)
    assert response.status_code == 200
    assert response.data == storage().read_bytes(document.sha256)
    assert "attachment" in response.headers["Content-Disposition"]
    response.close()
    [row] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "document.download", AuditEvent.actor_id == coordinator_user.id
        )
    ).all()
    assert (row.referral_id, row.detail["document_id"]) == (referral.id, document.id)


def test_any_staff_role_may_download_a_document(client, with_mri, session):
    _, document = with_mri
    sign_in(client, staff_with_password(session, "specialist").email)
    response = client.get(f"/console/documents/{document.id}/content")
    assert response.status_code == 200
    response.close()


def test_a_missing_document_is_a_404_page(client, coordinator_user):
    sign_in(client, coordinator_user.email)
    response = client.get("/console/documents/999999/content")
    assert response.status_code == 404
    assert "text/html" in response.content_type
    assert "no document 999999" in response.get_data(as_text=True)


def test_signed_out_a_download_sends_to_sign_in(client, with_mri):
    _, document = with_mri
    response = client.get(f"/console/documents/{document.id}/content")
    assert response.status_code == 302
    assert "/console/sign-in" in response.headers["Location"]
