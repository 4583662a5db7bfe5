"""What a dispatcher reads and writes once per batch: the claimed rows' columns (with each
row's patient consent for its channel, read by the claim itself), and the outcomes of the
messages the providers accepted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, case, exists, func, or_, select, update

from crm.extensions import db
from crm.messaging.events import StatusChange, change
from crm.messaging.models import OutboxMessage
from crm.patients.models import Patient, PatientConsent

PHONE_CHANNELS = ("sms", "whatsapp")


_OUTBOX = OutboxMessage.__table__
# Spelled out rather than IN (...): an expanding IN cannot go through executemany.
_EARLY_PROVIDER_STATUS = or_(
    *(_OUTBOX.c.provider_status == status for status in ("accepted", "queued", "sending"))
)
_RECORD_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.claimed_by == bindparam("b_token"))
    .values(
        status=case((_OUTBOX.c.status == "sending", "sent"), else_=_OUTBOX.c.status),
        provider_id=func.coalesce(_OUTBOX.c.provider_id, bindparam("b_provider")),
        sent_at=func.coalesce(_OUTBOX.c.sent_at, bindparam("b_now")),
        provider_status=case(
            (or_(_OUTBOX.c.provider_status.is_(None), _EARLY_PROVIDER_STATUS), "sent"),
            else_=_OUTBOX.c.provider_status,
        ),
        updated_at=bindparam("b_now"),
        # WhatsApp: the template it went as (none: free text in the session).
        content_sid=bindparam("b_content_sid"),
        content_variables=bindparam("b_content_variables"),
    )
)


def record_sent(sent: list[dict], claimed: dict[int, Claimed], lock: bool) -> list[StatusChange]:
    """Every message of the batch the provider accepted, in one executemany; returns the
    rows it moved from `sending` to `sent`.

    A status callback (?outbox=) may have got there first: status and provider status only
    ever move forward. So which rows this write moves is read first, under the row locks
    (`lock`: PostgreSQL) the callback also takes, and the callback announces its own moves."""
    if not sent:
        return []
    ids = [row["b_id"] for row in sent]
    still = select(OutboxMessage.id, OutboxMessage.claimed_by).where(
        OutboxMessage.id.in_(ids), OutboxMessage.status == "sending"
    )
    if lock:
        still = still.with_for_update()
    moving = [i for i, token in db.session.execute(still) if token == claimed[i].token]
    db.session.connection().execute(_RECORD_SENT, sent)
    return [change(claimed[i], "sending", None, "sent") for i in sorted(moving)]


def withheld(message: Claimed) -> str | None:
    """Consent is checked again at send time (read by the claim, the batch's first step): a
    STOP may have arrived since the message was written."""
    if message.audience != "patient" or message.patient_id is None:
        return None
    if not message.patient_exists:
        return "patient_deleted"
    return None if message.consent_granted else "consent_withdrawn"


@dataclass(frozen=True)
class Claimed:
    """What sending one message needs, read once when the batch is claimed."""

    id: int
    token: str
    channel: str
    audience: str
    patient_id: int | None
    to_address: str
    time_zone: str
    subject: str | None
    body_text: str
    body_html: str | None
    attempts: int
    kind: str
    language: str
    template_values: dict[str, str] | None
    fallback_channel: str | None
    created_at: datetime
    agency_id: int | None
    referral_id: int | None
    segments: int | None
    patient_exists: bool  # the row's patient, read in the claim's own statement
    consent_granted: bool | None  # that patient's consent for this row's channel (None: none)


# The consent of each claimed row, read by the claim's own UPDATE ... RETURNING: no second
# read per batch. Correlated to the row being claimed (one consent per patient and channel).
_PATIENT_EXISTS = exists().where(Patient.id == OutboxMessage.patient_id).correlate(OutboxMessage)
_CONSENT = (
    select(PatientConsent.granted)
    .where(
        PatientConsent.patient_id == OutboxMessage.patient_id,
        PatientConsent.channel == OutboxMessage.channel,
    )
    .correlate(OutboxMessage)
    .scalar_subquery()
)

CLAIMED_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.claimed_by,
    OutboxMessage.channel,
    OutboxMessage.audience,
    OutboxMessage.patient_id,
    OutboxMessage.to_address,
    OutboxMessage.time_zone,
    OutboxMessage.subject,
    OutboxMessage.body_text,
    OutboxMessage.body_html,
    OutboxMessage.attempts,
    OutboxMessage.kind,
    OutboxMessage.language,
    OutboxMessage.template_values,
    OutboxMessage.fallback_channel,
    OutboxMessage.created_at,
    OutboxMessage.agency_id,
    OutboxMessage.referral_id,
    OutboxMessage.segments,
    _PATIENT_EXISTS.label("patient_exists"),
    _CONSENT.label("consent_granted"),
)
