"""Sending on WhatsApp: free text in the 24-hour session, the approved template outside it,
decided when the message is sent; no template: SMS if the rule allows, else suppressed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from crm.core.db import utcnow
from crm.messaging.composing.outbox import enqueue
from crm.messaging.composing.templates import SMS_VARIABLES
from crm.patients.operations import set_consent
from tests.messaging.support import outbox_for
from tests.messaging.whatsapp.conftest import (
    PHONE,
    SID_EN,
    SID_TR,
    WHATSAPP_FROM,
    patient_wrote,
    session_closes_now,
    whatsapp_referral,
)

pytestmark = pytest.mark.usefixtures("templates_file")
HOUR = timedelta(hours=1)


def _write(referral, channels=("whatsapp",), kind="mri_reminder", key="wa:1", fallback=True):
    return enqueue(
        referral, kind=kind, audience="patient", channels=list(channels), key=key,
        fallback=fallback,
    ).messages  # fmt: skip


def test_inside_the_session_a_whatsapp_message_goes_as_free_text(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    patient_wrote(utcnow() - 2 * HOUR)
    [message] = _write(referral)
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert sent["from"] == f"whatsapp:{WHATSAPP_FROM}"
    assert (sent["body"], sent["content_sid"]) == (message.body_text, None)
    session.refresh(message)
    assert (message.channel, message.status, message.content_sid) == ("whatsapp", "sent", None)


def test_outside_the_session_the_approved_template_goes_by_content_sid_with_its_variables(
    app, factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    [message] = _write(referral)
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert sent["content_sid"] == SID_EN and sent["body"] == ""
    values = message.template_values
    assert sent["content_variables"] == {
        "1": referral.patient.given_name,
        "2": app.config["CRM"]["HOSPITAL_NAME"],
        "3": values["link"],
    }
    session.refresh(message)
    assert (message.status, message.content_sid) == ("sent", SID_EN)
    assert json.loads(message.content_variables) == sent["content_variables"]


@pytest.mark.parametrize(("language", "sid"), [("tr", SID_TR), ("de", SID_EN)])
def test_the_template_is_the_patients_language_or_else_english(
    factory, session, dispatcher, fake_twilio, language, sid
):
    referral = whatsapp_referral(factory, language=language)
    _write(referral)
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert sent["content_sid"] == sid


def test_a_template_is_filled_only_from_the_sms_allow_list(factory, session):
    referral = whatsapp_referral(factory)
    [message] = _write(referral)
    assert set(message.template_values) <= SMS_VARIABLES
    assert referral.procedure.name not in json.dumps(message.template_values)


def test_a_session_that_closes_between_writing_and_sending_sends_the_template(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    patient_wrote(utcnow() - 2 * HOUR)
    [message] = _write(referral)  # written in the session: free text would do
    session_closes_now()
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert sent["content_sid"] == SID_EN
    session.refresh(message)
    assert message.content_sid == SID_EN


def test_a_session_that_opens_between_writing_and_sending_sends_free_text(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    [message] = _write(referral)  # written outside the session: a template would go
    patient_wrote(utcnow() - HOUR)
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert (sent["content_sid"], sent["body"]) == (None, message.body_text)


def test_a_session_in_its_last_minutes_no_longer_takes_free_text(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    patient_wrote(utcnow() - timedelta(hours=23, minutes=58))
    _write(referral)
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert sent["content_sid"] == SID_EN


def test_a_kind_without_a_template_outside_the_session_falls_back_to_sms_when_written(
    factory, session
):
    referral = whatsapp_referral(factory)
    [message] = _write(referral, channels=("whatsapp", "sms"), kind="plan_unanswered_patient")
    assert (message.channel, message.status) == ("sms", "queued")


def test_a_kind_without_a_template_on_whatsapp_alone_is_suppressed(factory, session):
    referral = whatsapp_referral(factory)
    [message] = _write(referral, kind="plan_unanswered_patient")
    assert (message.channel, message.status) == ("whatsapp", "suppressed")
    assert message.suppressed_reason == "no_whatsapp_template"


def test_a_session_closing_before_sending_with_no_template_sends_the_sms_instead(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    patient_wrote(utcnow() - HOUR)
    [message] = _write(referral, channels=("whatsapp", "sms"), kind="plan_unanswered_patient")
    assert (message.channel, message.fallback_channel) == ("whatsapp", "sms")
    session_closes_now()
    session.commit()
    dispatcher.run_once()
    session.refresh(message)
    assert (message.status, message.suppressed_reason) == ("suppressed", "no_whatsapp_template")
    [twin] = outbox_for(referral.id, channel="sms", kind="plan_unanswered_patient")
    assert (twin.status, twin.body_text) == ("queued", message.body_text)
    dispatcher.run_once()
    assert fake_twilio.whatsapp_to(PHONE) == []
    [sms] = fake_twilio.sent_to(PHONE)
    assert sms["body"] == message.body_text


def test_a_session_closing_before_sending_with_no_template_and_no_fallback_is_suppressed(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    patient_wrote(utcnow() - HOUR)
    [message] = _write(referral, kind="plan_unanswered_patient")  # WhatsApp alone
    assert message.fallback_channel is None
    session_closes_now()
    session.commit()
    dispatcher.run_once()
    session.refresh(message)
    assert (message.status, message.suppressed_reason) == ("suppressed", "no_whatsapp_template")
    assert outbox_for(referral.id, channel="sms", kind="plan_unanswered_patient") == []
    assert fake_twilio.whatsapp_to(PHONE) == [] and fake_twilio.sent_to(PHONE) == []


def test_without_whatsapp_consent_a_whatsapp_message_is_suppressed(factory, session):
    referral = whatsapp_referral(factory, whatsapp=False)
    [message] = _write(referral)
    assert (message.status, message.suppressed_reason) == ("suppressed", "no_consent")


def test_without_whatsapp_consent_the_rule_takes_sms(factory, session):
    referral = whatsapp_referral(factory, whatsapp=False)
    [message] = _write(referral, channels=("whatsapp", "sms"))
    assert message.channel == "sms"


def test_whatsapp_consent_withdrawn_before_sending_suppresses_the_message(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    [message] = _write(referral)
    set_consent(referral.patient, "whatsapp", False, "patient asked")
    session.commit()
    dispatcher.run_once()
    session.refresh(message)
    assert (message.status, message.suppressed_reason) == ("suppressed", "consent_withdrawn")
    assert fake_twilio.whatsapp_to(PHONE) == []


def test_a_status_callback_url_names_the_whatsapp_message(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    [message] = _write(referral)
    session.commit()
    dispatcher.run_once()
    [sent] = fake_twilio.whatsapp_to(PHONE)
    assert sent["status_callback"].endswith(f"?outbox={message.id}")


def test_a_carrier_opt_out_on_whatsapp_withdraws_whatsapp_consent_alone(
    factory, session, dispatcher, fake_twilio
):
    referral = whatsapp_referral(factory)
    [message] = _write(referral)
    session.commit()
    fake_twilio.program(status=400, code=21610, to=f"whatsapp:{PHONE}")
    dispatcher.run_once()
    session.refresh(message)
    session.refresh(referral.patient)
    assert message.status == "failed"
    assert referral.patient.may_contact("whatsapp") is False
    assert referral.patient.may_contact("sms") is True


def test_with_no_whatsapp_sender_configured_the_message_fails_saying_so(
    factory, session, dispatcher
):
    dispatcher.transports.whatsapp = None
    referral = whatsapp_referral(factory)
    [message] = _write(referral)
    session.commit()
    dispatcher.run_once()
    session.refresh(message)
    assert message.status == "failed"
    assert "CRM_TWILIO_WHATSAPP_FROM" in message.error_message
