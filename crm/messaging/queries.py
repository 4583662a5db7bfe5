from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select, true

from crm.agencies.models import Agency
from crm.auth.models import StaffUser
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import NotFound
from crm.extensions import db
from crm.messaging.delivery.quiet_hours import QuietWindow, is_quiet, parse_window
from crm.messaging.delivery.sms import mask_phone
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.models import Patient
from crm.referrals.queries import MAX_ROW_ID, referral_for
from crm.referrals.references import hospital_reference


def _outbound(referral_id: int) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.referral_id == referral_id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    )


def messages_of(referral_id: int) -> dict[str, Any]:
    """Outbound and inbound messages of a referral its caller has already checked and
    audited (the API's timeline, the console's referral page)."""
    inbound = db.session.scalars(
        select(InboundMessage)
        .where(InboundMessage.referral_id == referral_id)
        .order_by(InboundMessage.received_at)
    )
    return {"outbound": _outbound(referral_id), "inbound": list(inbound)}


def timeline(actor: Actor, referral_id: int) -> dict[str, Any]:
    referral = referral_for(actor, referral_id)
    audit.record(actor, "messages.read", referral.id)
    return messages_of(referral.id)


def delivery_summary(actor: Actor, referral_id: int) -> dict[str, Any]:
    """Agencies see messages to the patient and to themselves, not the hospital's own."""
    referral = referral_for(actor, referral_id)
    messages = _outbound(referral.id)
    if actor.is_agency:
        messages = [m for m in messages if m.audience in {"patient", "agency"}]
    audit.record(actor, "deliveries.read", referral.id, messages=len(messages))
    return {"counts": dict(Counter(m.status for m in messages)), "messages": messages}


# --- the outbox, as the console's outbox page reads it ----------------------------------

OUTBOX_TABS = ("failed", "held", "suppressed", "cancelled", "queued", "all")
OUTBOX_PAGE_SIZE = 50
QUIET_HOURS, SPEND_CAP, BACKOFF = "quiet hours", "spend cap", "retrying after an error"


def _tab_filter(tab: str, now: datetime):
    status, due = OutboxMessage.status, OutboxMessage.next_attempt_at
    return {
        "failed": status.in_(("failed", "undelivered")),
        "held": and_(status == "queued", due > now),
        "suppressed": status == "suppressed",
        "cancelled": status == "cancelled",
        "queued": or_(and_(status == "queued", due <= now), status == "sending"),
        "all": true(),
    }[tab]


def hold_reason(message: OutboxMessage, now: datetime, window: QuietWindow) -> str | None:
    """Why a queued message waits past its time, or None when it is due (or not queued).

    Nothing stores the reason; the row tells it. The dispatcher's backoff leaves the
    error and a counted attempt; quiet hours hold only a patient's SMS or WhatsApp, only while it
    is night for the patient (the hold ends with the night); a spend cap holds an SMS by
    an hour or a day (see composing.outbox). At night a capped SMS reads as quiet hours:
    both hold it, and the night is the one nobody should override."""
    if message.status != "queued" or message.next_attempt_at <= now:
        return None
    if message.attempts > 0 and message.error_message:
        return BACKOFF
    patient_sms = message.channel in ("sms", "whatsapp") and message.audience == "patient"
    if patient_sms and is_quiet(now, message.time_zone, window):
        return QUIET_HOURS
    return SPEND_CAP if message.channel == "sms" else BACKOFF


def mask_address(channel: str, address: str) -> str:
    """`+90*******67`, `j***@patient.example`: enough to tell recipients apart, as the logs do."""
    if channel in ("sms", "whatsapp"):
        return mask_phone(address)
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else mask_phone(address)


@dataclass(frozen=True)
class OutboxRow:
    message: OutboxMessage
    recipient: str
    address: str  # masked
    reference: str | None
    hold: str | None

    @property
    def retryable(self) -> bool:
        return self.message.status == "failed" or self.hold in (SPEND_CAP, BACKOFF)


@dataclass(frozen=True)
class OutboxPage:
    tab: str
    rows: list[OutboxRow]
    counts: dict[str, int]
    next_before: int | None  # the `before` of the next (older) page, if there is one


def outbox_counts(now: datetime) -> dict[str, int]:
    """How many rows each tab holds, in one read."""
    columns = [func.count().filter(_tab_filter(tab, now)) for tab in OUTBOX_TABS[:-1]]
    values = db.session.execute(select(*columns).select_from(OutboxMessage)).one()
    return dict(zip(OUTBOX_TABS[:-1], values, strict=True))


_STAFF_RECIPIENT = and_(
    OutboxMessage.audience == "coordinator", StaffUser.email == OutboxMessage.to_address
)


def outbox_page(
    actor: Actor,
    tab: str,
    before: int | None = None,
    limit: int = OUTBOX_PAGE_SIZE,
    now: datetime | None = None,
) -> OutboxPage:
    """One page of the outbox for staff, newest first (keyset on the id, `before` the last
    id seen), with the recipient's name and a masked address, never a full number. Names
    patients, so it is audited."""
    if not actor.is_staff:
        raise NotFound("no outbox")
    now = now or utcnow()
    statement = (
        select(OutboxMessage, Patient.given_name, Patient.family_name, Agency.name, StaffUser.name)
        .outerjoin(Patient, Patient.id == OutboxMessage.patient_id)
        .outerjoin(Agency, Agency.id == OutboxMessage.agency_id)
        .outerjoin(StaffUser, _STAFF_RECIPIENT)
        .where(_tab_filter(tab, now))
        .order_by(OutboxMessage.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        statement = statement.where(OutboxMessage.id < before)
    found = db.session.execute(statement).all()
    window = parse_window(current_app.config["CRM"]["QUIET_HOURS"])
    rows = [
        OutboxRow(
            message,
            _recipient(message, given, family, agency, staff),
            mask_address(message.channel, message.to_address),
            hospital_reference(message.referral_id) if message.referral_id else None,
            hold_reason(message, now, window),
        )
        for message, given, family, agency, staff in found[:limit]
    ]
    referral_ids = sorted({r.message.referral_id for r in rows if r.message.referral_id})
    audit.record(actor, "outbox.read", None, tab=tab, referral_ids=referral_ids)
    more = len(found) > limit
    return OutboxPage(tab, rows, outbox_counts(now), rows[-1].message.id if more else None)


def _recipient(
    message: OutboxMessage,
    given: str | None,
    family: str | None,
    agency: str | None,
    staff: str | None,
) -> str:
    if message.audience == "patient":
        return f"{given} {family}" if given else "a deleted patient"
    if message.audience == "agency":
        return agency or "the agency"
    return staff or "coordinators"


def reply_of(referral_id: int, inbound_id: int) -> InboundMessage:
    """A patient's reply on this referral (a keyword is not one to answer); 404 otherwise."""
    inbound = db.session.get(InboundMessage, inbound_id) if 0 < inbound_id <= MAX_ROW_ID else None
    if inbound is None or inbound.referral_id != referral_id or inbound.classification != "reply":
        raise NotFound(f"no reply {inbound_id} on referral {referral_id}")
    return inbound
