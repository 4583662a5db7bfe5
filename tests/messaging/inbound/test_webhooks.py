"""Twilio's signed webhooks (delivery status, inbound SMS). The email's unsubscribe link:
tests/portal/test_unsubscribe.py."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.core.errors import PROBLEM_MEDIA_TYPE
from crm.messaging.composing.outbox import enqueue
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.operations import set_consent
from crm.tasks.models import Task
from tests.messaging.support import NO_QUIET_HOURS, new_referral

TOKEN = "webhook-test-token"
STATUS, INBOUND = "/webhooks/twilio/status", "/webhooks/twilio/inbound"
_sids = itertools.count(1)


@pytest.fixture
def signed(app, client, monkeypatch):
    """POST a form to a webhook, signed as Twilio signs it for the public URL."""
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    base = app.config["CRM"]["PUBLIC_BASE_URL"]

    def post(path: str, form: dict[str, str], **kwargs):
        signature = RequestValidator(TOKEN).compute_signature(base + path, form)
        return client.post(path, data=form, headers={"X-Twilio-Signature": signature}, **kwargs)

    return post


@pytest.fixture
def sent_sms(factory, session):
    """A patient SMS the dispatcher has handed to Twilio."""
    referral = new_referral(factory)
    [message] = enqueue(
        referral, kind="mri_reminder", audience="patient", channels=["sms"], key="w:1"
    ).messages
    message.status, message.provider_id, message.provider_status = "sent", "SMwebhook1", "sent"
    message.sent_at = utcnow()
    session.commit()
    return message


def _status(signed, sid: str, status: str, query: str = "", **extra: str):
    return signed(f"{STATUS}{query}", {"MessageSid": sid, "MessageStatus": status, **extra})


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    return response.get_json(force=True)


# -- signatures ---------------------------------------------------------------------


def test_an_unsigned_callback_is_refused(app, client, sent_sms, monkeypatch, session):
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    response = client.post(STATUS, data={"MessageSid": "SMwebhook1", "MessageStatus": "delivered"})
    assert _problem(response, 403)["status"] == 403
    session.refresh(sent_sms)
    assert sent_sms.status == "sent"


def test_a_forged_signature_is_refused(app, client, sent_sms, monkeypatch, session):
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    form = {"MessageSid": "SMwebhook1", "MessageStatus": "delivered"}
    forged = RequestValidator("not-the-token").compute_signature(
        app.config["CRM"]["PUBLIC_BASE_URL"] + STATUS, form
    )
    response = client.post(STATUS, data=form, headers={"X-Twilio-Signature": forged})
    _problem(response, 403)
    session.refresh(sent_sms)
    assert sent_sms.status == "sent"


def test_a_signature_for_other_parameters_is_refused(app, client, sent_sms, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    url = app.config["CRM"]["PUBLIC_BASE_URL"] + STATUS
    signature = RequestValidator(TOKEN).compute_signature(
        url, {"MessageSid": "SMwebhook1", "MessageStatus": "sent"}
    )
    response = client.post(
        STATUS,
        data={"MessageSid": "SMwebhook1", "MessageStatus": "delivered"},
        headers={"X-Twilio-Signature": signature},
    )
    _problem(response, 403)


def test_without_a_configured_token_every_callback_is_refused(client, sent_sms):
    response = client.post(
        STATUS,
        data={"MessageSid": "SMwebhook1", "MessageStatus": "delivered"},
        headers={"X-Twilio-Signature": "anything"},
    )
    _problem(response, 403)


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(signed, sent_sms):
    """The proxy rewrites Host and scheme; Twilio signed the public URL."""
    response = _status(signed, "SMwebhook1", "delivered", base_url="http://10.0.0.5:8000")
    assert response.status_code == 204, response.get_data(as_text=True)


# -- delivery status ------------------------------------------------------------------


def test_a_delivered_callback_marks_the_message_delivered(signed, sent_sms, session):
    assert _status(signed, "SMwebhook1", "delivered").status_code == 204
    session.refresh(sent_sms)
    assert (sent_sms.status, sent_sms.provider_status) == ("delivered", "delivered")
    assert sent_sms.delivered_at is not None


def test_out_of_order_callbacks_never_move_the_status_backwards(signed, sent_sms, session):
    for status in ["delivered", "sent", "sending", "queued", "accepted"]:
        assert _status(signed, "SMwebhook1", status).status_code == 204
    session.refresh(sent_sms)
    assert (sent_sms.status, sent_sms.provider_status) == ("delivered", "delivered")


def test_a_final_status_is_not_overturned_by_another_final_one(signed, sent_sms, session):
    assert _status(signed, "SMwebhook1", "delivered").status_code == 204
    assert _status(signed, "SMwebhook1", "failed", ErrorCode="30008").status_code == 204
    session.refresh(sent_sms)
    assert (sent_sms.status, sent_sms.provider_status) == ("delivered", "delivered")


def test_an_undelivered_callback_records_the_error_code(signed, sent_sms, session):
    assert _status(signed, "SMwebhook1", "undelivered", ErrorCode="30003").status_code == 204
    session.refresh(sent_sms)
    assert (sent_sms.status, sent_sms.error_code) == ("undelivered", "30003")
    assert sent_sms.delivered_at is None


def test_replayed_callbacks_are_harmless(signed, sent_sms, session):
    for _ in range(3):
        assert _status(signed, "SMwebhook1", "delivered").status_code == 204
    session.refresh(sent_sms)
    first_delivered = sent_sms.delivered_at
    assert _status(signed, "SMwebhook1", "delivered").status_code == 204
    session.refresh(sent_sms)
    assert sent_sms.status == "delivered" and sent_sms.delivered_at == first_delivered


def test_a_callback_before_our_own_provider_id_is_recorded_finds_the_row_by_outbox_id(
    signed, factory, session
):
    referral = new_referral(factory)
    [message] = enqueue(
        referral, kind="mri_reminder", audience="patient", channels=["sms"], key="w:2"
    ).messages
    message.status = "sending"  # the dispatcher has not recorded the provider's answer yet
    session.commit()
    response = _status(signed, "SMearly", "sent", query=f"?outbox={message.id}")
    assert response.status_code == 204, response.get_data(as_text=True)
    session.refresh(message)
    assert (message.provider_id, message.status) == ("SMearly", "sent")


def test_an_outbox_id_that_belongs_to_another_provider_message_is_not_trusted(
    signed, sent_sms, session
):
    response = _status(signed, "SMsomeoneelse", "delivered", query=f"?outbox={sent_sms.id}")
    _problem(response, 404)
    session.refresh(sent_sms)
    assert (sent_sms.provider_id, sent_sms.status) == ("SMwebhook1", "sent")


# Past the integer column, negative, zero, not a number, and an Arabic-Indic digit one.
_OUT_OF_RANGE_OUTBOX_IDS = ["2147483648", "99999999999999999999", "-1", "0", "abc", "\u0661"]


@pytest.mark.parametrize("outbox", _OUT_OF_RANGE_OUTBOX_IDS)
def test_an_outbox_id_no_row_could_have_is_ignored_and_the_message_found_by_its_sid(
    signed, sent_sms, session, outbox
):
    response = _status(signed, "SMwebhook1", "delivered", query=f"?outbox={outbox}")
    assert response.status_code == 204, response.get_data(as_text=True)
    session.refresh(sent_sms)
    assert sent_sms.status == "delivered"


@pytest.mark.parametrize("outbox", _OUT_OF_RANGE_OUTBOX_IDS)
def test_an_outbox_id_no_row_could_have_with_an_unknown_sid_is_404(signed, sent_sms, outbox):
    _problem(_status(signed, "SMunknown", "delivered", query=f"?outbox={outbox}"), 404)


def test_a_callback_for_an_unknown_message_is_404(signed, sent_sms):
    _problem(_status(signed, "SMunknown", "delivered"), 404)


def test_an_unknown_status_is_422(signed, sent_sms):
    _problem(_status(signed, "SMwebhook1", "exploded"), 422)


# -- inbound SMS ---------------------------------------------------------------------------


def _inbound(signed, body: str, sender: str, sid: str | None = None):
    return signed(
        INBOUND,
        {
            "MessageSid": sid or f"SMin{next(_sids)}",
            "From": sender,
            "To": "+15005550006",
            "Body": body,
        },
    )


@pytest.fixture
def patient_referral(factory):
    return new_referral(factory, patient={"phone": "+905321234567"})


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop! ",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    ],
)
def test_opt_out_keywords_withdraw_sms_consent(signed, patient_referral, session, body):
    response = _inbound(signed, body, "+905321234567")
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert "<Message>" not in response.get_data(as_text=True)
    session.refresh(patient_referral.patient)
    assert patient_referral.patient.may_contact("sms") is False
    assert patient_referral.patient.may_contact("email") is True
    [inbound] = session.scalars(
        select(InboundMessage).where(InboundMessage.referral_id == patient_referral.id)
    )
    assert inbound.classification == "opt_out"


@pytest.mark.parametrize("body", ["START", "yes", " Unstop "])
def test_opt_in_keywords_restore_sms_consent(signed, patient_referral, session, body):
    patient = patient_referral.patient
    set_consent(patient, "sms", False, "STOP")
    session.commit()
    assert _inbound(signed, body, "+905321234567").status_code == 200
    session.refresh(patient)
    assert patient.may_contact("sms") is True


def test_a_keyword_is_audited_as_the_patients_own_with_its_source(
    signed, patient_referral, session
):
    patient = patient_referral.patient
    assert _inbound(signed, "STOP", "+905321234567").status_code == 200
    [event] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "consent.sms", AuditEvent.actor_id == patient.id
        )
    )
    assert (event.actor_type, event.detail["granted"]) == ("patient", False)
    assert event.detail["source"].startswith("sms keyword (")


@pytest.mark.parametrize("body", ["HELP", "info", " Help? "])
def test_help_keywords_answer_with_the_hospitals_contact_line(
    app, signed, patient_referral, session, body
):
    response = _inbound(signed, body, "+905321234567")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert f"<Message>{app.config['CRM']['HOSPITAL_NAME']}" in text
    assert app.config["CRM"]["HOSPITAL_PHONE"] in text
    assert not session.scalars(select(Task).where(Task.referral_id == patient_referral.id)).all()


def test_any_other_reply_goes_on_the_timeline_and_opens_a_reply_task(
    signed, patient_referral, session
):
    body = "Stop sending me these, I already sent my MRI"
    response = _inbound(signed, body, "+905321234567", sid="SMreply1")
    assert response.status_code == 200
    assert "<Message>" not in response.get_data(as_text=True)
    [inbound] = session.scalars(
        select(InboundMessage).where(InboundMessage.referral_id == patient_referral.id)
    )
    assert (inbound.body, inbound.classification) == (body, "reply")
    assert inbound.patient_id == patient_referral.patient_id
    [task] = session.scalars(select(Task).where(Task.referral_id == patient_referral.id))
    assert (task.source, task.status) == ("reply", "open")
    session.refresh(patient_referral.patient)
    assert patient_referral.patient.may_contact("sms") is True, "a sentence is not a keyword"


def test_a_replayed_inbound_message_is_handled_once(signed, patient_referral, session):
    for _ in range(3):
        assert (
            _inbound(signed, "When is my appointment?", "+905321234567", "SMsame").status_code
            == 200
        )
    assert (
        len(
            session.scalars(
                select(InboundMessage).where(InboundMessage.provider_id == "SMsame")
            ).all()
        )
        == 1
    )
    assert (
        len(session.scalars(select(Task).where(Task.referral_id == patient_referral.id)).all()) == 1
    )


def test_a_replayed_stop_after_start_does_not_undo_the_start(signed, patient_referral, session):
    _inbound(signed, "STOP", "+905321234567", "SMstop")
    _inbound(signed, "START", "+905321234567", "SMstart")
    _inbound(signed, "STOP", "+905321234567", "SMstop")  # Twilio retried the first one
    session.refresh(patient_referral.patient)
    assert patient_referral.patient.may_contact("sms") is True


def test_a_message_from_an_unknown_number_is_stored_without_a_task(signed, session):
    assert _inbound(signed, "hello?", "+15550001111", "SMstranger").status_code == 200
    inbound = session.scalar(
        select(InboundMessage).where(InboundMessage.provider_id == "SMstranger")
    )
    assert inbound.referral_id is None and inbound.patient_id is None


def test_an_unsigned_inbound_message_changes_nothing(
    app, client, patient_referral, monkeypatch, session
):
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    response = client.post(
        INBOUND, data={"MessageSid": "SMforged", "From": "+905321234567", "Body": "STOP"}
    )
    _problem(response, 403)
    session.refresh(patient_referral.patient)
    assert patient_referral.patient.may_contact("sms") is True


def test_outbox_rows_are_untouched_by_a_refused_callback(client, sent_sms, session):
    client.post(STATUS, data={"MessageSid": "SMwebhook1", "MessageStatus": "failed"})
    row = session.get(OutboxMessage, sent_sms.id)
    session.refresh(row)
    assert row.status == "sent"
