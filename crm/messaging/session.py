"""WhatsApp's 24-hour session: free text only within a day of the person's last message.

The session belongs to the WhatsApp number, as WhatsApp keeps it: every inbound WhatsApp
message (a reply, STOP, HELP, anything) is an `inbound_messages` row with channel
`whatsapp`, so the session of a number is its newest row's `received_at` plus 24 hours.
It is read when a message is written (to choose the channel) and again when it is sent
(the session may close in between), in one query per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crm.extensions import db
from crm.messaging.models import InboundMessage

SESSION = timedelta(hours=24)
# Free text needs the session still open when Twilio hands the message to WhatsApp, a few
# moments after we call: a message due in the session's last minutes goes as a template.
MARGIN = timedelta(minutes=5)


def last_inbound(numbers: Iterable[str]) -> dict[str, datetime]:
    """The newest WhatsApp message from each number (E.164), for those that ever wrote."""
    wanted = sorted({n for n in numbers if n})
    if not wanted:
        return {}
    rows = db.session.execute(
        select(InboundMessage.from_address, func.max(InboundMessage.received_at))
        .where(InboundMessage.channel == "whatsapp", InboundMessage.from_address.in_(wanted))
        .group_by(InboundMessage.from_address)
    )
    return {number: at for number, at in rows}


def is_open(last: datetime | None, now: datetime) -> bool:
    """Whether free text sent now still falls inside the session opened at `last`."""
    return last is not None and now + MARGIN < last + SESSION


def session_open(number: str | None, now: datetime) -> bool:
    return bool(number) and is_open(last_inbound([number or ""]).get(number or ""), now)
