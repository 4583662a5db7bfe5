"""The resumable upload's shared script (crm/documents/assets.py): one file, one address,
loaded by the agency panel and the patient portal, cached by its digest."""

from __future__ import annotations

import re

from flask import url_for

from crm.documents.assets import version
from crm.patients import links
from tests.panel.support import signed_in_agency

SHARED = re.compile(r'<script src="(/assets/documents/resumable\.js\?v=[0-9a-f]{16})" defer>')


def _address(app) -> str:
    with app.test_request_context():
        return url_for("document_assets.static", filename="resumable.js")


def test_the_address_names_the_file_s_digest(app):
    assert _address(app) == f"/assets/documents/resumable.js?v={version('resumable.js')}"


def test_the_script_at_its_digest_address_is_cached_for_a_year(app, client):
    with client.get(_address(app)) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
        assert "window.crmResumableUpload" in response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none';")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_script_asked_without_its_current_digest_is_revalidated(client):
    for path in ("/assets/documents/resumable.js", "/assets/documents/resumable.js?v=0ld"):
        with client.get(path) as response:
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-cache"
            etag = response.headers["ETag"]
        with client.get(path, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304
            assert again.headers["Cache-Control"] == "no-cache"


def test_a_file_that_is_not_there_is_not_found_and_not_cached(client):
    response = client.get("/assets/documents/../assets.py")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert version("../assets.py") is None


def test_the_panel_and_the_portal_load_the_same_script(client, session, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    token = links.token_for(links.link_for(referral.id))
    patient_page = client.get(f"/p/{token}").get_data(as_text=True)
    signed_in_agency(client, session, agency.actor.agency_id)
    panel_page = client.get(f"/agency/referrals/{referral.id}").get_data(as_text=True)
    assert SHARED.findall(patient_page) == SHARED.findall(panel_page)
    assert len(SHARED.findall(panel_page)) == 1
