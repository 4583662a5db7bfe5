"""Reading the audit trail: who saw or changed which patient's case, when, from where.

A referral is found in the events about it and in the lists that showed it (a list's
event names the referrals it showed in `detail.referral_ids`). Newest first, by a keyset
cursor on (occurred_at, id). Reading the trail is itself audited.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, literal_column, or_, select, text, tuple_
from sqlalchemy.sql.elements import ColumnElement

from crm.core import audit
from crm.core.actors import Actor
from crm.core.audit import AuditEvent
from crm.core.errors import ValidationFailed
from crm.extensions import db

LIST_ACTIONS = ("referral.list", "task.list")


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    next_cursor: str | None


def encode_cursor(event: AuditEvent) -> str:
    raw = json.dumps([event.occurred_at.isoformat(), event.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        stamp, event_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None or not isinstance(event_id, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed({"query.cursor": "not a cursor this API returned"}) from exc
    return moment, event_id


def _listed(referral_id: int) -> ColumnElement[bool]:
    """A list event that showed this referral."""
    if db.engine.dialect.name == "postgresql":
        shown: ColumnElement[bool] = text(
            "(audit_events.detail::jsonb -> 'referral_ids') @> jsonb_build_array(:shown_id)"
        ).bindparams(shown_id=referral_id)
    else:
        shown = exists(
            select(literal_column("1"))
            .select_from(func.json_each(AuditEvent.detail, "$.referral_ids"))
            .where(literal_column("value") == referral_id)
        )
    return AuditEvent.action.in_(LIST_ACTIONS) & shown


def _filtered(args: dict[str, Any]):
    statement = select(AuditEvent)
    if args.get("referral_id") is not None:
        referral_id = args["referral_id"]
        statement = statement.where(
            or_(AuditEvent.referral_id == referral_id, _listed(referral_id))
        )
    for name, column in (
        ("actor_type", AuditEvent.actor_type),
        ("actor_id", AuditEvent.actor_id),
        ("remote_addr", AuditEvent.remote_addr),
        ("request_id", AuditEvent.request_id),
    ):
        if args.get(name) is not None:
            statement = statement.where(column == args[name])
    if args.get("action"):
        action = args["action"]
        statement = statement.where(
            AuditEvent.action.startswith(action[:-1], autoescape=True)
            if action.endswith(".")
            else AuditEvent.action == action
        )
    if args.get("since"):
        statement = statement.where(AuditEvent.occurred_at >= args["since"])
    if args.get("until"):
        statement = statement.where(AuditEvent.occurred_at < args["until"])
    return statement


def search(actor: Actor, args: dict[str, Any]) -> AuditPage:
    statement = _filtered(args)
    if args.get("cursor"):
        statement = statement.where(
            tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(*decode_cursor(args["cursor"]))
        )
    limit = args.get("limit", 50)
    rows = list(
        db.session.scalars(
            statement.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
        )
    )
    items, more = rows[:limit], len(rows) > limit
    asked = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in args.items()}
    audit.record(actor, "audit.read", args.get("referral_id"), filters=asked, shown=len(items))
    return AuditPage(items, encode_cursor(items[-1]) if more and items else None)
