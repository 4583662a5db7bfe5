from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound, ValidationFailed
from crm.extensions import db
from crm.messaging.composing.outbox import cancel_stale, enqueue
from crm.messaging.composing.overrides import health_detail_in
from crm.messaging.delivery.quiet_hours import parse_window
from crm.messaging.models import OutboxMessage
from crm.messaging.queries import QUIET_HOURS, hold_reason
from crm.referrals.models import Referral

MRI_WANTED_STAGES = frozenset({"enquiry", "awaiting_mri", "mri_review"})


MAX_SMS_TEXT = 320  # a coordinator's own words in an SMS: at most 3 GSM-7 segments


def screen_sms_text(text: str, field: str = "message") -> None:
    """A coordinator's own words going into an SMS (or WhatsApp) body: refused, naming what
    tripped, when they carry a health word, a dose, a price or a procedure's name (the same
    screen as SMS template edits), or would run past three segments."""
    if len(text) > MAX_SMS_TEXT:
        raise ValidationFailed(
            {field: f"an SMS carries at most {MAX_SMS_TEXT} characters ({len(text)} given)"}
        )
    if word := health_detail_in(text):
        raise ValidationFailed(
            {field: f"an SMS may not carry health detail or prices: it says {word!r}"}
        )


def send_ad_hoc(referral: Referral, args: dict[str, Any], actor: Actor) -> list[OutboxMessage]:
    """A coordinator's own message, through the same consent, quiet-hour and cap rules.

    The SMS carries only "you have a new message, open your link"; the text goes by email.
    With `sms_text` the SMS carries the text itself ("the driver is at gate B"), once it
    passed the health-detail screen of SMS bodies (422 naming the word that tripped it).
    """
    sms_text = args.get("sms_text", False)
    if sms_text:
        screen_sms_text(args["message"])
    result = enqueue(
        referral,
        kind="free_text" if sms_text else "ad_hoc",
        audience="patient",
        channels=args["channels"],
        key=f"adhoc:{referral.id}:{uuid.uuid4().hex}",
        fallback=args["fallback"],
        extra={
            "subject": args["subject"],
            "message": args["message"],
            "screened_text": args["message"] if sms_text else "",
        },
        over_cap="reject",
        stands=True,  # written by a person on purpose: it goes even if the referral moves
    )
    audit.record(
        actor,
        "message.ad_hoc",
        referral.id,
        outbox_ids=[m.id for m in result.messages],
        sms_text=sms_text,
    )
    return result.messages


@dataclass(frozen=True)
class Retried:
    message: OutboxMessage
    outcome: str  # "requeued", "already queued", or "cancelled" (its referral moved on)


_NOT_RETRIED = {
    "sending": "It is being sent right now; wait a moment and look again.",
    "sent": "It was already sent; retrying would send it twice.",
    "delivered": "It was already delivered; retrying would send it twice.",
    "undelivered": (
        "The provider took it and the carrier could not deliver it; check the number and "
        "send a new message instead."
    ),
    "suppressed": (
        "It was suppressed ({reason}); record the patient's consent or contact, then send a "
        "new message."
    ),
    "cancelled": "It was cancelled ({reason}); it stays cancelled.",
}


def retry_message(message_id: int, actor: Actor, now: datetime | None = None) -> Retried:
    """Requeue a failed message, or one held by a spend cap or a retry backoff, for the
    dispatcher to send now: attempts start again from nought. Anything else is refused in
    words (a sent message would go twice; quiet hours protect the patient's night).

    Idempotent: a message already queued and due is left as it is, so a second click
    changes nothing. A message whose referral has left the stage visit it was written for
    is cancelled ("moved on") by the same rule the dispatcher applies, not sent."""
    if not actor.is_staff:
        raise NotFound(f"no message {message_id}")
    now = now or utcnow()
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    )
    if message is None:
        raise NotFound(f"no message {message_id}")
    if message.status == "queued" and message.next_attempt_at <= now:
        return Retried(message, "already queued")
    if message.status == "queued":
        window = parse_window(current_app.config["CRM"]["QUIET_HOURS"])
        if hold_reason(message, now, window) == QUIET_HOURS:
            raise Conflict(
                "It is held by quiet hours: it is night for the patient. It goes by itself "
                "in the patient's morning."
            )
    elif message.status != "failed":
        words = _NOT_RETRIED[message.status].format(reason=message.suppressed_reason or "")
        raise Conflict(f"Not retried: {words}", message_status=message.status)
    before = {"status": message.status, "attempts": message.attempts, "error": message.error_code}
    message.status, message.attempts, message.next_attempt_at = "queued", 0, now
    message.claimed_by = message.claimed_at = None
    message.error_code = message.error_message = None
    message.updated_at = now
    db.session.flush()
    outcome = "cancelled" if cancel_stale([message.id]) else "requeued"
    audit.record(
        actor,
        "message.retry",
        message.referral_id,
        outbox_id=message.id,
        outcome=outcome,
        **before,
    )
    return Retried(message, outcome)


def request_mri(referral: Referral, actor: Actor) -> list[OutboxMessage]:
    """A coordinator asks the patient for the MRI (`mri_requested_patient`), by SMS and email
    as consent allows; the SMS says only that a document is needed, the email says which.
    Only while the MRI is what the case waits for (enquiry, awaiting MRI, MRI review)."""
    if referral.stage not in MRI_WANTED_STAGES:
        raise Conflict(f"the MRI is not asked for in stage {referral.stage}", stage=referral.stage)
    result = enqueue(
        referral,
        kind="mri_requested_patient",
        audience="patient",
        channels=["sms", "email"],
        key=f"mri-request:{referral.id}:{uuid.uuid4().hex}",
        fallback=False,
        over_cap="reject",
        stands=True,
    )
    audit.record(
        actor, "message.mri_request", referral.id, outbox_ids=[m.id for m in result.messages]
    )
    return result.messages
