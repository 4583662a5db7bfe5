"""Which SMS gateway and mailer this process uses, from configuration.

No Twilio credentials: SMS and WhatsApp messages are written to files. No SMTP host:
email is written to a file. Either way `make run` works and nothing leaves the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm.messaging.delivery.email import FileMailer, Mailer, SmtpMailer
from crm.messaging.delivery.sms import FileGateway, SmsGateway, TwilioGateway


@dataclass
class Transports:
    sms: SmsGateway
    email: Mailer
    status_callback_url: str | None
    whatsapp: SmsGateway | None = None  # None: no WhatsApp sender configured


WHATSAPP = "whatsapp:"


def whatsapp_gateway(settings: dict[str, Any]) -> SmsGateway | None:
    """WhatsApp through the same account: from CRM_TWILIO_WHATSAPP_FROM (sent as
    ``whatsapp:+...``) or else the Messaging Service (which must then hold a WhatsApp
    sender); neither: None, and WhatsApp messages fail saying so."""
    if not settings["TWILIO_ACCOUNT_SID"]:
        return FileGateway(Path(settings["OUTBOX_FILE_DIR"]) / "whatsapp.jsonl", WHATSAPP)
    sender = settings["TWILIO_WHATSAPP_FROM"]
    service = settings["TWILIO_MESSAGING_SERVICE_SID"]
    if not (sender or service):
        return None
    return TwilioGateway(
        settings["TWILIO_ACCOUNT_SID"],
        settings["TWILIO_AUTH_TOKEN"],
        messaging_service_sid=None if sender else service,
        from_number=sender or None,
        timeout=settings["TWILIO_TIMEOUT_SECONDS"],
        base_url=settings["TWILIO_BASE_URL"] or None,
        address_prefix=WHATSAPP,
    )


def sms_gateway(settings: dict[str, Any]) -> SmsGateway:
    if not settings["TWILIO_ACCOUNT_SID"]:
        return FileGateway(Path(settings["OUTBOX_FILE_DIR"]) / "sms.jsonl")
    return TwilioGateway(
        settings["TWILIO_ACCOUNT_SID"],
        settings["TWILIO_AUTH_TOKEN"],
        messaging_service_sid=settings["TWILIO_MESSAGING_SERVICE_SID"] or None,
        from_number=settings["TWILIO_FROM_NUMBER"] or None,
        timeout=settings["TWILIO_TIMEOUT_SECONDS"],
        base_url=settings["TWILIO_BASE_URL"] or None,
    )


def mailer(settings: dict[str, Any]) -> Mailer:
    if not settings["SMTP_HOST"]:
        return FileMailer(Path(settings["OUTBOX_FILE_DIR"]) / "email.jsonl", settings["EMAIL_FROM"])
    return SmtpMailer(
        settings["SMTP_HOST"],
        settings["SMTP_PORT"],
        from_address=settings["EMAIL_FROM"],
        from_name=settings["HOSPITAL_NAME"],
        security=settings["SMTP_SECURITY"],
        username=settings["SMTP_USERNAME"] or None,
        password=settings["SMTP_PASSWORD"] or None,
        timeout=settings["SMTP_TIMEOUT_SECONDS"],
    )


def from_settings(settings: dict[str, Any]) -> Transports:
    callback = (
        f"{settings['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/twilio/status"
        if settings["TWILIO_ACCOUNT_SID"]
        else None
    )
    return Transports(sms_gateway(settings), mailer(settings), callback, whatsapp_gateway(settings))
