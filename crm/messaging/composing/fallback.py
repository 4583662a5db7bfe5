"""A WhatsApp message that can go neither as free text nor as a template, at send time:
its SMS twin, when the rule allowed a fallback and SMS was the next permitted channel."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from crm.extensions import db
from crm.messaging.composing.segments import analyse
from crm.messaging.composing.spend import WINDOWS, count_sms
from crm.messaging.delivery.quiet_hours import next_allowed_send, parse_window
from crm.messaging.models import OutboxMessage
from crm.patients.models import Patient


def fall_back_to_sms(message: OutboxMessage, now: datetime) -> OutboxMessage | None:
    """A WhatsApp message that could go neither as free text nor as a template: its SMS
    twin, under the SMS rules (consent now, quiet hours, the spend caps). Once per cause."""
    key = message.idempotency_key.rsplit(":", 1)[0] + ":sms"
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
        return None
    patient = db.session.get(Patient, message.patient_id) if message.patient_id else None
    sms = OutboxMessage(
        idempotency_key=key,
        **{name: getattr(message, name) for name in _TWIN_FIELDS},
        channel="sms",
        to_address=(patient.phone if patient else None) or message.to_address,
        segments=analyse(message.body_text).segments,
        status="queued",
        next_attempt_at=next_allowed_send(
            now, message.time_zone, parse_window(current_app.config["CRM"]["QUIET_HOURS"])
        ),
        created_at=now,
    )
    if patient is None or not patient.may_contact("sms"):
        sms.status, sms.suppressed_reason = "suppressed", "no_consent"
    elif cap := count_sms(message.agency_id, now):
        sms.next_attempt_at = max(sms.next_attempt_at, now + WINDOWS[cap])
    db.session.add(sms)
    db.session.flush()
    return sms


_TWIN_FIELDS = (
    "referral_id",
    "agency_id",
    "patient_id",
    "audience",
    "kind",
    "language",
    "time_zone",
    "body_text",
    "rule_code",
    "stage",
    "stage_entered_at",
    "stands",
)
