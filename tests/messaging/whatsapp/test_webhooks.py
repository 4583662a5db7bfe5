"""WhatsApp through the same signed webhooks: statuses, keywords on their own channel, replies."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from crm.core.db import utcnow
from crm.messaging.composing.outbox import enqueue
from crm.messaging.models import InboundMessage
from crm.messaging.session import session_open
from crm.patients.operations import set_consent
from crm.tasks.models import Task
from tests.helpers import API
from tests.messaging.whatsapp.conftest import PHONE, WHATSAPP_FROM, whatsapp_referral

TOKEN = "webhook-test-token"
STATUS, INBOUND = "/webhooks/twilio/status", "/webhooks/twilio/inbound"
_sids = itertools.count(1)


@pytest.fixture
def signed(app, client, monkeypatch, templates_file):
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    base = app.config["CRM"]["PUBLIC_BASE_URL"]

    def post(path: str, form: dict[str, str]):
        signature = RequestValidator(TOKEN).compute_signature(base + path, form)
        return client.post(path, data=form, headers={"X-Twilio-Signature": signature})

    return post


def _whatsapp(signed, body: str, sid: str | None = None, sender: str = PHONE):
    return signed(
        INBOUND,
        {
            "MessageSid": sid or f"SMwain{next(_sids)}",
            "From": f"whatsapp:{sender}",
            "To": f"whatsapp:{WHATSAPP_FROM}",
            "Body": body,
        },
    )


def _sms(signed, body: str):
    form = {"MessageSid": f"SMsmsin{next(_sids)}", "From": PHONE, "To": "+15005550006"}
    return signed(INBOUND, {**form, "Body": body})


@pytest.fixture
def referral(factory):
    return whatsapp_referral(factory)


def test_stop_on_whatsapp_withdraws_whatsapp_consent_and_leaves_sms(signed, referral, session):
    assert _whatsapp(signed, "STOP").status_code == 200
    session.refresh(referral.patient)
    assert referral.patient.may_contact("whatsapp") is False
    assert referral.patient.may_contact("sms") is True
    assert referral.patient.consent_for("whatsapp").source.startswith("whatsapp keyword")


def test_stop_by_sms_leaves_whatsapp_consent(signed, referral, session):
    assert _sms(signed, "STOP").status_code == 200
    session.refresh(referral.patient)
    assert referral.patient.may_contact("sms") is False
    assert referral.patient.may_contact("whatsapp") is True


def test_start_on_whatsapp_restores_whatsapp_consent(signed, referral, session):
    set_consent(referral.patient, "whatsapp", False, "STOP")
    set_consent(referral.patient, "sms", False, "STOP")
    session.commit()
    assert _whatsapp(signed, "START").status_code == 200
    session.refresh(referral.patient)
    assert referral.patient.may_contact("whatsapp") is True
    assert referral.patient.may_contact("sms") is False


def test_a_whatsapp_reply_lands_on_the_timeline_with_its_channel_and_opens_a_task(
    signed, referral, session
):
    response = _whatsapp(signed, "Is the hotel near the hospital?", sid="SMwareply")
    assert response.status_code == 200
    assert "<Message>" not in response.get_data(as_text=True)
    [inbound] = session.scalars(
        select(InboundMessage).where(InboundMessage.referral_id == referral.id)
    )
    assert (inbound.channel, inbound.from_address) == ("whatsapp", PHONE)
    assert (inbound.classification, inbound.patient_id) == ("reply", referral.patient_id)
    [task] = session.scalars(select(Task).where(Task.referral_id == referral.id))
    assert (task.source, task.status) == ("reply", "open")
    assert task.title == "The patient replied by WhatsApp"


def test_a_whatsapp_message_opens_the_numbers_24_hour_session(signed, referral):
    assert not session_open(PHONE, utcnow())
    assert _whatsapp(signed, "Thank you").status_code == 200
    assert session_open(PHONE, utcnow())


def test_an_sms_does_not_open_a_whatsapp_session(signed, referral):
    assert _sms(signed, "Thank you").status_code == 200
    assert not session_open(PHONE, utcnow())


def test_the_messages_api_shows_the_replys_channel(signed, referral, client, factory):
    _whatsapp(signed, "See you soon")
    staff = factory.staff("coordinator")
    response = client.get(f"{API}/referrals/{referral.id}/messages", headers=staff.headers())
    assert response.status_code == 200, response.json
    assert [m["channel"] for m in response.json["inbound"]] == ["whatsapp"]


def test_a_status_callback_moves_a_whatsapp_message_forward_only(signed, referral, session):
    [message] = enqueue(
        referral, kind="mri_reminder", audience="patient", channels=["whatsapp"], key="wa:s"
    ).messages
    message.status, message.provider_id, message.provider_status = "sent", "SMwastatus", "sent"
    session.commit()

    def status(value: str) -> int:
        form = {"MessageSid": "SMwastatus", "MessageStatus": value, "ChannelPrefix": "whatsapp"}
        return signed(STATUS, form).status_code

    assert status("delivered") == 204
    assert status("read") == 204
    assert status("sent") == 204
    session.refresh(message)
    assert (message.status, message.provider_status) == ("delivered", "read")
    assert message.delivered_at is not None
