"""The pipeline board: how many referrals each stage holds, and the oldest of each.

Two queries whatever the size of the pipeline: one grouped count per stage, and one for
the cards (the oldest `per_column` of every column, each column's pick a small ordered
LIMIT, joined with the patient, procedure, agency and owner). The markers that come from
other features (replies, alerts) are read by those features for the card ids shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.orm import joinedload

from crm.agencies.models import Agency
from crm.auth.models import StaffUser
from crm.catalogue.models import Procedure
from crm.core import audit
from crm.core.actors import Actor
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.models import Referral
from crm.referrals.queries import _visible_to
from crm.referrals.sla import level_for
from crm.referrals.stages import ALL_STAGES, PIPELINE, Stage

# A column each; `completed` and `lost` are counted, not laid out.
COLUMNS: tuple[Stage, ...] = (*PIPELINE[:-1], Stage.ON_HOLD)
COUNTED: tuple[Stage, ...] = (Stage.COMPLETED, Stage.LOST)
PER_COLUMN = 50
OWNER_ROLES = ("coordinator", "manager", "admin")  # who may own a referral (assign_owner)


@dataclass(frozen=True)
class BoardFilters:
    """Which referrals the board shows: by agency (or direct enquiries), owner (or nobody),
    procedure code and the patient's language."""

    agency_id: int | None = None
    direct: bool = False
    owner_id: int | None = None
    unassigned: bool = False
    procedure: str | None = None
    language: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


@dataclass
class Card:
    """One referral on the board; attribute reads fall through to the referral."""

    referral: Referral
    days_in_stage: int
    late_by: timedelta | None  # past its stage's service level, by how much

    def __getattr__(self, name: str) -> Any:
        return getattr(self.referral, name)


@dataclass
class Column:
    stage: Stage
    count: int
    cards: list[Card] = field(default_factory=list)

    @property
    def more(self) -> int:
        return max(self.count - len(self.cards), 0)


@dataclass
class Board:
    columns: list[Column]
    counts: dict[str, int]  # every stage, the counted-only ones too

    @property
    def referral_ids(self) -> list[int]:
        return [card.referral.id for column in self.columns for card in column.cards]


def _filtered(statement: Select[Any], filters: BoardFilters) -> Select[Any]:
    if filters.agency_id is not None:
        statement = statement.where(Referral.agency_id == filters.agency_id)
    if filters.direct:
        statement = statement.where(Referral.agency_id.is_(None))
    if filters.owner_id is not None:
        statement = statement.where(Referral.owner_id == filters.owner_id)
    if filters.unassigned:
        statement = statement.where(Referral.owner_id.is_(None))
    if filters.procedure:
        statement = statement.where(
            Referral.procedure_id.in_(
                select(Procedure.id).where(Procedure.code == filters.procedure)
            )
        )
    if filters.language:
        statement = statement.where(
            Referral.patient_id.in_(select(Patient.id).where(Patient.language == filters.language))
        )
    return statement


def stage_counts(actor: Actor, filters: BoardFilters) -> dict[str, int]:
    """Referrals in each stage (every stage named, zero included): one grouped count."""
    statement = _filtered(
        _visible_to(actor).with_only_columns(Referral.stage, func.count()), filters
    ).group_by(Referral.stage)
    found: dict[str, int] = {stage: n for stage, n in db.session.execute(statement)}
    return {str(stage): found.get(str(stage), 0) for stage in ALL_STAGES}


def oldest_in_columns(
    actor: Actor, filters: BoardFilters, per_column: int | None = None
) -> dict[str, list[Referral]]:
    """The `per_column` referrals longest in each column's stage, oldest first: one query,
    each column's pick an ordered LIMIT on (stage, stage_entered_at)."""
    picks = []
    for stage in COLUMNS:
        pick = _filtered(_visible_to(actor).with_only_columns(Referral.id), filters)
        pick = pick.where(Referral.stage == stage)
        pick = pick.order_by(Referral.stage_entered_at, Referral.id)
        pick = pick.limit(per_column or PER_COLUMN)
        picks.append(select(pick.subquery().c.id))
    shown = union_all(*picks).subquery()
    statement = (
        select(Referral)
        .where(Referral.id.in_(select(shown.c.id)))
        .options(joinedload(Referral.agency), joinedload(Referral.owner))
        .order_by(Referral.stage_entered_at, Referral.id)
    )
    by_stage: dict[str, list[Referral]] = {str(stage): [] for stage in COLUMNS}
    for referral in db.session.scalars(statement).unique():
        by_stage[referral.stage].append(referral)
    return by_stage


def late_by(
    stage: str, entered_at: datetime, now: datetime, settings: dict[str, Any]
) -> timedelta | None:
    """How far past its service level a visit of `stage` is, or None when in time (or the
    stage has none)."""
    level = level_for(stage, settings)
    if level is None or not level.breached(entered_at, now):
        return None
    return now - level.due_at(entered_at)


def _card(referral: Referral, now: datetime, settings: dict[str, Any]) -> Card:
    entered = referral.stage_entered_at
    return Card(referral, (now - entered).days, late_by(referral.stage, entered, now, settings))


def pipeline_board(
    actor: Actor,
    filters: BoardFilters,
    settings: dict[str, Any],
    now: datetime,
    per_column: int | None = None,
) -> Board:
    """The board as `actor` may see it, audited once (`board.read`, with the ids shown)."""
    counts = stage_counts(actor, filters)
    picked = oldest_in_columns(actor, filters, per_column)
    columns = [
        Column(stage, counts[str(stage)], [_card(r, now, settings) for r in picked[str(stage)]])
        for stage in COLUMNS
    ]
    board = Board(columns, counts)
    audit.record(
        actor, "board.read", None, referral_ids=board.referral_ids, filters=filters.as_dict()
    )
    return board


@dataclass(frozen=True)
class FilterChoices:
    agencies: list[Agency]
    owners: list[StaffUser]
    procedures: list[Procedure]


def filter_choices() -> FilterChoices:
    """What the board's filters offer: every agency, every active staff user who may own a
    referral, every active procedure (short lists, by name)."""
    agencies = db.session.scalars(select(Agency).order_by(Agency.name, Agency.id))
    owners = db.session.scalars(
        select(StaffUser)
        .where(StaffUser.active.is_(True), StaffUser.role.in_(OWNER_ROLES))
        .order_by(StaffUser.name, StaffUser.id)
    )
    procedures = db.session.scalars(
        select(Procedure).where(Procedure.active.is_(True)).order_by(Procedure.name)
    )
    return FilterChoices(list(agencies), list(owners), list(procedures))
