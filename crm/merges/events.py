"""What a merge publishes: two patient rows of one person became one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm.core.actors import Actor
from crm.core.events import Event

if TYPE_CHECKING:
    from crm.duplicates.models import DuplicateMatch
    from crm.patients.models import Patient


@dataclass(frozen=True)
class PatientsMerged(Event):
    """`merged` (now a tombstone, `merged_into_id`) was merged into `survivor` on a
    coordinator's decision on `match`. `outcome` is the audit's record (moved referral
    ids, filled and conflicting field names, each channel's consent outcome);
    `conflicting` holds the merged row's own values of the conflicting fields, for a
    subscriber that must not lose them (they also stay on the tombstone)."""

    match: DuplicateMatch
    survivor: Patient
    merged: Patient
    outcome: dict[str, Any]
    conflicting: dict[str, Any]
    actor: Actor
