"""The patient sends documents on the private page: the same intake as an agency's upload
(limits, types, ZIP checks, storage, audit, the MRI moving the case on), with every
refusal in the patient's language and nothing stored when it is refused."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from werkzeug.test import EnvironBuilder

from crm.auth.models import StaffUser
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.documents.models import Document
from crm.documents.upload import storage
from crm.patients import links
from crm.patients.models import PatientLink
from crm.referrals.operations import move_to_stage
from tests.documents.test_documents import PDF, dicom_bytes, zip_of
from tests.documents.test_documents import upload as agency_upload
from tests.messaging.support import outbox_for
from tests.plans.support import plan_body, reviewed_as_candidate

OWN_SITE = {"Origin": "http://localhost"}  # the test client's own address


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"language": "en", "date_of_birth": "1980-04-02"})


def token_of(referral) -> str:
    return links.token_for(links.link_for(referral.id))


def send(client, token, kind: str | None, data: bytes | None, filename="upload.bin", **headers):
    """The form as a browser posts it (multipart: `kind`, then `file`)."""
    fields: dict = {}
    if kind is not None:
        fields["kind"] = kind
    if data is not None:
        fields["file"] = (io.BytesIO(data), filename)
    builder = EnvironBuilder(
        path=f"/p/{token}/documents",
        method="POST",
        data=fields,
        headers={**OWN_SITE, **headers},
        content_type="multipart/form-data",
    )
    environ = builder.get_environ()
    try:
        return client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()


def documents_of(session, referral) -> list[Document]:
    return list(session.scalars(select(Document).where(Document.referral_id == referral.id)))


def text_of(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def leaves_nothing(session):
    """After the test: no document row, no stored blob and no temp file was added."""
    files_before = {path for path in storage().root.rglob("*") if path.is_file()}
    rows_before = session.scalar(select(func.count(Document.id)))
    yield
    assert {path for path in storage().root.rglob("*") if path.is_file()} == files_before
    assert session.scalar(select(func.count(Document.id))) == rows_before


def test_an_mri_sent_on_the_page_moves_the_referral_to_review_and_emails_the_specialists(
    client, session, factory, referral, tmp_path
):
    specialist = factory.staff("specialist")
    move_to_stage(referral, "awaiting_mri", factory.staff("coordinator").actor)
    session.commit()
    response = send(client, token_of(referral), "mri_study", dicom_bytes(tmp_path), "lumbar.dcm")
    assert response.status_code == 303
    [document] = documents_of(session, referral)
    assert (document.kind, document.content_type) == ("mri_study", "dicom")
    assert (document.uploaded_by_type, document.uploaded_by_id) == ("patient", referral.patient_id)
    session.refresh(referral)
    assert referral.stage == "mri_review"
    [note] = outbox_for(referral.id, kind="mri_uploaded_specialist")
    assert note.to_address == session.get(StaffUser, specialist.actor.id).email


def test_after_sending_the_page_says_what_was_received(client, referral, tmp_path):
    response = send(client, token_of(referral), "mri_study", dicom_bytes(tmp_path), "lumbar.dcm")
    assert re.search(r"\?received=\d+#documents$", response.headers["Location"])
    page = text_of(client.get(response.headers["Location"]))
    assert "Thank you. We have received this document:" in page
    assert "lumbar.dcm" in page
    assert "Your MRI is now with our specialists for review." in page


def test_a_pdf_report_is_stored_and_listed_with_its_kind_and_date(
    client, session, referral, monkeypatch
):
    response = send(client, token_of(referral), "radiology_report", PDF, "report.pdf")
    assert response.status_code == 303
    [document] = documents_of(session, referral)
    assert document.content_type == "pdf"
    assert storage().read_bytes(document.sha256) == PDF
    session.refresh(referral)
    assert referral.stage == "enquiry"  # only an MRI moves the case on
    page = text_of(client.get(f"/p/{token_of(referral)}"))
    listed = page.split("Documents we have received")[1]
    assert "Radiology report" in listed and "report.pdf" in listed
    assert f"{document.created_at:%Y}" in listed  # the date it arrived


def test_a_file_larger_than_its_kind_allows_is_a_413_page_in_the_patients_language(
    app, client, session, factory, agency, monkeypatch, leaves_nothing
):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    german = factory.referral(agency)  # the factory's patient speaks German
    big = PDF + b"\0" * (2**20 + 1)
    response = send(client, token_of(german), "passport", big, "pass.pdf")
    assert response.status_code == 413
    page = text_of(response)
    assert "Diese Datei ist zu groß: Diese Art von Dokument darf höchstens 1 MB groß sein." in page
    assert '<option value="passport"' in page
    assert re.search(r'<option value="passport"[^>]*selected', page)  # the choice is kept


def test_a_file_larger_than_any_kind_allows_is_refused_while_it_streams(
    app, client, referral, monkeypatch, leaves_nothing
):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_MRI", 1)
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    response = send(client, token_of(referral), "passport", PDF + b"\0" * 2**20, "big.pdf")
    assert response.status_code == 413
    assert "may be at most 1 MB, other documents 1 MB" in text_of(response)


def test_a_body_declared_larger_than_any_upload_is_refused_before_it_is_read(
    app, client, referral, monkeypatch, leaves_nothing
):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_MRI", 1)
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    response = send(client, token_of(referral), "passport", PDF + b"\0" * 3 * 2**20, "big.pdf")
    assert response.status_code == 413
    assert "may be at most 1 MB, other documents 1 MB" in text_of(response)
    assert not list(storage().tmp.glob("upload-*"))  # not even a temp file was started


def test_a_type_the_kind_does_not_take_is_a_415_page_in_the_patients_language(
    client, factory, agency, leaves_nothing
):
    arabic = factory.referral(agency, patient={"language": "ar"})
    response = send(client, token_of(arabic), "mri_study", PDF, "scan.pdf")
    assert response.status_code == 415
    page = text_of(response)
    assert 'dir="rtl"' in page
    assert "يجب إرسال صور الرنين المغناطيسي بصيغة DICOM" in page
    assert "mri_study" not in page.split('id="upload-answer"')[1].split("</div>")[0]


def test_a_passport_must_be_a_pdf_or_an_image(client, referral, tmp_path, leaves_nothing):
    response = send(client, token_of(referral), "passport", dicom_bytes(tmp_path), "x.dcm")
    assert response.status_code == 415
    assert "This kind of document must be a PDF, JPEG or PNG file." in text_of(response)


def test_an_empty_file_is_refused_in_words(client, referral, leaves_nothing):
    response = send(client, token_of(referral), "passport", b"", "empty.pdf")
    assert response.status_code == 422
    assert "This file is empty. Please choose the file again." in text_of(response)


def test_a_damaged_zip_is_refused_in_words(client, referral, tmp_path, leaves_nothing):
    archive = zip_of({"series/1.dcm": dicom_bytes(tmp_path)})
    damaged = archive[: len(archive) // 2] + b"\0" * 64 + archive[len(archive) // 2 + 64 :]
    response = send(client, token_of(referral), "mri_study", damaged, "study.zip")
    assert response.status_code == 415
    assert "We could not open this file" in text_of(response)


def test_a_zip_holding_something_other_than_dicom_is_refused_in_words(
    client, referral, leaves_nothing
):
    archive = zip_of({"notes.txt": b"hello"})
    response = send(client, token_of(referral), "mri_study", archive, "study.zip")
    assert response.status_code == 415
    assert "files that are not DICOM images" in text_of(response)


def test_a_form_without_a_file_asks_for_one(client, referral, leaves_nothing):
    response = send(client, token_of(referral), "passport", b"", filename="")
    assert response.status_code == 422
    assert "Please choose a file to send." in text_of(response)


def test_a_form_without_a_known_kind_asks_what_the_document_is(client, referral, leaves_nothing):
    response = send(client, token_of(referral), "x-ray", PDF, "report.pdf")
    assert response.status_code == 422
    page = text_of(response)
    assert "Please choose what kind of document this is." in page
    assert "x-ray" not in page


def test_a_refusal_never_shows_the_engines_words_or_field_names(client, referral):
    response = send(client, token_of(referral), "passport", b"MZ not a document", "a.exe")
    answer = text_of(response).split('id="upload-answer"')[1].split("</div>")[0]
    for engine_word in ("file:", "kind:", "not accepted as", "accepted:", "pdf, jpeg", "415"):
        assert engine_word not in answer


def test_a_wrong_link_gets_the_invalid_page_and_stores_nothing(client, leaves_nothing):
    response = send(client, "not-a-token", "radiology_report", PDF, "report.pdf")
    assert response.status_code == 404
    assert "upload" not in text_of(response).lower()


def test_an_expired_link_gets_the_invalid_page_and_stores_nothing(
    client, session, referral, leaves_nothing
):
    token = token_of(referral)
    session.execute(update(PatientLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert send(client, token, "radiology_report", PDF, "report.pdf").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "", "Referer": "http://localhost/p/x"},
    ],
    ids=["another-site", "null-origin", "lookalike-host", "empty-origin"],
)
def test_a_post_from_another_site_is_refused_and_stores_nothing(
    client, referral, leaves_nothing, headers
):
    response = send(client, token_of(referral), "radiology_report", PDF, "report.pdf", **headers)
    assert response.status_code == 403
    assert "sent from another website" in text_of(response)


def test_a_post_whose_referer_names_another_site_is_refused(client, referral, leaves_nothing):
    builder = EnvironBuilder(
        path=f"/p/{token_of(referral)}/documents",
        method="POST",
        data={"kind": "radiology_report", "file": (io.BytesIO(PDF), "report.pdf")},
        headers={"Referer": "https://evil.example/page"},
        content_type="multipart/form-data",
    )
    try:
        assert client.open(builder.get_environ()).status_code == 403
    finally:
        builder.close()


def test_a_post_naming_the_public_address_or_no_origin_at_all_is_taken(
    app, client, session, referral
):
    public = app.config["CRM"]["PUBLIC_BASE_URL"]
    token = token_of(referral)
    assert send(client, token, "other", PDF, "a.pdf", Origin=public).status_code == 303
    builder = EnvironBuilder(
        path=f"/p/{token}/documents",
        method="POST",
        data={"kind": "other", "file": (io.BytesIO(PDF + b"2"), "b.pdf")},
        content_type="multipart/form-data",
    )
    try:
        assert client.open(builder.get_environ()).status_code == 303  # a non-browser client
    finally:
        builder.close()
    assert len(documents_of(session, referral)) == 2


def test_accepting_a_plan_from_another_site_is_refused_too(client, session, factory, agency):
    referral = reviewed_as_candidate(factory, agency, factory.staff("coordinator"))
    coordinator = factory.staff("coordinator")
    offered = client.post(
        f"/api/v1/referrals/{referral.id}/plans", json=plan_body(), headers=coordinator.headers()
    )
    response = client.post(
        f"/p/{token_of(referral)}/accept",
        data={"plan_id": offered.json["id"], "ack_info": "yes", "ack_data": "yes"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    session.refresh(referral)
    assert referral.stage == "plan_offered"


def test_an_agency_and_a_patient_sending_the_same_file_keep_one_copy(
    client, session, agency, referral
):
    by_agency = agency_upload(client, agency, referral, "radiology_report", PDF, "a.pdf")
    assert by_agency.status_code == 201
    assert send(client, token_of(referral), "radiology_report", PDF, "b.pdf").status_code == 303
    first, second = sorted(documents_of(session, referral), key=lambda d: d.id)
    assert (first.uploaded_by_type, second.uploaded_by_type) == ("agency", "patient")
    assert first.sha256 == second.sha256
    stored = [p for p in storage().root.rglob(first.sha256) if p.is_file()]
    assert len(stored) == 1


def test_the_upload_is_audited_as_the_patient(client, session, referral):
    send(client, token_of(referral), "passport", PDF, "passport.pdf")
    [document] = documents_of(session, referral)
    event = session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "document.upload", AuditEvent.referral_id == referral.id
        )
    )
    assert (event.actor_type, event.actor_id) == ("patient", referral.patient_id)
    assert event.detail == {"document_id": document.id, "kind": "passport"}


def test_the_page_lists_this_referrals_documents_and_never_another_patients(
    client, factory, agency, referral
):
    other = factory.referral(agency, patient={"language": "en"})
    send(client, token_of(other), "passport", PDF, "someone-else.pdf")
    send(client, token_of(referral), "passport", PDF + b"x", "mine.pdf")
    page = text_of(client.get(f"/p/{token_of(referral)}"))
    assert "mine.pdf" in page
    assert "someone-else.pdf" not in page


def test_a_received_id_of_another_referral_says_nothing(client, session, factory, agency, referral):
    other = factory.referral(agency, patient={"language": "en"})
    send(client, token_of(other), "passport", PDF, "someone-else.pdf")
    [document] = documents_of(session, other)
    page = text_of(client.get(f"/p/{token_of(referral)}?received={document.id}"))
    assert "someone-else.pdf" not in page
    assert "We have received this document" not in page


def test_a_file_name_is_shown_cleaned(client, referral):
    response = send(client, token_of(referral), "passport", PDF, "../scans/<b>passport.pdf")
    page = text_of(client.get(response.headers["Location"]))
    assert "_b_passport.pdf" in page
    assert "scans" not in page and "<b>" not in page


def test_the_form_is_offered_until_travel_is_booked_and_the_list_stays(
    client, session, factory, referral, without_clinical_guards
):
    send(client, token_of(referral), "passport", PDF, "passport.pdf")
    coordinator = factory.staff("coordinator")
    for stage in ("awaiting_mri", "mri_review", "plan_offered", "plan_accepted"):
        move_to_stage(referral, stage, coordinator.actor)
        session.commit()
        assert 'id="upload-form"' in text_of(client.get(f"/p/{token_of(referral)}")), stage
    move_to_stage(referral, "travel_booked", coordinator.actor)
    session.commit()
    page = text_of(client.get(f"/p/{token_of(referral)}"))
    assert 'id="upload-form"' not in page
    assert "passport.pdf" in page


def test_a_document_sent_once_travel_is_booked_is_refused_in_words(
    client, session, factory, referral, without_clinical_guards, leaves_nothing
):
    coordinator = factory.staff("coordinator")
    for stage in ("awaiting_mri", "mri_review", "plan_offered", "plan_accepted", "travel_booked"):
        move_to_stage(referral, stage, coordinator.actor)
    session.commit()
    response = send(client, token_of(referral), "passport", PDF, "passport.pdf")
    assert response.status_code == 409
    assert "Documents can no longer be sent on this page." in text_of(response)


def test_the_rate_limit_answers_in_the_browsers_language(app, client, referral, monkeypatch):
    from crm.auth.rate_limits import limiter_of

    limiter_of(app).reset()
    monkeypatch.setitem(app.config["CRM"], "PORTAL_RATE_PER_MINUTE", 1)
    client.get("/p/whatever")  # the one request this minute allows
    response = send(
        client, token_of(referral), "passport", PDF, "a.pdf", **{"Accept-Language": "tr-TR"}
    )
    assert response.status_code == 429
    assert "Çok fazla istek" in text_of(response)


def test_the_page_runs_only_its_own_script_and_talks_only_to_its_own_site(client, referral):
    page = client.get(f"/p/{token_of(referral)}")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy
    assert "default-src 'none'" in policy
    assert page.headers["Referrer-Policy"] == "same-origin"
    html = text_of(page)
    scripts = re.findall(r"<script[^>]*>", html)
    assert [re.sub(r"\?v=[0-9a-f]+", "?v=…", script) for script in scripts] == [
        '<script src="/p/assets/sha256.js" defer>',
        '<script src="/assets/documents/resumable.js?v=…" defer>',
        '<script src="/p/assets/upload.js" defer>',
    ]
    assert "<script>" not in html and " on" + "submit=" not in html


def test_the_progress_script_is_served_by_the_app(client):
    response = client.get("/p/assets/upload.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "XMLHttpRequest" in text_of(response)
    response.close()
    response = client.get("/p/assets/sha256.js")
    assert response.status_code == 200
    assert "crmHashFile" in text_of(response)
    response.close()
