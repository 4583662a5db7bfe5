"""WhatsApp fixtures: approved templates in a file of the test's own, a patient who allows
WhatsApp, the 24-hour session, and a dispatcher sending SMS and WhatsApp through the real
SDK to the fake Twilio server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from crm.core.db import utcnow
from crm.extensions import db
from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.sms import TwilioGateway
from crm.messaging.delivery.transports import Transports
from crm.messaging.models import InboundMessage
from crm.referrals.models import Referral
from tests.fakes.twilio_server import FakeTwilio
from tests.messaging.conftest import FROM_NUMBER
from tests.messaging.support import NO_QUIET_HOURS, RecordingMailer, new_referral, quiet_outbox

PHONE = "+905321234567"
WHATSAPP_FROM = "+14155238886"
CALLBACK = "https://crm.example/webhooks/twilio/status"
SID_EN = "HX" + "a" * 32
SID_TR = "HX" + "b" * 32
TEMPLATES = f"""
[mri_reminder.en]
content_sid = "{SID_EN}"
variables = ["patient_first_name", "hospital_name", "link"]

[mri_reminder.tr]
content_sid = "{SID_TR}"
variables = ["patient_first_name", "link"]
"""
ALL_CONSENTS = {"sms": True, "email": True, "whatsapp": True, "source": "signed intake form"}
_sids = itertools.count(1)


@pytest.fixture
def templates_file(app, tmp_path, monkeypatch):
    """mri_reminder has approved templates (English and Turkish); no other kind has one."""
    path = tmp_path / "whatsapp_templates.toml"
    path.write_text(TEMPLATES, encoding="utf-8")
    monkeypatch.setitem(app.config["CRM"], "WHATSAPP_TEMPLATES_FILE", str(path))
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    return path


def whatsapp_referral(factory, language: str = "en", **consents: bool) -> Referral:
    """A referral whose patient allows SMS, email and WhatsApp (unless told otherwise)."""
    patient = {"phone": PHONE, "language": language, "consents": {**ALL_CONSENTS, **consents}}
    referral = new_referral(factory, patient=patient)
    quiet_outbox()  # only what a test writes itself is due
    return referral


def patient_wrote(at: datetime, number: str = PHONE, referral_id: int | None = None) -> None:
    """An inbound WhatsApp message from the number at `at`: it opens the 24-hour session."""
    db.session.add(
        InboundMessage(
            provider_id=f"SMwa{next(_sids)}",
            from_address=number,
            channel="whatsapp",
            body="Hello",
            classification="reply",
            referral_id=referral_id,
            received_at=at,
        )
    )
    db.session.flush()


def session_closes_now(number: str = PHONE) -> None:
    """Time passes: the number's last WhatsApp message is now more than a day old."""
    for inbound in db.session.query(InboundMessage).filter_by(from_address=number):
        inbound.received_at = utcnow() - timedelta(hours=25)
    db.session.flush()


@pytest.fixture
def dispatcher(fake_twilio: FakeTwilio, templates_file) -> Iterator[Dispatcher]:
    def gateway(**kwargs) -> TwilioGateway:
        return TwilioGateway(
            fake_twilio.account_sid,
            fake_twilio.auth_token or "",
            timeout=2.0,
            base_url=fake_twilio.base_url,
            **kwargs,
        )

    with (
        gateway(from_number=FROM_NUMBER) as sms,
        gateway(from_number=WHATSAPP_FROM, address_prefix="whatsapp:") as whatsapp,
    ):
        transports = Transports(sms, RecordingMailer(), CALLBACK, whatsapp)
        settings = DispatchSettings(
            quiet_hours=NO_QUIET_HOURS, whatsapp_templates_file=str(templates_file)
        )
        yield Dispatcher(transports, settings, name="whatsapp-test")
