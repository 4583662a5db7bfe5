"""The approved-template file, the WhatsApp transports (Twilio's SDK, the file) and consent."""

from __future__ import annotations

import json

import pytest

from crm.messaging.composing.templates import TemplateError
from crm.messaging.composing.whatsapp_templates import WhatsAppTemplates, load_whatsapp_templates
from crm.messaging.delivery.sms import FileGateway, PermanentSmsError, TwilioGateway
from crm.messaging.delivery.transports import from_settings, whatsapp_gateway
from tests.helpers import API
from tests.messaging.whatsapp.conftest import PHONE, SID_EN, SID_TR, WHATSAPP_FROM

SID = "HX" + "c" * 32


def _templates(**entry):
    return WhatsAppTemplates({"mri_reminder": {"en": {"content_sid": SID, **entry}}})


def test_the_shipped_templates_file_loads_and_holds_no_account_s_content_sids():
    assert len(load_whatsapp_templates("config/whatsapp_templates.toml")) == 0


def test_a_template_with_a_health_detail_among_its_variables_is_refused():
    with pytest.raises(TemplateError, match="procedure_name"):
        _templates(variables=["patient_first_name", "procedure_name"])


def test_a_template_for_an_unknown_kind_is_refused():
    with pytest.raises(TemplateError, match="unknown message kind"):
        WhatsAppTemplates({"lab_results": {"en": {"content_sid": SID, "variables": []}}})


def test_a_content_sid_that_is_not_one_is_refused():
    with pytest.raises(TemplateError, match="content_sid"):
        WhatsAppTemplates({"mri_reminder": {"en": {"content_sid": "MG123", "variables": []}}})


def test_the_variables_are_numbered_in_the_order_the_template_names_them():
    template = _templates(variables=["link", "patient_first_name"]).find("mri_reminder", "en")
    filled = template.content_variables({"patient_first_name": "Ayşe", "link": "https://x/p/1"})
    assert json.loads(filled) == {"1": "https://x/p/1", "2": "Ayşe"}


def test_a_regional_language_finds_its_language_s_template(templates_file):
    templates = load_whatsapp_templates(templates_file)
    assert templates.find("mri_reminder", "tr-TR").content_sid == SID_TR
    assert templates.find("mri_reminder", "ar").content_sid == SID_EN
    assert templates.find("plan_offered_patient", "en") is None


def _settings(app, tmp_path, **overrides):
    return {**app.config["CRM"], "OUTBOX_FILE_DIR": str(tmp_path), **overrides}


def test_without_credentials_whatsapp_messages_are_written_to_whatsapp_jsonl(app, tmp_path):
    gateway = whatsapp_gateway(_settings(app, tmp_path, TWILIO_ACCOUNT_SID=""))
    assert isinstance(gateway, FileGateway)
    gateway.send(PHONE, "", None, content_sid=SID, content_variables='{"1": "Ayşe"}')
    [line] = (tmp_path / "whatsapp.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert (record["to"], record["content_sid"]) == (f"whatsapp:{PHONE}", SID)
    assert json.loads(record["content_variables"]) == {"1": "Ayşe"}
    assert not (tmp_path / "sms.jsonl").exists()


def test_the_twilio_whatsapp_gateway_sends_from_the_whatsapp_number(app, tmp_path, fake_twilio):
    settings = _settings(
        app,
        tmp_path,
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_WHATSAPP_FROM=WHATSAPP_FROM,
        TWILIO_BASE_URL=fake_twilio.base_url,
    )
    transports = from_settings(settings)
    transports.whatsapp.send(PHONE, "Hello")
    transports.sms.send(PHONE, "Hello")
    [whatsapp] = fake_twilio.whatsapp_to(PHONE)
    [sms] = fake_twilio.sent_to(PHONE)
    assert whatsapp["from"] == f"whatsapp:{WHATSAPP_FROM}" and sms["from"] == "+15005550006"


def test_with_credentials_but_no_whatsapp_sender_there_is_no_whatsapp_transport(app, tmp_path):
    settings = _settings(
        app, tmp_path, TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_FROM_NUMBER="+15005550006"
    )
    assert whatsapp_gateway(settings) is None


def test_the_fake_refuses_a_whatsapp_message_from_an_sms_number(fake_twilio, app, tmp_path):
    settings = _settings(
        app,
        tmp_path,
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_AUTH_TOKEN=fake_twilio.auth_token,
        TWILIO_FROM_NUMBER="+15005550006",
        TWILIO_BASE_URL=fake_twilio.base_url,
    )
    gateway = from_settings(settings).sms
    gateway.address_prefix = "whatsapp:"  # To on WhatsApp, From an SMS number
    with pytest.raises(PermanentSmsError) as refused:
        gateway.send(PHONE, "Hello")
    assert refused.value.code == 21910


def test_the_fake_refuses_a_content_sid_twilio_would_not_know(fake_twilio):
    with (
        TwilioGateway(
            fake_twilio.account_sid,
            fake_twilio.auth_token or "",
            from_number=WHATSAPP_FROM,
            base_url=fake_twilio.base_url,
            address_prefix="whatsapp:",
        ) as gateway,
        pytest.raises(PermanentSmsError) as refused,
    ):
        gateway.send(PHONE, "", content_sid="HXnot-a-sid", content_variables="{}")
    assert refused.value.code == 21655


def test_whatsapp_consent_is_set_through_the_api_like_sms_and_email(client, factory, session):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = client.patch(
        f"{API}/referrals/{referral.id}/patient",
        json={"consents": {"whatsapp": True, "source": "patient asked on the phone"}},
        headers=agency.headers(),
    )
    assert response.status_code == 200, response.json
    consents = {c["channel"]: c["granted"] for c in response.json["patient"]["consents"]}
    assert consents == {"email": True, "sms": True, "whatsapp": True}
