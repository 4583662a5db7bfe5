"""Twilio's webhooks (delivery status, inbound SMS and WhatsApp). WhatsApp comes through the
same two URLs: Twilio writes its numbers `whatsapp:+...`. The email's unsubscribe link is a
page of the patient's own: crm/portal/unsubscribe.py.

Twilio requests are verified with the SDK's RequestValidator against the public URL we
are configured with, so the check holds behind a proxy that rewrites Host or scheme.
"""

from __future__ import annotations

import logging
import re
from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator

from crm.core.actors import patient_actor
from crm.core.db import utcnow
from crm.core.errors import Forbidden, NotFound, ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.messaging.delivery.sms import mask_phone
from crm.messaging.events import announce, change
from crm.messaging.inbound.keywords import InboundKind, classify
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients import consent_sources
from crm.patients.models import Patient
from crm.patients.operations import set_own_consent, survivors
from crm.referrals.events import AttentionNeeded
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID
from crm.referrals.stages import TERMINAL

log = logging.getLogger(__name__)
webhooks = Blueprint("webhooks", __name__)

# Twilio statuses by progress; a callback never moves a message backwards.
_RANK = {
    "accepted": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "read": 4,
}
_OUR_STATUS = {"sent": "sent", "delivered": "delivered", "read": "delivered"}
_OUR_STATUS |= {"undelivered": "undelivered", "failed": "failed"}
_DIGITS = re.compile(r"[0-9]{1,10}", re.ASCII)


def _verify_twilio() -> None:
    settings = current_app.config["CRM"]
    token = settings["TWILIO_AUTH_TOKEN"]
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        raise Forbidden("unsigned request")
    url = settings["PUBLIC_BASE_URL"].rstrip("/") + request.full_path.rstrip("?")
    if not RequestValidator(token).validate(url, request.form.to_dict(), signature):
        raise Forbidden("signature does not match")


def _twiml(message: str | None = None) -> Response:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return Response(
        f"<?xml version='1.0' encoding='UTF-8'?><Response>{body}</Response>", mimetype="text/xml"
    )


@webhooks.post("/webhooks/twilio/status")
def twilio_status() -> Response:
    _verify_twilio()
    sid, status = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if not sid or status not in _RANK:
        raise ValidationFailed({"MessageStatus": f"unknown status {status!r}"})
    message = _message_for_callback(sid)
    if message is None:
        raise NotFound("no message with this id")
    _apply_status(message, status, request.form.get("ErrorCode"))
    return Response(status=204)


def _outbox_hint() -> int | None:
    """The `?outbox=` id our own callback URL carries, if it is one a row could have. The
    URL is signed, but we are not the only signer's client: anything else (`-1`, `abc`,
    `2147483648`, which the `integer` column cannot even compare) is ignored, and the
    message is found by its provider id alone."""
    raw = request.args.get("outbox", "")
    if not _DIGITS.fullmatch(raw):
        return None
    outbox_id = int(raw)
    return outbox_id if 0 < outbox_id <= MAX_ROW_ID else None


def _message_for_callback(sid: str) -> OutboxMessage | None:
    outbox_id = _outbox_hint()
    if outbox_id is not None:
        message = db.session.get(OutboxMessage, outbox_id, with_for_update=True)
        if message is not None and message.provider_id in (None, sid):
            message.provider_id = sid  # the callback may beat our own "sent" commit
            return message
    return db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.provider_id == sid).with_for_update()
    )


_FINAL_PROVIDER_STATUSES = frozenset({"delivered", "undelivered", "failed", "read"})


def _apply_status(message: OutboxMessage, status: str, error_code: str | None) -> None:
    current = _RANK.get(message.provider_status or "queued", 0)
    if _RANK[status] < current or message.provider_status == status:
        return
    if message.provider_status in _FINAL_PROVIDER_STATUSES and status != "read":
        return  # a final answer stands; only "read" may follow "delivered"
    message.provider_status = status
    ours = _OUR_STATUS.get(status)
    if ours and message.status in {"sending", "sent", "queued"} | {ours}:
        if message.status != ours:
            announce([change(message, message.status, None, ours)])
        message.status = ours
    if status in {"delivered", "read"}:
        message.delivered_at = message.delivered_at or utcnow()
    if error_code:
        message.error_code = error_code[:20]


@webhooks.post("/webhooks/twilio/inbound")
def twilio_inbound() -> Response:
    _verify_twilio()
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    channel, sender = _channel_and_number(request.form.get("From", ""))
    body = request.form.get("Body", "")
    if not sid or not sender:
        raise ValidationFailed({"MessageSid": "required", "From": "required"})
    if db.session.scalar(select(InboundMessage.id).where(InboundMessage.provider_id == sid)):
        return _twiml()  # a replay: already handled
    classified = classify(body)
    # A merged patient's number (kept on its tombstone) reaches the survivor.
    found = list(db.session.scalars(select(Patient).where(Patient.phone == sender)))
    patients = survivors(found, lock=classified.kind in {InboundKind.OPT_OUT, InboundKind.OPT_IN})
    referral = _latest_referral(patients)
    inbound = InboundMessage(
        provider_id=sid,
        from_address=sender,
        channel=channel,  # a WhatsApp one opens the number's 24-hour session
        body=body[:2000],
        classification=classified.kind,
        patient_id=patients[0].id if patients else None,
        referral_id=referral.id if referral else None,
    )
    try:
        with db.session.begin_nested():
            db.session.add(inbound)
            db.session.flush()
    except IntegrityError:
        return _twiml()  # the same message is being handled by a concurrent replay
    if classified.kind == InboundKind.OPT_IN:
        # START gives consent for the number it came from only: not to a survivor reached
        # at another number since a merge. STOP from any number of the person counts.
        patients = [p for p in patients if p.phone == sender]
    reply = _act_on(classified.kind, patients, referral, sid, channel)
    db.session.flush()
    log.info(
        "inbound message",
        extra={"from": mask_phone(sender), "kind": str(classified.kind), "channel": channel},
    )
    return _twiml(reply)


_WHATSAPP = "whatsapp:"
_CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp"}


def _channel_and_number(sender: str) -> tuple[str, str]:
    """`whatsapp:+4915...` -> ("whatsapp", "+4915..."); a bare number is an SMS."""
    if sender[: len(_WHATSAPP)].lower() == _WHATSAPP:
        return "whatsapp", sender[len(_WHATSAPP) :].strip()
    return "sms", sender


def _latest_referral(patients: list[Patient]) -> Referral | None:
    if not patients:
        return None
    return db.session.scalar(
        select(Referral)
        .where(Referral.patient_id.in_([p.id for p in patients]))
        .order_by(Referral.stage.in_([str(s) for s in TERMINAL]), Referral.updated_at.desc())
        .limit(1)
    )


def _act_on(
    kind: str, patients: list[Patient], referral: Referral | None, sid: str, channel: str
) -> str | None:
    """A keyword changes consent on the channel it came by alone: STOP on WhatsApp leaves
    SMS as it was, and the other way round."""
    settings = current_app.config["CRM"]
    if kind in {InboundKind.OPT_OUT, InboundKind.OPT_IN}:
        granted = kind == InboundKind.OPT_IN
        for patient in patients:
            source = consent_sources.keyword(channel, sid)
            set_own_consent(patient, channel, granted, source, patient_actor(patient.id))
        return None
    if kind == InboundKind.HELP:
        return f"{settings['HOSPITAL_NAME']}: call us on {settings['HOSPITAL_PHONE']}."
    if referral is not None:
        publish(
            AttentionNeeded(
                referral,
                f"The patient replied by {_CHANNEL_NAMES[channel]}",
                "reply",
                detail="Read and answer it in the conversation on the referral's page.",
                dedupe_key=f"reply:{sid}",
            )
        )
    return None
