"""What a dispatcher reads and writes once per batch: the claimed rows' columns (with each
row's patient consent for its channel, read by the claim itself), and the outcomes of the
messages the providers accepted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    any_,
    bindparam,
    case,
    column,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from crm.extensions import db
from crm.messaging.composing.outbox import moved_on
from crm.messaging.events import StatusChange, change
from crm.messaging.models import OutboxMessage
from crm.patients.models import Patient, PatientConsent

PHONE_CHANNELS = ("sms", "whatsapp")


_OUTBOX = OutboxMessage.__table__
# Spelled out rather than IN (...): an expanding IN cannot go through executemany.
_EARLY_PROVIDER_STATUS = or_(
    *(_OUTBOX.c.provider_status == status for status in ("accepted", "queued", "sending"))
)


def _sent(provider, at, content_sid, content_variables) -> dict:
    """What recording a sent message writes, from the values of its row in the batch."""
    return {
        "status": case((_OUTBOX.c.status == "sending", "sent"), else_=_OUTBOX.c.status),
        "provider_id": func.coalesce(_OUTBOX.c.provider_id, provider),
        "sent_at": func.coalesce(_OUTBOX.c.sent_at, at),
        "provider_status": case(
            (or_(_OUTBOX.c.provider_status.is_(None), _EARLY_PROVIDER_STATUS), "sent"),
            else_=_OUTBOX.c.provider_status,
        ),
        "updated_at": at,
        # WhatsApp: the template it went as (none: free text in the session).
        "content_sid": content_sid,
        "content_variables": content_variables,
    }


# SQLite: one UPDATE per message, in one executemany.
_RECORD_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.claimed_by == bindparam("b_token"))
    .values(
        _sent(
            bindparam("b_provider"),
            bindparam("b_now"),
            bindparam("b_content_sid"),
            bindparam("b_content_variables"),
        )
    )
)

# PostgreSQL: one UPDATE for the whole batch, its rows passed as one array per column and
# joined with unnest(): one constant statement (prepared once) whatever the batch's size.
_ROWS = (
    func.unnest(
        bindparam("ids", type_=ARRAY(Integer)),
        bindparam("tokens", type_=ARRAY(String)),
        bindparam("providers", type_=ARRAY(String)),
        bindparam("ats", type_=ARRAY(DateTime(timezone=True))),
        bindparam("content_sids", type_=ARRAY(String)),
        bindparam("content_variables", type_=ARRAY(Text)),
    )
    .table_valued(
        column("id", Integer),
        column("token", String),
        column("provider", String),
        column("at", DateTime(timezone=True)),
        column("content_sid", String),
        column("content_variables", Text),
    )
    .render_derived(name="v", with_types=False)
)
_RECORD_SENT_ARRAYS = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == _ROWS.c.id, _OUTBOX.c.claimed_by == _ROWS.c.token)
    .values(_sent(_ROWS.c.provider, _ROWS.c.at, _ROWS.c.content_sid, _ROWS.c.content_variables))
)


def record_sent(sent: list[dict], claimed: dict[int, Claimed], lock: bool) -> list[StatusChange]:
    """Every message of the batch the provider accepted, in one write (`lock`: PostgreSQL,
    one UPDATE over arrays; else an executemany); returns the rows it moved from `sending`
    to `sent`.

    A status callback (?outbox=) may have got there first: status and provider status only
    ever move forward. So which rows this write moves is read first, under the row locks
    (`lock`: PostgreSQL) the callback also takes, and the callback announces its own moves."""
    if not sent:
        return []
    connection = db.session.connection()
    ids = [row["b_id"] for row in sent]
    moving = [
        i
        for i, token in connection.execute(_still_sending(lock), {"ids": ids})
        if token == claimed[i].token
    ]
    if lock:
        connection.execute(
            _RECORD_SENT_ARRAYS,
            {
                "ids": ids,
                "tokens": [row["b_token"] for row in sent],
                "providers": [row["b_provider"] for row in sent],
                "ats": [row["b_now"] for row in sent],
                "content_sids": [row["b_content_sid"] for row in sent],
                "content_variables": [row["b_content_variables"] for row in sent],
            },
        )
    else:
        connection.execute(_RECORD_SENT, sent)
    return [change(claimed[i], "sending", None, "sent") for i in sorted(moving)]


def _ids_in(postgres: bool):
    """`id` among the batch's ids: `= ANY(array)` on PostgreSQL, one SQL text (prepared once
    by the server) whatever the number of ids; an expanding IN elsewhere."""
    if postgres:
        return _OUTBOX.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))
    return _OUTBOX.c.id.in_(bindparam("ids", expanding=True))


@cache
def _still_sending(postgres: bool):
    """Which of the batch's rows are still `sending` (and whose claim), under the row locks
    on PostgreSQL. Built once: a statement made per batch costs its construction and its
    cache key every time (about as much CPU as its round trip)."""
    still = select(_OUTBOX.c.id, _OUTBOX.c.claimed_by).where(
        _ids_in(postgres), _OUTBOX.c.status == "sending"
    )
    return still.with_for_update() if postgres else still


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
    patient_exists: bool  # the row's patient, read by the claim
    consent_granted: bool | None  # that patient's consent for this row's channel (None: none)


# Each claimed row's consent, read by the claim's first statement (the SELECT that picks
# and locks the batch): no read of its own per batch. Correlated to the row (one consent
# per patient and channel). In the SELECT rather than the UPDATE's RETURNING, where SQLite
# would be given the columns unqualified (`channel = channel`).
PATIENT_EXISTS = (
    exists().where(Patient.id == OutboxMessage.patient_id).correlate(OutboxMessage)
).label("patient_exists")
CONSENT_GRANTED = (
    select(PatientConsent.granted)
    .where(
        PatientConsent.patient_id == OutboxMessage.patient_id,
        PatientConsent.channel == OutboxMessage.channel,
    )
    .correlate(OutboxMessage)
    .scalar_subquery()
    .label("consent_granted")
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
)


@cache
def claim_statements(postgres: bool):
    """The claim's two statements, built once with their values as parameters (`now`, `size`;
    then `ids`, `token`, `now`): the due rows of the batch, in the order of ix_outbox_claim
    (the scan stops at the batch, nothing is sorted), locked and skipped by other claims on
    PostgreSQL, each with its consent and cancel_stale's moved-on test; and the UPDATE that
    takes them (`sending`, this claim's token, one more attempt), returning what sending
    needs. Two statements on purpose: inside `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR
    UPDATE SKIP LOCKED)` PostgreSQL may evaluate the subquery more than once."""
    now = bindparam("now", type_=_OUTBOX.c.claimed_at.type)
    due = (
        select(_OUTBOX.c.id, PATIENT_EXISTS, CONSENT_GRANTED, moved_on().label("moved_on"))
        .where(_OUTBOX.c.status == "queued", _OUTBOX.c.next_attempt_at <= now)
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
        .limit(bindparam("size", type_=Integer))
    )
    if postgres:
        due = due.with_for_update(skip_locked=True, of=_OUTBOX)
    take = (
        update(_OUTBOX)
        .where(_ids_in(postgres), _OUTBOX.c.status == "queued")
        .values(
            status="sending",
            claimed_by=bindparam("token", type_=_OUTBOX.c.claimed_by.type),
            claimed_at=now,
            attempts=_OUTBOX.c.attempts + 1,
        )
        .returning(*CLAIMED_COLUMNS)
    )
    return due, take
