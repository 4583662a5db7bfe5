"""Uploads from the referral's page: the API's intake (limits, sniffing, the MRI's move to
review), each refusal said in words on the page with nothing stored."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from crm.documents.models import Document
from crm.documents.samples import write_sample_mri
from crm.referrals.models import Referral
from tests.console.support import csrf_token
from tests.panel.support import signed_in_agency, text

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def mine(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    signed_in_agency(client, session, agency.actor.agency_id)
    return referral


def _upload(client, referral, kind, data: bytes | None, filename="upload.bin"):
    form = {"kind": kind, "csrf_token": csrf_token(client, f"/agency/referrals/{referral.id}")}
    if data is not None:
        form["file"] = (io.BytesIO(data), filename)
    builder = EnvironBuilder(
        path=f"/agency/referrals/{referral.id}/documents",
        method="POST",
        data=form,
        content_type="multipart/form-data",
    )
    environ = builder.get_environ()
    try:
        return client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()


def _stored(session) -> int:
    return session.scalar(select(func.count()).select_from(Document))


def test_an_mri_is_received_listed_and_moves_the_referral_to_review(
    client, session, mine, tmp_path
):
    data = write_sample_mri(tmp_path / "mri.dcm").read_bytes()
    response = _upload(client, mine, "mri_study", data, "mri.dcm")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/agency/referrals/{mine.id}#documents")
    session.expire_all()
    assert session.get(Referral, mine.id).stage == "mri_review"
    page = text(client.get(f"/agency/referrals/{mine.id}"))
    assert "Received: mri.dcm (MRI study)." in page
    assert "MRI study</td>" in page and "Agent" in page  # the uploader, as the API labels it


def test_a_pdf_as_an_mri_is_refused_in_words(client, session, mine):
    response = _upload(client, mine, "mri_study", PDF, "scan.pdf")
    assert response.status_code == 415
    assert "An MRI study must be DICOM or a ZIP of DICOM images; this file is not." in text(
        response
    )
    assert _stored(session) == 0


def test_an_empty_file_is_refused_in_words(client, session, mine):
    response = _upload(client, mine, "passport", b"", "passport.pdf")
    assert response.status_code == 422
    assert "This file is empty: choose the file again." in text(response)


def test_no_file_chosen_is_refused_in_words(client, session, mine):
    response = _upload(client, mine, "passport", None)
    assert response.status_code == 422
    assert "No file was chosen." in text(response)


def test_a_file_over_its_kinds_limit_is_refused_in_words(client, session, mine, app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    response = _upload(client, mine, "passport", PDF + b"0" * 2**20, "big.pdf")
    assert response.status_code == 413
    assert "This file is too large: a passport may be at most 1 MB." in text(response)
    assert _stored(session) == 0


def test_a_refused_upload_keeps_the_kind_chosen(client, session, mine):
    response = _upload(client, mine, "radiology_report", b"just text", "notes.txt")
    assert response.status_code == 415
    assert '<option value="radiology_report" selected>' in text(response)
    assert "A radiology report must be PDF, JPEG or PNG; this file is not." in text(response)


def test_an_uploaded_document_downloads_through_the_apis_check(client, session, mine):
    _upload(client, mine, "passport", PDF, "passport.pdf")
    document = session.scalars(select(Document)).one()
    response = client.get(f"/agency/documents/{document.id}/content")
    try:
        assert response.status_code == 200
        assert response.data == PDF
    finally:
        response.close()


def test_a_file_past_every_limit_is_refused_in_words_while_it_streams(
    client, session, mine, app, monkeypatch
):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_MRI", 1)
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    response = _upload(client, mine, "mri_study", b"\0" * (2**20 + 4096), "huge.zip")
    assert response.status_code == 413
    html = text(response)
    assert "This file is too large: no document may be larger than 1 MB." in html
    assert mine.reference in html  # the referral's page again, not a bare error
    assert _stored(session) == 0
