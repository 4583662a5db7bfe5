"""Writing messages to the outbox, in the caller's transaction, once per idempotency key.

Everything that decides whether and when a message may go is applied here, so a message
in the outbox is already addressed, rendered, consented (or `suppressed` with the
reason) and timed for the patient's waking hours. The dispatcher checks consent and
quiet hours again at send time, since both can change while a message waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import and_, exists, or_, select, update

from crm.agencies.models import Agency
from crm.auth.models import StaffUser
from crm.catalogue.information import pre_operative_instructions, pre_travel_checklist
from crm.core.cache import NEW_REFERRALS, transaction_notes
from crm.core.db import utcnow
from crm.core.errors import RateLimited
from crm.extensions import db
from crm.messaging.composing.overrides import catalogue_for
from crm.messaging.composing.spend import WINDOWS, count_sms
from crm.messaging.composing.whatsapp import template_values, whatsapp_deliverable
from crm.messaging.delivery.quiet_hours import next_allowed_send, parse_window
from crm.messaging.events import announce, change
from crm.messaging.models import CHANNELS, OutboxMessage
from crm.patients.links import patient_link, unsubscribe_url
from crm.patients.short_links import short_url
from crm.referrals.models import Referral

NO_WHATSAPP_TEMPLATE = "no_whatsapp_template"
OUTBOX_KEYS = "outbox_keys"  # transaction_notes: the cause keys this transaction wrote
PHONE_CHANNELS = ("sms", "whatsapp")  # both go to the patient's phone number


@dataclass(frozen=True)
class Recipient:
    audience: str
    channel: str
    address: str | None
    name: str
    language: str
    time_zone: str
    consented: bool
    # WhatsApp: the message can go, as free text in the 24-hour session or as an approved
    # template (see crm.messaging.session, composing.whatsapp_templates).
    deliverable: bool = True

    @property
    def blocked(self) -> str | None:
        """Why this recipient cannot be sent to on this channel, or None."""
        if not self.address:
            return "no_address"
        if not self.consented:
            return "no_consent"
        return None if self.deliverable else NO_WHATSAPP_TEMPLATE


def _settings() -> dict[str, Any]:
    return current_app.config["CRM"]


def _patient_recipients(
    referral: Referral, channels: list[str], kind: str, now: datetime
) -> list[Recipient]:
    patient = referral.patient
    addresses = {"sms": patient.phone, "whatsapp": patient.phone, "email": patient.email}
    return [
        Recipient(
            "patient",
            channel,
            addresses.get(channel),
            patient.given_name,
            patient.language,
            patient.time_zone,
            patient.may_contact(channel),
            channel != "whatsapp"
            or whatsapp_deliverable(kind, patient.language, patient.phone, now),
        )
        for channel in channels
    ]


def _staff_recipient(referral: Referral, audience: str) -> Recipient:
    if audience == "agency":
        agency = referral.agency
        address = agency.contact_email if agency else None
        name = agency.name if agency else ""
    elif referral.owner is not None:
        address, name = referral.owner.email, referral.owner.name
    else:
        address, name = _settings()["COORDINATOR_EMAIL"], "coordinators"
    return Recipient(audience, "email", address, name, "en", "UTC", True)


def recipients(
    referral: Referral,
    audience: str,
    channels: list[str],
    kind: str = "ad_hoc",
    now: datetime | None = None,
) -> list[Recipient]:
    if audience == "patient":
        return _patient_recipients(referral, channels, kind, now or utcnow())
    return [_staff_recipient(referral, audience)]


def choose(candidates: list[Recipient], fallback: bool) -> tuple[list[Recipient], str | None]:
    """The recipients to send to; with none, the reason the first one is suppressed."""
    usable = [r for r in candidates if r.blocked is None]
    if usable:
        return (usable[:1] if fallback else usable), None
    if not candidates:
        return [], None
    return [candidates[0]], candidates[0].blocked


def _fallback_channel(candidates: list[Recipient], chosen: Recipient, fallback: bool) -> str | None:
    """A WhatsApp message the session and templates may still stop at send time falls back
    to the next permitted channel if the rule allows it and that channel is SMS (its body
    is the same allow-listed text, so it needs nothing the dispatcher does not hold)."""
    if not fallback or chosen.channel != "whatsapp":
        return None
    later = candidates[candidates.index(chosen) + 1 :]
    following = next((r for r in later if r.blocked is None), None)
    return "sms" if following is not None and following.channel == "sms" else None


def _link_for(recipient: Recipient, referral_id: int, base: str, message_key: str | None) -> str:
    """The page a message is about: the patient's private link (in an SMS, its short code,
    one per message), the referral's console page for staff, its page in the agency
    panel for an agency."""
    if recipient.audience == "patient":
        if recipient.channel == "email":
            return patient_link(referral_id)
        return short_url(referral_id, message_key)
    if recipient.audience == "agency":
        return f"{base}/agency/referrals/{referral_id}"
    return f"{base}/console/referrals/{referral_id}"


def message_context(
    referral: Referral,
    recipient: Recipient,
    extra: dict[str, Any],
    message_key: str | None = None,
) -> dict:
    settings = _settings()
    base = settings["PUBLIC_BASE_URL"].rstrip("/")
    link = _link_for(recipient, referral.id, base, message_key)
    context = {
        "patient_first_name": referral.patient.given_name,
        "recipient_name": recipient.name,
        "hospital_name": settings["HOSPITAL_NAME"],
        "hospital_phone": settings["HOSPITAL_PHONE"],
        "link": link,
        "referral_ref": referral.reference,
        "procedure_name": referral.procedure.name,
        "agency_name": referral.agency.name if referral.agency else "direct enquiry",
        "days_waiting": max((utcnow() - referral.stage_entered_at).days, 0),
        "message": "",
        "subject": "",
        "screened_text": "",
        "since_treatment": "",
        "travel_date": None,
        "valid_until": None,
        "unsubscribe_url": (
            unsubscribe_url(referral.patient_id) if recipient.audience == "patient" else None
        ),
        **_before_you_travel(referral, recipient),
    }
    context.update(extra)
    return context


def _before_you_travel(referral: Referral, recipient: Recipient) -> dict[str, list[str]]:
    """The procedure's checklist and pre-operative instructions in the patient's language,
    for a patient's email only: an SMS never carries them (nor may its template name them)."""
    if recipient.audience != "patient" or recipient.channel != "email":
        return {"pre_travel_checklist": [], "pre_operative_instructions": []}
    return {
        "pre_travel_checklist": pre_travel_checklist(referral.procedure, recipient.language),
        "pre_operative_instructions": pre_operative_instructions(
            referral.procedure, recipient.language
        ),
    }


def _due_at(recipient: Recipient, now: datetime) -> datetime:
    if recipient.channel not in PHONE_CHANNELS or recipient.audience != "patient":
        return now
    window = parse_window(_settings()["QUIET_HOURS"])
    return next_allowed_send(now, recipient.time_zone, window)


def _existing(key: str) -> list[OutboxMessage]:
    """What an earlier call with this cause key wrote, on whichever channels it chose."""
    keys = [f"{key}:{channel}" for channel in CHANNELS]
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.idempotency_key.in_(keys))
            .order_by(OutboxMessage.id)
        )
    )


def _written_before(key: str, referral: Referral) -> list[OutboxMessage]:
    """`_existing`, without the query for a referral this transaction created: nothing
    but this transaction can have written about it, and it notes each key it writes."""
    fresh = referral.id in transaction_notes(NEW_REFERRALS)
    if fresh and key not in transaction_notes(OUTBOX_KEYS):
        return []
    return _existing(key)


@dataclass(frozen=True)
class Enqueued:
    messages: list[OutboxMessage]
    held_by_cap: str | None = None


def enqueue(
    referral: Referral,
    *,
    kind: str,
    audience: str,
    channels: list[str],
    key: str,
    fallback: bool = True,
    rule_code: str | None = None,
    extra: dict[str, Any] | None = None,
    over_cap: str = "hold",
    now: datetime | None = None,
    staff: StaffUser | None = None,
    stands: bool | None = None,
) -> Enqueued:
    """Write the messages for one cause. `key` names the cause: the same key twice is a no-op.

    `over_cap="reject"` raises 429 when an SMS would pass a spend cap (API callers);
    `"hold"` keeps it queued until the next window (nudges) and reports the cap.
    `staff` sends a hospital-staff message to that user (a specialist) by email.
    `stands`: the message still goes if the referral leaves its current stage before it
    is sent; by default a patient's message does not (it was written for this stage) and
    a message to staff or an agency does (it reports something that happened).
    """
    stands = audience != "patient" if stands is None else stands
    now = now or utcnow()
    if existing := _written_before(key, referral):
        return Enqueued(existing)  # the cause was handled, even if consent has changed since
    candidates = (
        [Recipient(audience, "email", staff.email, staff.name, "en", staff.time_zone, True)]
        if staff is not None
        else recipients(referral, audience, channels, kind, now)
    )
    chosen, suppressed_reason = choose(candidates, fallback)
    written, held = [], None
    for recipient in chosen:
        message_key = f"{key}:{recipient.channel}"
        message = _build(referral, recipient, kind, message_key, extra or {}, now, rule_code)
        message.stage, message.stage_entered_at = referral.stage, referral.stage_entered_at
        message.stands = stands
        if not suppressed_reason:
            message.fallback_channel = _fallback_channel(candidates, recipient, fallback)
        if suppressed_reason:
            message.status, message.suppressed_reason = "suppressed", suppressed_reason
        elif recipient.channel == "sms":
            held = _apply_spend_guard(message, referral, now, over_cap) or held
        db.session.add(message)
        written.append(message)
    db.session.flush()
    transaction_notes(OUTBOX_KEYS).add(key)
    announce([change(m, None, None, m.status, m.suppressed_reason) for m in written])
    return Enqueued(written, held)


def _apply_spend_guard(
    message: OutboxMessage, referral: Referral, now: datetime, over_cap: str
) -> str | None:
    cap = count_sms(referral.agency_id, now)
    if cap is None:
        return None
    if over_cap == "reject":
        raise RateLimited(f"The SMS spend cap ({cap}) is reached; try again later.", cap=cap)
    message.next_attempt_at = max(message.next_attempt_at, now + WINDOWS[cap])
    return cap


def _build(
    referral: Referral,
    recipient: Recipient,
    kind: str,
    key: str,
    extra: dict[str, Any],
    now: datetime,
    rule_code: str | None,
) -> OutboxMessage:
    context = message_context(referral, recipient, extra, message_key=key)
    rendered = catalogue_for(kind).render(kind, recipient.channel, recipient.language, context)
    return OutboxMessage(
        idempotency_key=key,
        referral_id=referral.id,
        agency_id=referral.agency_id,
        patient_id=referral.patient_id if recipient.audience == "patient" else None,
        audience=recipient.audience,
        channel=recipient.channel,
        kind=kind,
        language=rendered.language,
        to_address=recipient.address or "",
        time_zone=recipient.time_zone,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        segments=rendered.segments,
        status="queued",
        next_attempt_at=_due_at(recipient, now),
        rule_code=rule_code,
        created_at=now,
        template_values=template_values(context) if recipient.channel == "whatsapp" else None,
    )


def enqueue_staff_email(
    staff: StaffUser, *, kind: str, key: str, link: str, now: datetime | None = None
) -> OutboxMessage:
    """An email to a staff user about their own account (no referral): a password link.

    English, the staff language today; the template catalogue falls back to it anyway."""
    if existing := _existing(key):
        return existing[0]
    return _account_email(
        kind,
        key,
        now or utcnow(),
        {"recipient_name": staff.name, "link": link},
        audience="coordinator",
        to_address=staff.email,
        time_zone=staff.time_zone,
    )


def enqueue_agency_email(
    agency: Agency,
    *,
    kind: str,
    key: str,
    link: str,
    message: str,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """An email to an agency's contact address about its own setup (no referral): its
    webhook endpoint was switched off. None when the agency has no contact address."""
    if existing := _existing(key):
        return existing[0]
    if not agency.contact_email:
        return None
    return _account_email(
        kind,
        key,
        now or utcnow(),
        {"recipient_name": agency.name, "link": link, "message": message},
        audience="agency",
        agency_id=agency.id,
        to_address=agency.contact_email,
        time_zone="UTC",
    )


def _account_email(
    kind: str, key: str, now: datetime, context: dict[str, Any], **row: Any
) -> OutboxMessage:
    """Write, flush and announce an English email about no referral (an account, a setup):
    `context` over the hospital's details, `row` the recipient's columns. It goes now and
    stands."""
    settings = _settings()
    context = {
        "patient_first_name": "",
        "hospital_name": settings["HOSPITAL_NAME"],
        "hospital_phone": settings["HOSPITAL_PHONE"],
        "unsubscribe_url": None,
        **context,
    }
    rendered = catalogue_for(kind).render(kind, "email", "en", context)
    message = OutboxMessage(
        idempotency_key=f"{key}:email",
        channel="email",
        kind=kind,
        language=rendered.language,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        status="queued",
        next_attempt_at=now,
        created_at=now,
        stands=True,
        **row,
    )
    db.session.add(message)
    db.session.flush()
    announce([change(message, None, None, message.status)])
    return message


MOVED_ON = "moved on"


def moved_on():
    """A queued row written for a stage visit its referral has left (and that does not stand)."""
    referral = Referral.__table__
    return and_(
        OutboxMessage.status == "queued",
        OutboxMessage.stands.is_(False),
        OutboxMessage.stage.is_not(None),
        exists().where(
            referral.c.id == OutboxMessage.referral_id,
            or_(
                referral.c.stage != OutboxMessage.stage,
                referral.c.stage_entered_at != OutboxMessage.stage_entered_at,
            ),
        ),
    )


_CHANGED = (
    OutboxMessage.id,
    OutboxMessage.created_at,
    OutboxMessage.channel,
    OutboxMessage.agency_id,
    OutboxMessage.referral_id,
    OutboxMessage.segments,
)


def _cancel_where(reason: str, *where) -> int:
    """Cancel the queued rows `where` selects (every caller's condition includes status =
    'queued'), and announce each: queued -> cancelled."""
    rows = db.session.execute(
        update(OutboxMessage)
        .where(*where)
        .values(status="cancelled", suppressed_reason=reason, updated_at=utcnow())
        .returning(*_CHANGED)
        .execution_options(synchronize_session="fetch")
    ).all()
    announce([change(row, "queued", None, "cancelled", reason) for row in rows])
    return len(rows)


def _cancel(*where) -> int:
    return _cancel_where(MOVED_ON, *where)


def cancel_moved_on(referral: Referral) -> int:
    """The referral moved (any stage): what it was owed in the visit it left is moot."""
    return _cancel(OutboxMessage.referral_id == referral.id, moved_on())


def cancel_stale(ids: list[int]) -> int:
    """The dispatcher's check at send time, on the rows it is about to claim."""
    return _cancel(OutboxMessage.id.in_(ids), moved_on()) if ids else 0


def cancel_queued(keys: list[str], reason: str) -> int:
    """Cancel what is still queued for these idempotency keys (a superseded plan's notice)."""
    return _cancel_where(
        reason, OutboxMessage.idempotency_key.in_(keys), OutboxMessage.status == "queued"
    )
