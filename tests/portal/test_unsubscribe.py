# ruff: noqa: RUF001 - Turkish words use the dotless i
"""The email's unsubscribe link (crm/portal/unsubscribe.py): a page in the patient's language
that asks, unsubscribes (our button or a mail client's one-click) and offers to subscribe
again; subscribing again is the patient's own act and the next email goes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.messaging.composing.outbox import enqueue
from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.transports import Transports
from crm.patients import consent_sources
from crm.patients.links import _unsubscribe_serializer, unsubscribe_url
from crm.patients.models import Patient
from tests.messaging.support import (
    NO_QUIET_HOURS,
    RecordingGateway,
    RecordingMailer,
    new_referral,
    quiet_outbox,
)

OTHER_SITE = {"Origin": "https://evil.example"}
ONE_CLICK = {"List-Unsubscribe": "One-Click"}  # RFC 8058: what a mail provider posts


def _path(patient_id: int) -> str:
    return "/unsubscribe/" + unsubscribe_url(patient_id).split("/unsubscribe/", 1)[1]


def _email_consent(session, patient_id: int):
    session.expire_all()
    return session.get(Patient, patient_id).consent_for("email")


def _consent_audit(session, patient_id: int) -> list[tuple[str, bool, str]]:
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.actor_type == "patient", AuditEvent.actor_id == patient_id)
        .where(AuditEvent.action == "consent.email")
        .order_by(AuditEvent.id)
    )
    return [(row.actor_type, row.detail["granted"], row.detail["source"]) for row in rows]


def test_a_get_asks_and_changes_nothing(client, factory, session):
    referral = new_referral(factory, patient={"language": "en"})
    page = client.get(_path(referral.patient_id))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Stop receiving emails about your enquiry?" in text
    assert 'name="action" value="unsubscribe"' in text
    assert referral.patient.email in text
    assert _email_consent(session, referral.patient_id).granted, "a link preview changes nothing"


def test_unsubscribing_says_so_and_offers_to_keep_receiving_emails(client, factory, session):
    referral = new_referral(factory, patient={"language": "en"})
    done = client.post(_path(referral.patient_id), data={"action": "unsubscribe"})
    text = done.get_data(as_text=True)
    assert done.status_code == 200, "answered with the page itself, never a redirect"
    assert "You will not receive our emails any more." in text
    assert "Keep receiving emails" in text and 'name="action" value="subscribe"' in text
    consent = _email_consent(session, referral.patient_id)
    assert (consent.granted, consent.source) == (False, consent_sources.UNSUBSCRIBE_LINK)
    assert session.get(Patient, referral.patient_id).may_contact("sms"), "SMS is untouched"
    again = client.post(_path(referral.patient_id), data={"action": "unsubscribe"})
    assert again.status_code == 200, "a second click is harmless"
    assert _consent_audit(session, referral.patient_id) == [
        ("patient", False, consent_sources.UNSUBSCRIBE_LINK)
    ]


@pytest.mark.parametrize(
    ("form", "headers"),
    [(ONE_CLICK, {}), ({}, {}), (ONE_CLICK, OTHER_SITE)],
    ids=["one-click", "no-field", "one-click-from-the-mail-provider"],
)
def test_a_one_click_post_still_unsubscribes(client, factory, session, form, headers):
    referral = new_referral(factory)
    response = client.post(_path(referral.patient_id), data=form, headers=headers)
    assert response.status_code == 200
    assert not _email_consent(session, referral.patient_id).granted


def test_subscribing_again_grants_email_as_the_patients_own_act(client, factory, session):
    referral = new_referral(factory, patient={"language": "en"})
    path = _path(referral.patient_id)
    client.post(path, data=ONE_CLICK)
    page = client.post(path, data={"action": "subscribe"})
    assert page.status_code == 200
    assert "You will receive our emails again." in page.get_data(as_text=True)
    consent = _email_consent(session, referral.patient_id)
    assert (consent.granted, consent.source) == (True, consent_sources.SUBSCRIBED_AGAIN)
    assert consent_sources.by_the_patient(consent.source)
    assert _consent_audit(session, referral.patient_id) == [
        ("patient", False, consent_sources.UNSUBSCRIBE_LINK),
        ("patient", True, consent_sources.SUBSCRIBED_AGAIN),
    ]


def test_a_later_visit_says_email_is_off_and_offers_to_subscribe_again(client, factory):
    referral = new_referral(factory, patient={"language": "en"})
    client.post(_path(referral.patient_id), data=ONE_CLICK)
    text = client.get(_path(referral.patient_id)).get_data(as_text=True)
    assert "You do not receive our emails at the moment." in text
    assert "Subscribe again" in text and "Unsubscribe</button>" not in text


def test_subscribing_again_from_another_site_is_refused(client, factory, session):
    referral = new_referral(factory)
    client.post(_path(referral.patient_id), data=ONE_CLICK)
    response = client.post(
        _path(referral.patient_id), data={"action": "subscribe"}, headers=OTHER_SITE
    )
    assert response.status_code == 403
    assert not _email_consent(session, referral.patient_id).granted


def test_without_an_email_address_nothing_is_subscribed_again(client, factory, session):
    referral = new_referral(factory, patient={"email": None, "language": "en"})
    client.post(_path(referral.patient_id), data=ONE_CLICK)
    page = client.post(_path(referral.patient_id), data={"action": "subscribe"})
    assert page.status_code == 200
    assert "You do not receive our emails at the moment." in page.get_data(as_text=True)
    assert "Subscribe again" not in page.get_data(as_text=True)
    assert not _email_consent(session, referral.patient_id).granted


def _dispatch(app, monkeypatch) -> RecordingMailer:
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    mailer = RecordingMailer()
    settings = DispatchSettings(quiet_hours=NO_QUIET_HOURS)
    Dispatcher(Transports(RecordingGateway(), mailer, None), settings).run_once()
    return mailer


def _email(referral, key: str):
    [message] = enqueue(
        referral, kind="mri_reminder", audience="patient", channels=["email"], key=key
    ).messages
    return message


def test_after_subscribing_again_the_queued_email_and_the_next_one_go(
    app, client, factory, session, monkeypatch
):
    referral = new_referral(factory, patient={"language": "en"})
    quiet_outbox()
    queued = _email(referral, "unsub:1")
    session.commit()
    path = _path(referral.patient_id)
    client.post(path, data=ONE_CLICK)
    while_off = _email(referral, "unsub:2")
    assert (while_off.status, while_off.suppressed_reason) == ("suppressed", "no_consent")
    client.post(path, data={"action": "subscribe"})
    following = _email(referral, "unsub:3")
    session.commit()
    mailer = _dispatch(app, monkeypatch)
    assert [email.to for email in mailer.sent] == [referral.patient.email] * 2
    session.refresh(queued)
    session.refresh(following)
    assert (queued.status, following.status) == ("sent", "sent")


def test_a_merged_patients_link_subscribes_the_survivor_again(
    client, session, factory, coordinator
):
    from crm.duplicates import queries
    from crm.merges import operations
    from tests.merges.support import likely_pair

    pair = likely_pair(factory, factory.agency(), factory.agency())
    merged_id = pair.new.patient_id
    old_link = _path(merged_id)
    operations.merge(queries.match_for(pair.match.id), coordinator.actor)
    session.commit()
    client.post(old_link, data=ONE_CLICK)
    assert not _email_consent(session, pair.known.patient_id).granted
    client.post(old_link, data={"action": "subscribe"})
    consent = _email_consent(session, pair.known.patient_id)
    assert (consent.granted, consent.source) == (True, consent_sources.SUBSCRIBED_AGAIN)
    assert _email_consent(session, merged_id) is None, "the tombstone keeps none"


@pytest.mark.parametrize(
    ("language", "words", "direction"),
    [
        ("ar", "إلغاء الاشتراك", "rtl"),
        ("de", "Abmelden", "ltr"),
        ("ru", "Отписаться", "ltr"),
        ("tr", "Abonelikten çık", "ltr"),
    ],
)
def test_the_page_speaks_the_patients_language(client, factory, language, words, direction):
    referral = new_referral(factory, patient={"language": language})
    text = client.get(_path(referral.patient_id)).get_data(as_text=True)
    assert f'<html lang="{language}" dir="{direction}">' in text
    assert words in text
    assert "Stop receiving emails" not in text and "Unsubscribe" not in text
    assert f'<span dir="ltr">{referral.patient.email}</span>' in text, "the address reads LTR"


def test_after_unsubscribing_in_arabic_the_offer_is_arabic_too(client, factory):
    referral = new_referral(factory, patient={"language": "ar"})
    text = client.post(_path(referral.patient_id), data=ONE_CLICK).get_data(as_text=True)
    assert 'dir="rtl"' in text
    assert "لن تصلك رسائلنا بالبريد الإلكتروني بعد الآن." in text
    assert "الاستمرار في تلقي الرسائل" in text


def test_the_page_keeps_the_link_from_other_sites_and_caches(client, factory):
    referral = new_referral(factory)
    response = client.get(_path(referral.patient_id))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("token", ["garbage", "eyJwIjoxfQ.invalid-signature"])
def test_a_bad_token_is_the_invalid_link_page_in_the_browsers_language(client, token):
    german = {"Accept-Language": "de-DE,de;q=0.9"}
    for response in (
        client.get(f"/unsubscribe/{token}", headers=german),
        client.post(f"/unsubscribe/{token}", data=ONE_CLICK, headers=german),
    ):
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert '<html lang="de"' in response.get_data(as_text=True)


def test_a_token_for_a_deleted_patient_is_a_404(client):
    response = client.get(_path(2**30))
    assert response.status_code == 404


def test_a_token_we_never_issue_for_another_channel_is_a_404(client, factory, session):
    referral = new_referral(factory)
    token = _unsubscribe_serializer().dumps({"p": referral.patient_id, "c": "sms"})
    assert client.post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 404
    session.expire_all()
    assert session.get(Patient, referral.patient_id).may_contact("sms")
