"""Uploads: the type by content, hostile files refused, DICOM made safe, MRI moves the case."""

import io
import zipfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.test import EnvironBuilder

from crm.auth.models import StaffUser
from crm.core.audit import AuditEvent
from crm.documents.models import Document
from crm.documents.samples import write_sample_mri
from crm.documents.upload import storage
from tests.messaging.support import outbox_for

API = "/api/v1"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"date_of_birth": "1980-04-02"})


def dicom_bytes(tmp_path, name="x.dcm", **kwargs) -> bytes:
    return write_sample_mri(tmp_path / name, **kwargs).read_bytes()


def zip_of(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(client, caller, referral, kind, data: bytes, filename="upload.bin"):
    # The builder spools a large body to a temp file of its own: close it when done.
    builder = EnvironBuilder(
        path=f"{API}/referrals/{referral.id}/documents",
        method="POST",
        data={"kind": kind, "file": (io.BytesIO(data), filename)},
        headers=caller.headers(),
        content_type="multipart/form-data",
    )
    environ = builder.get_environ()
    try:
        return client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()


def test_a_dicom_mri_is_stored_with_its_metadata_and_moves_the_referral(
    client, session, factory, agency, referral, tmp_path
):
    specialist = factory.staff("specialist")
    data = dicom_bytes(
        tmp_path, given="Jonas", family=referral.patient.family_name, born=date(1980, 4, 2)
    )
    response = upload(client, agency, referral, "mri_study", data, "lumbar.dcm")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["content_type"] == "dicom"
    assert body["dicom"]["modality"] == "MR"
    assert body["dicom"]["body_part"] == "LSPINE"
    assert body["dicom"]["study_date"] == "2026-11-01"
    assert body["dicom"]["images"] == 1
    assert body["identity_mismatch"] is False
    session.refresh(referral)
    assert referral.stage == "mri_review"
    [note] = outbox_for(referral.id, kind="mri_uploaded_specialist")
    assert note.to_address == session.get(StaffUser, specialist.actor.id).email


def test_a_study_for_someone_else_is_flagged(client, agency, referral, tmp_path):
    data = dicom_bytes(tmp_path, given="Maria", family="Lopez", born=date(1971, 1, 1))
    body = upload(client, agency, referral, "mri_study", data).json
    assert body["identity_mismatch"] is True
    assert "Lopez" in body["mismatch_detail"] and "1971-01-01" in body["mismatch_detail"]


def test_the_dicom_preamble_is_zeroed_before_storing(client, agency, referral, tmp_path):
    payload = b"MZ\x90\x00" + b"this could be a windows executable".ljust(124, b"!")
    data = dicom_bytes(tmp_path, preamble=payload)
    assert data[:2] == b"MZ"
    body = upload(client, agency, referral, "mri_study", data).json
    stored = storage().read_bytes(body["sha256"])
    assert stored[:128] == b"\0" * 128
    assert stored[128:] == data[128:]


def test_a_zip_of_dicom_files_is_accepted_and_its_preambles_zeroed(
    client, agency, referral, tmp_path
):
    first = dicom_bytes(tmp_path, "a.dcm", preamble=b"MZ" + b"\1" * 126)
    second = dicom_bytes(tmp_path, "b.dcm")
    body = upload(
        client,
        agency,
        referral,
        "mri_study",
        zip_of({"series/1.dcm": first, "series/2.dcm": second}),
        "study.zip",
    ).json
    assert body["content_type"] == "dicom_zip"
    assert body["dicom"]["images"] == 2
    with zipfile.ZipFile(io.BytesIO(storage().read_bytes(body["sha256"]))) as archive:
        for name in archive.namelist():
            assert archive.read(name)[:128] == b"\0" * 128


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"../../etc/cron.d/x.dcm": b"x"}, "outside the folder"),
        ({"/abs/x.dcm": b"x"}, "outside the folder"),
        ({"notes.txt": b"hello"}, "not a DICOM"),
    ],
)
def test_hostile_or_wrong_zips_are_refused(client, agency, referral, tmp_path, files, reason):
    files = {
        name: (dicom_bytes(tmp_path) if data == b"x" else data) for name, data in files.items()
    }
    response = upload(client, agency, referral, "mri_study", zip_of(files))
    assert response.status_code == 415
    assert reason in response.json["detail"]


def test_a_zip_bomb_is_refused_before_extraction(client, agency, referral, tmp_path):
    bomb = dicom_bytes(tmp_path) + b"\0" * 5_000_000
    response = upload(client, agency, referral, "mri_study", zip_of({"big.dcm": bomb}))
    assert response.status_code == 415
    assert "zip bomb" in response.json["detail"]


def test_too_many_entries_are_refused(app, client, agency, referral, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "ZIP_MAX_ENTRIES", 3)
    one = dicom_bytes(tmp_path)
    response = upload(
        client, agency, referral, "mri_study", zip_of({f"{n}.dcm": one for n in range(4)})
    )
    assert response.status_code == 415
    assert "more than 3 files" in response.json["detail"]


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"\0" * 128 + b"DICX" + b"\0" * 100, "fake.dcm"),  # the magic is wrong
        (b"DICM" + b"\0" * 300, "fake.dcm"),  # the magic at the wrong offset
        (b"MZ\x90\x00 an executable", "scan.pdf"),  # the name lies
        (b"<html><script>alert(1)</script>", "report.pdf"),
    ],
)
def test_files_are_judged_by_content_not_name(client, agency, referral, data, filename):
    response = upload(client, agency, referral, "mri_study", data, filename)
    assert response.status_code == 415
    assert response.json["type"].endswith("/unsupported-file")


def test_an_image_is_not_an_mri_study_but_is_a_passport(client, agency, referral):
    assert upload(client, agency, referral, "mri_study", PNG, "x.png").status_code == 415
    passport = upload(client, agency, referral, "passport", PNG, "passport.png")
    assert passport.status_code == 201
    assert passport.json["content_type"] == "png"


def test_an_empty_file_is_refused(client, agency, referral):
    response = upload(client, agency, referral, "passport", b"", "empty.pdf")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "file"


def test_size_limits_are_per_kind(app, client, agency, referral, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    big_pdf = PDF + b"\0" * (1024 * 1024 + 1)
    response = upload(client, agency, referral, "passport", big_pdf, "passport.pdf")
    assert response.status_code == 413
    assert response.json["type"].endswith("/file-too-large")


def test_a_bad_kind_names_the_field(client, agency, referral):
    response = upload(client, agency, referral, "selfie", PDF, "x.pdf")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "kind"


def test_a_failed_upload_leaves_no_temp_file(client, agency, referral):
    upload(client, agency, referral, "mri_study", b"junk" * 1000, "junk.bin")
    assert not list(Path(storage().tmp).glob("upload-*"))


def test_downloads_are_checked_and_audited(client, session, factory, agency, referral):
    document_id = upload(client, agency, referral, "passport", PDF, "passport.pdf").json["id"]
    response = client.get(f"{API}/documents/{document_id}/content", headers=agency.headers())
    assert response.status_code == 200
    assert response.data == PDF
    assert response.mimetype == "application/pdf"
    response.close()
    other = factory.agency()
    hidden = client.get(f"{API}/documents/{document_id}/content", headers=other.headers())
    assert hidden.status_code == 404
    assert (
        session.scalar(
            select(AuditEvent).where(AuditEvent.action == "document.download")
        ).referral_id
        == referral.id
    )


def test_another_agency_cannot_upload_to_or_list_a_referral(client, factory, referral):
    other = factory.agency()
    assert upload(client, other, referral, "passport", PDF).status_code == 404
    listing = client.get(f"{API}/referrals/{referral.id}/documents", headers=other.headers())
    assert listing.status_code == 404


def test_the_mri_guard_holds_until_an_mri_is_on_file(client, factory, referral):
    coordinator = factory.staff("coordinator")
    move = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "awaiting_mri"},
        headers=coordinator.headers(),
    )
    assert move.status_code == 201
    refused = client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": "mri_review"},
        headers=coordinator.headers(),
    )
    assert refused.status_code == 409
    assert refused.json["guards"][0]["guard"] == "mri_document_present"


def test_identical_files_are_stored_once(client, session, agency, referral):
    first = upload(client, agency, referral, "passport", PDF, "a.pdf").json
    second = upload(client, agency, referral, "other", PDF, "b.pdf").json
    assert first["sha256"] == second["sha256"]
    assert session.scalar(select(Document).where(Document.id == second["id"])).filename == "b.pdf"
