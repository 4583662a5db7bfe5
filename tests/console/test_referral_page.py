"""The referral page: the case at a glance for any staff role, 404 for no such referral."""

from __future__ import annotations

from sqlalchemy import select

from crm.core.audit import AuditEvent
from tests.console.support import sign_in, staff_with_password


def test_a_coordinator_sees_the_patient_the_stage_and_the_reference(client, session, factory):
    referral = factory.referral(factory.agency("Berlin Medical Travel"))
    sign_in(client, staff_with_password(session).email)
    page = client.get(f"/console/referrals/{referral.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert referral.reference in text
    assert referral.patient.family_name in text
    assert "Enquiry" in text and "Berlin Medical Travel" in text
    assert "Europe/Berlin" in text  # the patient's local time is shown beside the viewer's


def test_reading_the_page_is_audited(client, session, factory):
    referral = factory.referral(factory.agency())
    sign_in(client, staff_with_password(session, "specialist").email)
    client.get(f"/console/referrals/{referral.id}")
    reads = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "referral.read", AuditEvent.referral_id == referral.id
        )
    ).all()
    assert len(reads) == 1


def test_a_referral_that_does_not_exist_is_a_404_page_in_words(client, session):
    sign_in(client, staff_with_password(session).email)
    page = client.get("/console/referrals/999999")
    assert page.status_code == 404
    assert "text/html" in page.content_type
    assert "no referral 999999" in page.get_data(as_text=True)


def test_signed_out_the_page_sends_to_sign_in_and_back(client, factory):
    referral = factory.referral(factory.agency())
    page = client.get(f"/console/referrals/{referral.id}")
    assert page.status_code == 302
    assert f"next=/console/referrals/{referral.id}" in page.headers["Location"].replace("%2F", "/")
