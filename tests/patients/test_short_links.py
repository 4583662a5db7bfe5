"""SMS short links: `/s/<code>` stands for the patient's private link, one code per message,
stored hashed, expiring and revoked with the link, refused like a wrong token."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm.auth.rate_limits import limiter_of
from crm.core.db import utcnow
from crm.patients import links, short_links
from crm.patients.models import PatientLink, PatientShortLink
from tests.messaging.support import new_referral, outbox_for

SHORT = re.compile(r"/s/([A-Za-z0-9]+)")


@pytest.fixture
def referral(factory):
    return new_referral(factory, patient={"language": "de"})


def _sms(referral):
    [sms] = outbox_for(referral.id, channel="sms", rule_code="enquiry_thank_you")
    return sms


def _code_in(sms) -> str:
    return SHORT.search(sms.body_text).group(1)


def _invalid_page(client) -> tuple[int, str]:
    page = client.get("/p/not-a-token")
    return page.status_code, page.get_data(as_text=True)


def test_a_code_carries_at_least_64_bits_of_randomness():
    assert math.log2(len(short_links.ALPHABET)) * short_links.CODE_LENGTH >= 64
    codes = {short_links.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{12}", code) for code in codes)


def test_the_code_is_stored_only_as_its_sha256(session, referral):
    code = short_links.issue(referral.id)
    row = session.scalar(select(PatientShortLink).order_by(PatientShortLink.id.desc()))
    assert row.code_hash == hashlib.sha256(code.encode()).hexdigest()
    stored = [str(getattr(row, column.key)) for column in PatientShortLink.__table__.columns]
    assert not [value for value in stored if code in value]


def test_the_sms_carries_the_short_link_and_never_the_long_token(session, referral):
    sms = _sms(referral)
    token = links.token_for(links.link_for(referral.id))
    assert "/p/" not in sms.body_text and token not in sms.body_text
    link = short_links.resolve(_code_in(sms))
    assert link is not None and link.referral_id == referral.id


def test_the_email_keeps_the_long_link(session, referral):
    [email] = outbox_for(referral.id, channel="email", rule_code="enquiry_thank_you")
    assert "/p/" in email.body_text and "/s/" not in email.body_text


def test_each_message_gets_its_own_code_tied_to_its_key(session, referral):
    sms = _sms(referral)
    row = session.scalar(
        select(PatientShortLink).where(PatientShortLink.message_key == sms.idempotency_key)
    )
    assert row.code_hash == short_links.code_hash(_code_in(sms))
    assert row.expires_at == links.link_for(referral.id).expires_at


def test_enqueueing_the_same_cause_again_issues_no_second_code(session, referral):
    from crm.messaging.composing.outbox import enqueue

    count = select(PatientShortLink.id).where(PatientShortLink.message_key.like("again:%"))
    for _ in range(2):
        enqueue(referral, kind="ad_hoc", audience="patient", channels=["sms"], key="again")
    assert len(session.scalars(count).all()) == 1


def test_the_short_link_opens_the_private_page(client, session, referral):
    code = _code_in(_sms(referral))
    response = client.get(f"/s/{code}")
    assert response.status_code == 303
    token = links.token_for(links.link_for(referral.id))
    assert response.headers["Location"].endswith(f"/p/{token}")
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and "Hallo Jonas" in page.get_data(as_text=True)


def test_the_short_link_is_private_and_uncached(client, session, referral):
    response = client.get(f"/s/{_code_in(_sms(referral))}")
    assert response.headers["Referrer-Policy"] == "same-origin"  # no other site sees it
    assert response.headers["Cache-Control"] == "no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]


@pytest.mark.parametrize("code", ["AAAAAAAAAAAA", "short", "Ab3dEf6hJk9m-", "x" * 200])
def test_a_wrong_code_gets_the_invalid_link_page(client, code):
    response = client.get(f"/s/{code}")
    assert (response.status_code, response.get_data(as_text=True)) == _invalid_page(client)


def test_an_expired_code_gets_the_invalid_link_page(client, session, referral):
    code = _code_in(_sms(referral))
    session.execute(update(PatientShortLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    response = client.get(f"/s/{code}")
    assert (response.status_code, response.get_data(as_text=True)) == _invalid_page(client)


def test_a_code_dies_when_its_link_expires(client, session, referral):
    code = _code_in(_sms(referral))
    session.execute(update(PatientLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert client.get(f"/s/{code}").status_code == 404


def test_revoking_the_private_link_kills_its_short_codes(client, session, factory, referral):
    code = _code_in(_sms(referral))
    assert client.get(f"/s/{code}").status_code == 303
    coordinator = factory.staff("coordinator")
    revoked = client.delete(
        f"/api/v1/referrals/{referral.id}/patient-link", headers=coordinator.headers()
    )
    assert revoked.status_code == 200
    response = client.get(f"/s/{code}")
    assert (response.status_code, response.get_data(as_text=True)) == _invalid_page(client)


def test_short_links_are_rate_limited_like_the_portal(app, client):
    limiter_of(app).reset()
    before = app.config["CRM"]["PORTAL_RATE_PER_MINUTE"]
    app.config["CRM"]["PORTAL_RATE_PER_MINUTE"] = 2
    try:
        statuses = [client.get("/s/AAAAAAAAAAAA").status_code for _ in range(4)]
    finally:
        app.config["CRM"]["PORTAL_RATE_PER_MINUTE"] = before
        limiter_of(app).reset()
    assert statuses == [404, 404, 429, 429]


def test_opening_a_code_records_when_it_was_used(client, session, referral):
    sms = _sms(referral)
    client.get(f"/s/{_code_in(sms)}")
    row = session.scalar(
        select(PatientShortLink).where(PatientShortLink.message_key == sms.idempotency_key)
    )
    session.refresh(row)
    assert row.last_used_at is not None
