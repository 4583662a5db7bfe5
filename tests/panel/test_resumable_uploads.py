"""The agency panel's resumable upload: the signed-in user's agency is the actor (the
same tenancy as its API keys), the CSRF token rides in a header, answers are problems."""

from __future__ import annotations

import base64
import hashlib

import pytest

from crm.documents.models import Document
from tests.console.support import csrf_token
from tests.documents.test_resumable import mri
from tests.panel.support import signed_in_agency


@pytest.fixture
def mine(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    signed_in_agency(client, session, agency.actor.agency_id)
    return referral


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _headers(token: str | None, **extra: str) -> dict[str, str]:
    return {"Tus-Resumable": "1.0.0", **({"X-CSRFToken": token} if token else {}), **extra}


def _start(client, referral, data: bytes, token: str | None):
    meta = f"kind {_b64('mri_study')},sha256 {_b64(hashlib.sha256(data).hexdigest())}"
    return client.post(
        f"/agency/referrals/{referral.id}/uploads",
        headers=_headers(token, **{"Upload-Length": str(len(data)), "Upload-Metadata": meta}),
    )


def _send(client, location: str, offset: int, chunk: bytes, token: str | None):
    return client.patch(
        location,
        data=chunk,
        headers=_headers(
            token,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
    )


def test_an_agency_user_sends_an_mri_in_chunks(client, session, mine, tmp_path):
    token, data = csrf_token(client, f"/agency/referrals/{mine.id}"), mri(tmp_path)
    created = _start(client, mine, data, token)
    assert created.status_code == 201, created.data
    location = created.headers["Location"]
    assert _send(client, location, 0, data[:5000], token).status_code == 204
    assert client.head(location, headers=_headers(None)).headers["Upload-Offset"] == "5000"
    done = _send(client, location, 5000, data[5000:], token)
    assert done.status_code == 200, done.json
    document = session.get(Document, done.json["document_id"])
    assert (document.referral_id, document.uploaded_by_type) == (mine.id, "agency")
    assert done.json["page"] == f"/agency/referrals/{mine.id}#documents"


def test_a_chunk_without_the_csrf_token_is_refused(client, mine, tmp_path):
    token, data = csrf_token(client, f"/agency/referrals/{mine.id}"), mri(tmp_path)
    location = _start(client, mine, data, token).headers["Location"]
    assert _send(client, location, 0, data, None).status_code == 400
    assert client.head(location, headers=_headers(None)).headers["Upload-Offset"] == "0"


def test_another_agencys_referral_is_404_and_no_one_signed_in_is_401(
    app, client, factory, mine, tmp_path
):
    token, data = csrf_token(client, f"/agency/referrals/{mine.id}"), mri(tmp_path)
    elsewhere = factory.referral(factory.agency())
    assert _start(client, elsewhere, data, token).status_code == 404
    location = _start(client, mine, data, token).headers["Location"]
    stranger = app.test_client()
    assert stranger.head(location, headers=_headers(None)).status_code == 401
