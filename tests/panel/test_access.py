"""Who reaches the referral pages: an agency's own user; staff go to the console; signed
out goes to sign-in and back; another agency's referral, upload, messages and documents
are 404 as if they did not exist."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from crm.agency_messages.models import AgencyMessage
from crm.documents.models import Document
from tests.console.support import PASSWORD, sign_in, staff_with_password
from tests.panel.support import agency_user, panel_post, signed_in_agency, text


def test_signed_out_the_list_sends_to_sign_in_and_back_after_it(client, session, factory):
    agency = factory.agency()
    user = agency_user(session, agency.actor.agency_id)
    page = client.get("/agency/referrals?stage=enquiry")
    assert page.status_code == 302
    location = page.headers["Location"].replace("%2F", "/").replace("%3F", "?")
    assert "/console/sign-in" in location and "next=/agency/referrals?stage" in location
    after = client.post(
        "/console/sign-in",
        data={
            "email": user.email,
            "password": PASSWORD,
            "next": "/agency/referrals?stage=enquiry",
            "csrf_token": _token(client),
        },
    )
    assert after.headers["Location"].endswith("/agency/referrals?stage=enquiry")


def _token(client) -> str:
    from tests.console.support import csrf_token

    return csrf_token(client)


def test_a_staff_user_is_sent_to_the_console(client, session):
    sign_in(client, staff_with_password(session).email)
    for path in ("/agency/referrals", "/agency/referrals/new", "/agency/referrals/1"):
        page = client.get(path)
        assert page.status_code == 302, path
        assert page.headers["Location"].endswith("/console/"), path


def test_another_agencys_referral_page_is_a_404_like_one_that_does_not_exist(
    client, session, factory
):
    ours, theirs = factory.agency(), factory.agency("Rival Travel")
    other = factory.referral(theirs)
    signed_in_agency(client, session, ours.actor.agency_id)
    page = client.get(f"/agency/referrals/{other.id}")
    assert page.status_code == 404
    assert other.patient.family_name not in text(page)
    assert f"no referral {other.id}" in text(page)  # the words of an id that does not exist
    missing = client.get("/agency/referrals/999999")
    assert missing.status_code == 404 and "no referral 999999" in text(missing)


def test_another_agencys_referral_takes_no_upload(client, session, factory):
    ours, theirs = factory.agency(), factory.agency()
    other = factory.referral(theirs)
    signed_in_agency(client, session, ours.actor.agency_id)
    mine = factory.referral(ours)
    response = panel_post(
        client,
        f"/agency/referrals/{other.id}/documents",
        {"kind": "passport", "file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "p.pdf")},
        form_page=f"/agency/referrals/{mine.id}",
        content_type="multipart/form-data",
    )
    assert response.status_code == 404
    assert session.scalar(select(func.count()).select_from(Document)) == 0


def test_another_agencys_referral_takes_no_message(client, session, factory):
    ours, theirs = factory.agency(), factory.agency()
    other = factory.referral(theirs)
    signed_in_agency(client, session, ours.actor.agency_id)
    mine = factory.referral(ours)
    response = panel_post(
        client,
        f"/agency/referrals/{other.id}/messages",
        {"body": "hello"},
        form_page=f"/agency/referrals/{mine.id}",
    )
    assert response.status_code == 404
    assert session.scalar(select(func.count()).select_from(AgencyMessage)) == 0


def test_another_agencys_document_does_not_download(client, session, factory, tmp_path):
    from crm.documents.operations import store_document

    ours, theirs = factory.agency(), factory.agency()
    other = factory.referral(theirs)
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    document = store_document(other, "radiology_report", "r.pdf", pdf, theirs.actor)
    session.commit()
    signed_in_agency(client, session, ours.actor.agency_id)
    assert client.get(f"/agency/documents/{document.id}/content").status_code == 404


def test_a_form_without_its_csrf_token_is_refused_in_words(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    signed_in_agency(client, session, agency.actor.agency_id)
    refused = client.post(f"/agency/referrals/{referral.id}/messages", data={"body": "hi"})
    assert refused.status_code == 400 and "text/html" in refused.content_type
    assert "This form could not be accepted" in text(refused)
    assert session.scalar(select(func.count()).select_from(AgencyMessage)) == 0
