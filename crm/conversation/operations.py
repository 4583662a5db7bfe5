"""The conversation's verbs: the patient writes on the page, a staff member answers, a
coordinator reads. They flush, audit and publish; they never commit or send anything (an
answer reaches the patient as an outbox row)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, insert, literal, select, update

from crm.conversation.events import PatientAnswered, PatientWrote
from crm.conversation.models import ConversationMessage, InboundRead
from crm.conversation.queries import REPLY, inbound_channel
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.edge import unstorable_reason
from crm.core.errors import Forbidden, RateLimited, ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.messaging.composing.outbox import choose, enqueue, recipients
from crm.messaging.models import InboundMessage
from crm.messaging.operations import screen_sms_text
from crm.patients.models import CHANNELS as PATIENT_CHANNELS
from crm.referrals.models import Referral

MAX_BODY = 2000  # characters a message may have, either way
# The channel an answer is announced on: the one the patient last wrote from, else the
# first of these the patient has an address and consent for (the page shows it anyway).
CHANNEL_PREFERENCE = ("whatsapp", "sms", "email")
SPOKEN_CHANNELS = frozenset({"sms", "whatsapp"})


class MessageRefused(ValidationFailed):
    """A message that cannot be taken; `reason` is one of EMPTY, TOO_LONG, UNSTORABLE, so
    the patient's page can say why in the patient's language."""

    EMPTY, TOO_LONG, UNSTORABLE = "empty", "too_long", "unstorable"

    def __init__(self, field: str, reason: str, words: str) -> None:
        super().__init__({field: words})
        self.reason = reason


def checked_text(body: str | None, field: str) -> str:
    """The message without its surrounding blanks, or MessageRefused."""
    text = (body or "").strip()
    if not text:
        raise MessageRefused(field, MessageRefused.EMPTY, "write a message")
    if len(text) > MAX_BODY:
        raise MessageRefused(
            field, MessageRefused.TOO_LONG, f"at most {MAX_BODY} characters ({len(text)} given)"
        )
    if reason := unstorable_reason(text):
        raise MessageRefused(field, MessageRefused.UNSTORABLE, reason)
    return text


def _lock(referral: Referral) -> None:
    db.session.execute(select(Referral.id).where(Referral.id == referral.id).with_for_update())


def _written_in_last_hour(referral: Referral, now: datetime) -> int:
    return db.session.scalar(
        select(func.count(ConversationMessage.id)).where(
            ConversationMessage.referral_id == referral.id,
            ConversationMessage.direction == "in",
            ConversationMessage.created_at > now - timedelta(hours=1),
        )
    )


def post_patient_message(
    referral: Referral, body: str | None, actor: Actor, now: datetime | None = None
) -> ConversationMessage:
    """The patient writes to the coordinators on the private page. At most
    `CRM_CONVERSATION_MESSAGES_PER_HOUR` an hour per referral (every link of it), counted
    under the referral's row lock so two tabs cannot both slip past the limit."""
    if actor.kind != "patient" or actor.id != referral.patient_id:
        raise Forbidden("only the patient writes here")
    now = now or utcnow()
    text = checked_text(body, "message")
    _lock(referral)
    limit = current_app.config["CRM"]["CONVERSATION_MESSAGES_PER_HOUR"]
    if _written_in_last_hour(referral, now) >= limit:
        raise RateLimited(f"at most {limit} messages an hour", limit=limit)
    message = ConversationMessage(
        referral_id=referral.id, direction="in", channel="page", body=text, created_at=now
    )
    db.session.add(message)
    db.session.flush()
    audit.record(actor, "conversation.write", referral.id, message_id=message.id, length=len(text))
    publish(PatientWrote(referral, message.id))
    return message


def channel_order(referral: Referral) -> list[str]:
    """The channels to announce an answer on, preferred first: the one the patient last
    replied from, then CHANNEL_PREFERENCE (those the patient model knows)."""
    order = [c for c in CHANNEL_PREFERENCE if c in PATIENT_CHANNELS]
    last = db.session.scalar(
        select(inbound_channel())
        .where(InboundMessage.referral_id == referral.id, InboundMessage.classification == REPLY)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(1)
    )
    if last in order:
        order.remove(last)
        order.insert(0, last)
    return order


def preferred_channel(referral: Referral) -> str | None:
    """The first channel of `channel_order` the patient can be reached on, if any."""
    chosen, suppressed = choose(recipients(referral, "patient", channel_order(referral)), True)
    return chosen[0].channel if chosen and suppressed is None else None


def answer_patient(
    referral: Referral,
    body: str | None,
    actor: Actor,
    *,
    sms_text: bool = False,
    now: datetime | None = None,
) -> ConversationMessage:
    """A staff member answers in the thread. The answer is on the patient's page at once;
    the patient is told on their preferred permitted channel, by an outbox row: an SMS or
    WhatsApp message says only that there is an answer, unless `sms_text` asks for the text
    itself, which must pass the health-detail screen; an email carries the text. Answering
    reads the thread (nothing inbound stays unread) and closes the replies' tasks (through
    `PatientAnswered`)."""
    if not actor.is_staff:
        raise Forbidden("only staff answer the patient")
    now = now or utcnow()
    text = checked_text(body, "message")
    if sms_text:
        screen_sms_text(text)
    channel = preferred_channel(referral)
    carries_text = sms_text and channel in SPOKEN_CHANNELS
    message = ConversationMessage(
        referral_id=referral.id,
        direction="out",
        channel="page",
        staff_id=actor.id,
        body=text,
        sms_carries_text=carries_text,
        created_at=now,
    )
    db.session.add(message)
    db.session.flush()
    written = enqueue(
        referral,
        kind="free_text" if carries_text else "conversation_answer",
        audience="patient",
        channels=channel_order(referral),
        key=f"conversation:{message.id}",
        fallback=True,
        extra={"message": text, "screened_text": text if carries_text else ""},
        over_cap="reject",
        now=now,
        stands=True,  # written by a person on purpose: it goes even if the referral moves
    ).messages
    if written:
        message.outbox_message_id = written[0].id
        if written[0].status != "suppressed":
            message.channel = written[0].channel
    mark_read(referral, actor, now=now, audited=False)
    audit.record(
        actor,
        "conversation.answer",
        referral.id,
        message_id=message.id,
        outbox_ids=[m.id for m in written],
        sms_carries_text=carries_text,
    )
    publish(PatientAnswered(referral, actor, message.id))
    return message


def mark_read(
    referral: Referral, actor: Actor, *, now: datetime | None = None, audited: bool = True
) -> int:
    """A coordinator read the thread: every inbound message of it (page, SMS, WhatsApp)
    is read now, by them. Returns how many were unread; audited when there were any."""
    if not actor.is_staff:
        raise Forbidden("only staff read the patient's messages")
    now = now or utcnow()
    pages = db.session.execute(
        update(ConversationMessage)
        .where(
            ConversationMessage.referral_id == referral.id,
            ConversationMessage.direction == "in",
            ConversationMessage.read_at.is_(None),
        )
        .values(read_at=now, read_by_id=actor.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    unread_replies = select(InboundMessage.id, literal(now), literal(actor.id)).where(
        InboundMessage.referral_id == referral.id,
        InboundMessage.classification == REPLY,
        ~exists().where(InboundRead.inbound_message_id == InboundMessage.id),
    )  # a WHERE of its own: SQLite reads `SELECT ... ON CONFLICT` only after one
    replies = db.session.execute(  # RETURNING: rowcount of INSERT ... SELECT may be -1
        _insert_ignoring_duplicates()
        .from_select(["inbound_message_id", "read_at", "read_by_id"], unread_replies)
        .returning(InboundRead.inbound_message_id)
    ).all()
    count = max(pages or 0, 0) + len(replies)
    if count and audited:
        audit.record(actor, "conversation.marked_read", referral.id, marked=count)
    return count


def _insert_ignoring_duplicates():
    """Two coordinators reading at once both mark the same reply: the second is a no-op."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(InboundRead).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(InboundRead).on_conflict_do_nothing()
    return insert(InboundRead)
