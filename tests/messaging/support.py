"""Helpers shared by the database-backed messaging and nudge tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from crm.extensions import db
from crm.messaging.delivery.sms import ProviderMessage, ProviderResult
from crm.messaging.models import OutboxMessage
from crm.referrals.models import Referral
from tests.factories import Factory

PHONE = "+4915112345678"
NO_QUIET_HOURS = "00:00-00:00"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def new_referral(factory: Factory, **overrides: Any) -> Referral:
    """A referral from a fresh agency; submitting it writes the enquiry messages."""
    return factory.referral(factory.agency(), **overrides)


def quiet_outbox() -> None:
    """Cancel every queued row, so a test dispatches only the messages it writes itself."""
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.status == "queued").values(status="cancelled")
    )
    db.session.flush()


def outbox_for(referral_id: int, **filters: Any) -> list[OutboxMessage]:
    statement = select(OutboxMessage).where(OutboxMessage.referral_id == referral_id)
    for name, value in filters.items():
        statement = statement.where(getattr(OutboxMessage, name) == value)
    return list(db.session.scalars(statement.order_by(OutboxMessage.id)))


def outbox_count() -> int:
    return db.session.scalar(select(func.count(OutboxMessage.id))) or 0


class RecordingGateway:
    """An SMS gateway that only records what it was handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []

    def send(self, to: str, body: str, status_callback: str | None = None) -> ProviderResult:
        self.sent.append((to, body, status_callback))
        return ProviderResult(f"SMrec{len(self.sent)}", "queued")

    def messages_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        return []


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, email: Any) -> str:
        self.sent.append(email)
        return f"<rec{len(self.sent)}@test>"


def statuses(messages: Iterable[OutboxMessage]) -> list[str]:
    return [m.status for m in messages]
