"""Reads, always scoped by who is asking: an agency sees only its own referrals."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import joinedload

from crm.catalogue.models import Procedure
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import NotFound, ValidationFailed
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals import search
from crm.referrals.models import Referral
from crm.referrals.references import MAX_ROW_ID
from crm.referrals.stages import Stage, StageVisit, allowed_targets, time_in_stages


def _visible_to(actor: Actor) -> Select[tuple[Referral]]:
    statement = select(Referral)
    if actor.is_agency:
        statement = statement.where(Referral.agency_id == actor.agency_id)
    elif not actor.is_staff:
        statement = statement.where(False)
    return statement


def referral_for(actor: Actor, referral_id: int, *, for_update: bool = False) -> Referral:
    """The referral if `actor` may see it; 404 otherwise, the same as for a missing id."""
    if not 0 < referral_id <= MAX_ROW_ID:
        raise NotFound(f"no referral {referral_id}")
    statement = _visible_to(actor).where(Referral.id == referral_id)
    if for_update:
        statement = statement.with_for_update(of=Referral)
    referral = db.session.scalar(statement)
    if referral is None:
        raise NotFound(f"no referral {referral_id}")
    return referral


@dataclass
class ReferralDetail:
    """A referral with what its detail view adds; attribute reads fall through to it."""

    referral: Referral
    time_in_stages: dict[str, int]
    allowed_transitions: list[str]
    notes: list[Any] | None
    history: list[Any]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.referral, name)


def referral_detail(actor: Actor, referral_id: int) -> ReferralDetail:
    referral = referral_for(actor, referral_id)
    audit.record(actor, "referral.read", referral.id)
    return detail_of(referral, actor)


def detail_of(referral: Referral, actor: Actor) -> ReferralDetail:
    """The detail view of a referral already loaded (and already audited) by the caller."""
    visits = [StageVisit(Stage(t.to_stage), t.occurred_at) for t in referral.history]
    held = Stage(referral.held_from_stage) if referral.held_from_stage else None
    return ReferralDetail(
        referral=referral,
        time_in_stages={
            str(stage): int(spent.total_seconds())
            for stage, spent in time_in_stages(visits, utcnow()).items()
        },
        allowed_transitions=sorted(allowed_targets(Stage(referral.stage), held)),
        notes=list(referral.notes) if actor.is_staff else None,
        history=referral.history if actor.is_staff else _without_notes(referral.history),
    )


def _without_notes(history: list[Any]) -> list[dict[str, Any]]:
    """Agencies see who moved a referral, when and why, but not staff's free-text notes."""
    fields = ("from_stage", "to_stage", "actor_type", "actor_label", "reason", "occurred_at")
    return [{**{name: getattr(t, name) for name in fields}, "note": None} for t in history]


@dataclass(frozen=True)
class Page:
    items: Sequence[Referral]
    next_cursor: str | None


def encode_cursor(updated_at: datetime, referral_id: int) -> str:
    raw = json.dumps([updated_at.isoformat(), referral_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, referral_id = json.loads(base64.urlsafe_b64decode(padded))
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None or not isinstance(referral_id, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed({"query.cursor": "not a cursor this API returned"}) from exc
    return moment, referral_id


def _apply_filters(statement: Select[tuple[Referral]], args: dict[str, Any], actor: Actor):
    if args.get("stage"):
        statement = statement.where(Referral.stage.in_(args["stage"]))
    if args.get("updated_since"):
        statement = statement.where(Referral.updated_at >= args["updated_since"])
    if args.get("q"):  # within what the actor sees: an agency searches its own referrals
        statement = statement.where(search.matches(args["q"]))
    if not actor.is_staff:
        return statement
    if args.get("agency_id") is not None:
        statement = statement.where(Referral.agency_id == args["agency_id"])
    if args.get("direct"):
        statement = statement.where(Referral.agency_id.is_(None))
    if args.get("owner_id") is not None:
        statement = statement.where(Referral.owner_id == args["owner_id"])
    if args.get("unassigned"):
        statement = statement.where(Referral.owner_id.is_(None))
    if args.get("procedure"):
        statement = statement.where(
            Referral.procedure_id.in_(
                select(Procedure.id).where(Procedure.code == args["procedure"])
            )
        )
    return statement


def list_referrals(actor: Actor, args: dict[str, Any]) -> Page:
    """Most recently changed first, by a keyset cursor on (updated_at, id)."""
    limit = args["limit"]
    statement = _apply_filters(_visible_to(actor), args, actor)
    if args.get("cursor"):
        statement = statement.where(
            tuple_(Referral.updated_at, Referral.id) < tuple_(*decode_cursor(args["cursor"]))
        )
    statement = (
        statement.options(joinedload(Referral.agency), joinedload(Referral.owner))
        .options(joinedload(Referral.patient).selectinload(Patient.consents))
        .order_by(Referral.updated_at.desc(), Referral.id.desc())
        .limit(limit + 1)
    )
    rows = db.session.scalars(statement).unique().all()
    items, more = rows[:limit], len(rows) > limit
    if items:
        audit.record(actor, "referral.list", None, referral_ids=[r.id for r in items])
    last = items[-1] if items else None
    return Page(items, encode_cursor(last.updated_at, last.id) if more and last else None)


def open_referrals_by_agency() -> dict[int, int]:
    """How many referrals each agency has open (neither completed nor lost; on hold counts),
    by agency id: one grouped query, for the staff's overview of agencies."""
    from sqlalchemy import func

    from crm.referrals.stages import TERMINAL

    return dict(
        db.session.execute(
            select(Referral.agency_id, func.count())
            .where(
                Referral.agency_id.is_not(None),
                Referral.stage.not_in([str(stage) for stage in TERMINAL]),
            )
            .group_by(Referral.agency_id)
        ).all()
    )
