"""Reading the conversation: the thread of one referral, and what coordinators have not
read yet. The caller has checked that its reader may see the referral (the console's
referral page, the patient's own link).

The thread is a view over two tables: the page's messages and the answers
(`conversation_messages`), and the patient's SMS and WhatsApp replies, which stay where
the webhook wrote them (`inbound_messages`, classified `reply`), whatever their channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, literal, select, union_all

from crm.auth.models import StaffUser
from crm.conversation.models import ConversationMessage, InboundRead
from crm.extensions import db
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.models import Patient
from crm.referrals.models import Referral
from crm.referrals.references import hospital_reference

REPLY = "reply"  # the inbound classification a person reads (not STOP, START, HELP)
THREAD_LIMIT = 200  # the newest messages a thread shows


def inbound_channel():
    """The channel column of `inbound_messages` (`sms`, `whatsapp`); before the table had
    one, every inbound message was an SMS."""
    column = getattr(InboundMessage, "channel", None)
    return column if column is not None else literal("sms")


@dataclass(frozen=True)
class ThreadEntry:
    at: datetime
    direction: str  # "in": the patient wrote; "out": staff answered
    channel: str  # page, sms, whatsapp, email
    body: str
    author: str | None  # the staff member's name for an answer (None: the patient, or a
    # staff member no longer on file)
    unread: bool
    delivery: str | None = None  # the outbox status of the message announcing an answer
    sms_carries_text: bool = False

    @property
    def from_patient(self) -> bool:
        return self.direction == "in"


def thread(referral_id: int, limit: int = THREAD_LIMIT) -> list[ThreadEntry]:
    """The newest `limit` messages, oldest first (newest last), in two queries."""
    own = db.session.execute(
        select(ConversationMessage, StaffUser.name, OutboxMessage.status)
        .outerjoin(StaffUser, StaffUser.id == ConversationMessage.staff_id)
        .outerjoin(OutboxMessage, OutboxMessage.id == ConversationMessage.outbox_message_id)
        .where(ConversationMessage.referral_id == referral_id)
        .order_by(ConversationMessage.created_at.desc(), ConversationMessage.id.desc())
        .limit(limit)
    )
    entries = [
        ThreadEntry(
            row.created_at,
            row.direction,
            row.channel,
            row.body,
            name if row.direction == "out" else None,  # None: the patient, or staff removed
            row.direction == "in" and row.read_at is None,
            status,
            row.sms_carries_text,
        )
        for row, name, status in own
    ]
    read = exists().where(InboundRead.inbound_message_id == InboundMessage.id)
    replies = db.session.execute(
        select(InboundMessage.received_at, inbound_channel(), InboundMessage.body, read)
        .where(InboundMessage.referral_id == referral_id, InboundMessage.classification == REPLY)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    )
    entries += [
        ThreadEntry(at, "in", channel, body, None, not was_read)
        for at, channel, body, was_read in replies
    ]
    entries.sort(key=lambda e: e.at)
    return entries[-limit:]


def _unread_rows():
    """(referral_id, at) of every inbound message no coordinator has read."""
    pages = select(
        ConversationMessage.referral_id.label("referral_id"),
        ConversationMessage.created_at.label("at"),
    ).where(ConversationMessage.direction == "in", ConversationMessage.read_at.is_(None))
    replies = select(
        InboundMessage.referral_id.label("referral_id"), InboundMessage.received_at.label("at")
    ).where(
        InboundMessage.classification == REPLY,
        InboundMessage.referral_id.is_not(None),
        ~exists().where(InboundRead.inbound_message_id == InboundMessage.id),
    )
    return pages, replies


def unread_counts(referral_ids: list[int]) -> dict[int, int]:
    """Unread inbound messages per referral (absent: none), in one grouped query."""
    if not referral_ids:
        return {}
    pages, replies = _unread_rows()
    rows = union_all(
        pages.where(ConversationMessage.referral_id.in_(referral_ids)),
        replies.where(InboundMessage.referral_id.in_(referral_ids)),
    ).subquery()
    statement = select(rows.c.referral_id, func.count()).group_by(rows.c.referral_id)
    return {referral_id: count for referral_id, count in db.session.execute(statement)}


def unread_count(referral_id: int) -> int:
    return unread_counts([referral_id]).get(referral_id, 0)


@dataclass(frozen=True)
class Unread:
    referral_id: int
    reference: str
    patient_name: str
    count: int
    latest_at: datetime


@dataclass(frozen=True)
class UnreadSummary:
    total: int
    referrals: list[Unread]  # the `limit` with the newest unread message first


def unread_summary(limit: int = 20) -> UnreadSummary:
    """Every unread inbound message of the hospital: the total, and the referrals that
    wait longest-unread last, newest first (Today). Two queries."""
    pages, replies = _unread_rows()
    rows = union_all(pages, replies).subquery()
    total = db.session.scalar(select(func.count()).select_from(rows)) or 0
    if not total:
        return UnreadSummary(0, [])
    grouped = (
        select(rows.c.referral_id, func.count().label("n"), func.max(rows.c.at).label("latest"))
        .group_by(rows.c.referral_id)
        .subquery()
    )
    found = db.session.execute(
        select(grouped.c.referral_id, grouped.c.n, grouped.c.latest, Patient.given_name)
        .add_columns(Patient.family_name)
        .join(Referral, Referral.id == grouped.c.referral_id)
        .join(Patient, Patient.id == Referral.patient_id)
        .order_by(grouped.c.latest.desc())
        .limit(limit)
    )
    return UnreadSummary(
        total,
        [
            Unread(rid, hospital_reference(rid), f"{given} {family}", n, latest)
            for rid, n, latest, given, family in found
        ],
    )
