"""What the outbox needs to know about WhatsApp when it writes a message: whether it can
go at all (free text in the patient's open 24-hour session, or an approved template for
its kind), and the allow-listed values a template would be filled with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from crm.messaging.composing.templates import SMS_VARIABLES
from crm.messaging.composing.whatsapp_templates import WhatsAppTemplates, load_whatsapp_templates
from crm.messaging.session import session_open


def whatsapp_templates() -> WhatsAppTemplates:
    return load_whatsapp_templates(current_app.config["CRM"]["WHATSAPP_TEMPLATES_FILE"])


def whatsapp_deliverable(kind: str, language: str, phone: str | None, now: datetime) -> bool:
    """Free text in the patient's open session, or an approved template for the kind."""
    if whatsapp_templates().find(kind, language) is not None:
        return True
    return session_open(phone, now)


def template_values(context: dict[str, Any]) -> dict[str, str]:
    """What a WhatsApp template may be filled with: the SMS allow-list, nothing else."""
    return {name: str(context[name]) for name in sorted(SMS_VARIABLES) if name in context}
