"""Commission's events: an entry written to the ledger, a statement issued."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.actors import Actor
from crm.core.events import Event

if TYPE_CHECKING:
    from crm.commission.models import CommissionEntry, CommissionStatement


@dataclass(frozen=True)
class CommissionEntered(Event):
    """A ledger entry was written (accrued, payable or reversed)."""

    entry: CommissionEntry


@dataclass(frozen=True)
class StatementIssued(Event):
    statement: CommissionStatement
    actor: Actor
