"""The agency thread's verbs: write (either side), read. They flush, audit and publish;
they never commit and never add anything to what was written."""

from __future__ import annotations

from sqlalchemy import select, update

from crm.agency_messages.events import TASK_TITLE, AgencyMessagePosted
from crm.agency_messages.models import AgencyMessage
from crm.agency_messages.queries import incoming_direction
from crm.agency_messages.schemas import MAX_BODY
from crm.auth.guards import role_allows
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.edge import unstorable_reason
from crm.core.errors import Conflict, Forbidden, ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.referrals.events import AttentionNeeded
from crm.referrals.models import Referral

WRITERS = ("coordinator", "manager")  # staff who write to agencies (an admin always)


def may_write(actor: Actor) -> bool:
    return actor.is_agency or role_allows(actor, WRITERS)


def checked_body(body: str | None) -> str:
    """The message without its surrounding blanks, or a 422 naming `body`."""
    text = (body or "").strip()
    if not text:
        raise ValidationFailed({"body": "write a message"})
    if len(text) > MAX_BODY:
        raise ValidationFailed({"body": f"at most {MAX_BODY} characters ({len(text)} given)"})
    if reason := unstorable_reason(text):
        raise ValidationFailed({"body": reason})
    return text


def post_message(referral: Referral, body: str, actor: Actor) -> AgencyMessage:
    """`actor` writes in the referral's agency thread: the agency to the hospital, a
    coordinator or manager to the agency. The referral was found by `referral_for`
    (another agency's is a 404 before this runs)."""
    if not may_write(actor):
        raise Forbidden(f"Writing to agencies needs the role: {', '.join(WRITERS)}.")
    if referral.agency_id is None:
        raise Conflict("This referral came from no agency: there is no agency to write to.")
    text = checked_body(body)
    direction = "from_agency" if actor.is_agency else "to_agency"
    message = AgencyMessage(
        referral_id=referral.id,
        direction=direction,
        body=text,
        author_type=actor.kind,
        author_label=actor.label,
        created_at=utcnow(),
    )
    db.session.add(message)
    db.session.flush()
    audit.record(actor, "agency_message.write", referral.id, message_id=message.id)
    publish(AgencyMessagePosted(referral, message.id, direction, actor))
    if direction == "from_agency":
        _needs_a_coordinator(referral, message)
    return message


def _needs_a_coordinator(referral: Referral, message: AgencyMessage) -> None:
    """One task per stretch of unread agency messages: keyed by the first unread one, so a
    second message before anyone read the first adds no second task."""
    first_unread = db.session.scalar(
        select(AgencyMessage.id)
        .where(
            AgencyMessage.referral_id == referral.id,
            AgencyMessage.direction == "from_agency",
            AgencyMessage.read_at.is_(None),
        )
        .order_by(AgencyMessage.id)
        .limit(1)
    )
    publish(
        AttentionNeeded(
            referral,
            TASK_TITLE,
            "system",
            detail="Read and answer under 'Messages with the agency' on the referral's page.",
            dedupe_key=f"agency-message:{first_unread or message.id}",
        )
    )


def mark_read(referral: Referral, actor: Actor) -> int:
    """What the other side wrote to `actor`'s side is read now; how many were new.
    Only the side written to marks (a specialist's look changes nothing)."""
    if not may_write(actor):
        return 0
    direction = incoming_direction(actor)
    result = db.session.execute(
        update(AgencyMessage)
        .where(
            AgencyMessage.referral_id == referral.id,
            AgencyMessage.direction == direction,
            AgencyMessage.read_at.is_(None),
        )
        .values(read_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    count = result.rowcount or 0
    if count:
        audit.record(actor, "agency_message.read", referral.id, count=count)
    return count
