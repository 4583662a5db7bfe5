"""The patient's resumable upload on the private page: the link is the credential, the
same intake as every upload, refusals in the patient's words, other sites refused."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import select

from crm.documents.models import Document
from tests.documents.test_documents import PDF
from tests.documents.test_resumable import mri
from tests.portal.test_patient_uploads import OWN_SITE, token_of


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"language": "de", "date_of_birth": "1980-04-02"})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _tus(**extra: str) -> dict[str, str]:
    return {**OWN_SITE, "Tus-Resumable": "1.0.0", **extra}


def _start(client, token: str, data: bytes, kind="mri_study", **headers: str):
    sha = hashlib.sha256(data).hexdigest()
    meta = f"kind {_b64(kind)},filename {_b64('scan.dcm')},sha256 {_b64(sha)}"
    return client.post(
        f"/p/{token}/uploads",
        headers=_tus(**{"Upload-Length": str(len(data)), "Upload-Metadata": meta, **headers}),
    )


def _send(client, location: str, offset: int, chunk: bytes):
    return client.patch(
        location,
        data=chunk,
        headers=_tus(
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
        ),
    )


def test_the_patient_sends_an_mri_in_two_chunks_and_the_page_shows_it(
    client, session, referral, tmp_path
):
    token, data = token_of(referral), mri(tmp_path)
    created = _start(client, token, data)
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location.startswith(f"/p/{token}/uploads/")
    half = len(data) // 2
    assert _send(client, location, 0, data[:half]).status_code == 204
    head = client.head(location, headers=_tus())
    assert head.headers["Upload-Offset"] == str(half)
    done = _send(client, location, half, data[half:])
    assert done.status_code == 200, done.json
    document = session.get(Document, done.json["document_id"])
    assert (document.kind, document.uploaded_by_type) == ("mri_study", "patient")
    assert done.json["page"] == f"/p/{token}?received={document.id}#documents"
    session.refresh(referral)
    assert referral.stage == "mri_review"


def test_a_refusal_carries_the_sentence_in_the_patients_language(client, session, referral):
    token = token_of(referral)
    location = _start(client, token, PDF).headers["Location"]
    refused = _send(client, location, 0, PDF)
    assert refused.status_code == 415
    assert refused.json["words"].startswith("MRT-Untersuchungen nehmen wir nur als DICOM")
    assert session.scalar(select(Document).where(Document.referral_id == referral.id)) is None


def test_a_wrong_link_or_another_patients_upload_is_404(
    client, factory, agency, referral, tmp_path
):
    data = mri(tmp_path)
    location = _start(client, token_of(referral), data).headers["Location"]
    other = token_of(factory.referral(agency))
    upload_id = location.rsplit("/", 1)[1]
    assert client.head(f"/p/{other}/uploads/{upload_id}", headers=_tus()).status_code == 404
    assert _send(client, f"/p/{other}/uploads/{upload_id}", 0, data).status_code == 404
    assert _start(client, "not-a-token", data).status_code == 404


def test_a_chunk_sent_from_another_site_is_refused(client, referral, tmp_path):
    data = mri(tmp_path)
    location = _start(client, token_of(referral), data).headers["Location"]
    refused = client.patch(
        location,
        data=data,
        headers={
            "Origin": "https://evil.example",
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert refused.status_code == 403
    assert client.head(location, headers=_tus()).headers["Upload-Offset"] == "0"


def test_no_upload_starts_once_travel_is_booked(client, factory, referral, tmp_path):
    referral.stage = "travel_booked"
    answer = _start(client, token_of(referral), mri(tmp_path))
    assert answer.status_code == 409
    assert "keine Dokumente mehr" in answer.json["words"]
