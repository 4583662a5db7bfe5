"""Merging a likely duplicate, next to link and dismiss: `GET .../merge` says what would
happen, `POST .../merge` does it (see `operations.py` and the README's "Merging")."""

from __future__ import annotations

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.duplicates import queries
from crm.merges import operations, plan
from crm.merges.schemas import MergePreviewSchema, MergeSchema

blp = Blueprint("merges", __name__, description="Duplicate patients: merging two rows into one")


@blp.get("/duplicates/<int:match_id>/merge")
@staff_only("coordinator", "manager")
@blp.response(200, MergePreviewSchema)
def merge_preview(match_id: int):
    """What a merge would do: which row survives, the referrals that move, the fields
    filled in and in conflict, each channel's consent outcome, or why it is refused.
    Changes nothing."""
    return plan.preview(queries.match_for(match_id))


@blp.post("/duplicates/<int:match_id>/merge")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.response(200, MergeSchema)
def merge_match(match_id: int):
    """The same person, one row: the new referral's patient is merged into the patient
    already known (which survives; the other stays as a tombstone). Referrals, consents
    (the most restrictive wins per channel), messages, replies, legal holds and other
    matches move to the survivor; attribution is decided again. 409 `merge-refused` with
    `refusal` (decided, not_likely, already_merged, erased, legal_hold). Retry-safe with
    an `Idempotency-Key`."""
    # No lock here: the merge locks both patients first, then the match (see operations).
    return operations.merge(queries.match_for(match_id), current_actor())
