"""Duplicate patients: the coordinators' list, and their decision on a likely match."""

from __future__ import annotations

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.duplicates import operations, queries
from crm.duplicates.schemas import MatchListArgs, MatchPageSchema, MatchSchema

blp = Blueprint("duplicates", __name__, description="Duplicate patients")


@blp.get("/duplicates")
@staff_only("coordinator", "manager")
@blp.arguments(MatchListArgs, location="query")
@blp.response(200, MatchPageSchema)
def list_matches(args):
    """Matches found when referrals arrived, newest first; `status=open` is the work."""
    return {"items": queries.list_matches(args.get("status"), args["limit"])}


@blp.post("/duplicates/<int:match_id>/link")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.response(200, MatchSchema)
def link_match(match_id: int):
    """The same person: link the patients (no row is merged) and decide attribution again."""
    return operations.link(queries.match_for(match_id, for_update=True), current_actor())


@blp.post("/duplicates/<int:match_id>/dismiss")
@idempotent(caller_scope)
@staff_only("coordinator", "manager")
@blp.response(200, MatchSchema)
def dismiss_match(match_id: int):
    """Not the same person: the match is closed and stays on record."""
    return operations.dismiss(queries.match_for(match_id, for_update=True), current_actor())
