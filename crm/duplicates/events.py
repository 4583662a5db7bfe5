"""What the duplicates package publishes: a coordinator decided a likely match; a
referral's owning agency changed after a link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event

if TYPE_CHECKING:
    from crm.duplicates.models import DuplicateMatch
    from crm.referrals.models import Referral


def task_key(match_id: int) -> str:
    """The dedupe key of the coordinator task a likely match opened."""
    return f"duplicate:{match_id}"


@dataclass(frozen=True)
class DuplicateDecided(Event):
    """A likely match was linked (the same person) or dismissed (someone else), from the
    console or the API: whatever waited on it (its task, `dedupe_key`) is settled."""

    match: DuplicateMatch
    status: str
    actor: Actor

    @property
    def dedupe_key(self) -> str:
        return task_key(self.match.id)


@dataclass(frozen=True)
class ReferralReattributed(Event):
    """`referral.attributed_agency_id` moved from `previous_agency_id` to `agency_id`;
    `key` names the decision that moved it (`match:<id>`), unique per change."""

    referral: Referral
    previous_agency_id: int | None
    agency_id: int | None
    key: str
    actor: Actor
