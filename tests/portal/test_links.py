"""The patient's private link: signed, expiring, revocable, private, rate-limited."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm.auth.rate_limits import limiter_of
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.patients import links
from crm.patients.models import PatientLink


@pytest.fixture
def referral(factory):
    return factory.referral(factory.agency(), patient={"language": "de"})


def _token(referral) -> str:
    return links.token_for(links.link_for(referral.id))


def test_the_page_greets_the_patient_in_their_language(client, referral):
    page = client.get(f"/p/{_token(referral)}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'lang="de"' in body
    assert "Hallo Jonas" in body
    assert "Wir haben Ihre Anfrage erhalten." in body


def test_arabic_pages_are_right_to_left(client, factory):
    referral = factory.referral(factory.agency(), patient={"language": "ar"})
    body = client.get(f"/p/{_token(referral)}").get_data(as_text=True)
    assert 'dir="rtl"' in body


def test_the_same_link_is_reused_until_it_nears_expiry(session, referral):
    assert links.link_for(referral.id).id == links.link_for(referral.id).id


@pytest.mark.parametrize("token", ["nonsense", "eyJsIjoxfQ.forged", ""])
def test_a_wrong_token_gets_the_same_page_with_no_detail(client, token):
    page = client.get(f"/p/{token}x")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    body = page.get_data(as_text=True)
    assert "This link is not valid or has expired." in body
    assert "Jonas" not in body


def test_a_revoked_link_stops_working_everywhere(client, session, factory, referral):
    token = _token(referral)
    coordinator = factory.staff("coordinator")
    revoked = client.delete(
        f"/api/v1/referrals/{referral.id}/patient-link", headers=coordinator.headers()
    )
    assert revoked.json == {"revoked": 1}
    assert client.get(f"/p/{token}").status_code == 404
    fresh = links.token_for(links.link_for(referral.id))
    assert fresh != token
    assert client.get(f"/p/{fresh}").status_code == 200


def test_an_expired_link_stops_working(client, session, referral):
    token = _token(referral)
    session.execute(update(PatientLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert client.get(f"/p/{token}").status_code == 404


def test_a_token_for_a_link_with_another_nonce_is_refused(client, session, referral):
    link = links.link_for(referral.id)
    forged = links._serializer().dumps({"l": link.id, "n": "0" * 32})
    assert client.get(f"/p/{forged}").status_code == 404


def test_pages_are_private_uncached_and_not_indexed(client, referral):
    page = client.get(f"/p/{_token(referral)}")
    # the link never leaves in a Referer to another site; our own posts name their origin
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert "noindex" in page.headers["X-Robots-Tag"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_page_view_is_audited_as_the_patient(client, session, referral):
    client.get(f"/p/{_token(referral)}")
    event = session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "portal.view", AuditEvent.referral_id == referral.id
        )
    )
    assert event.actor_type == "patient"


def test_staff_can_issue_the_link_to_share_it(client, factory, referral):
    coordinator = factory.staff("coordinator")
    issued = client.post(
        f"/api/v1/referrals/{referral.id}/patient-link", headers=coordinator.headers()
    )
    assert issued.status_code == 201
    path = issued.json["url"].split("://", 1)[1].split("/", 1)[1]
    assert client.get(f"/{path}").status_code == 200


def test_agencies_cannot_issue_or_revoke_links(client, factory, referral):
    agency = factory.agency()
    url = f"/api/v1/referrals/{referral.id}/patient-link"
    assert client.post(url, headers=agency.headers()).status_code == 403
    assert client.delete(url, headers=agency.headers()).status_code == 403


def test_too_many_requests_from_one_address_are_slowed_down(app, client, referral):
    limiter_of(app).reset()
    app.config["CRM"]["PORTAL_RATE_PER_MINUTE"], before = (
        3,
        app.config["CRM"]["PORTAL_RATE_PER_MINUTE"],
    )
    try:
        statuses = [client.get("/p/whatever").status_code for _ in range(5)]
    finally:
        app.config["CRM"]["PORTAL_RATE_PER_MINUTE"] = before
        limiter_of(app).reset()
    assert statuses[:3] == [404, 404, 404]
    assert statuses[3:] == [429, 429]
