"""The audit trail for the hospital's managers and admins (and its data-protection
officer through them): who read or changed which patient's case, when, from where."""

from __future__ import annotations

from crm.audit import queries
from crm.audit.schemas import AuditArgs, AuditPageSchema
from crm.auth.guards import current_actor, staff_only
from crm.core.blueprint import Blueprint

blp = Blueprint("audit", __name__, description="The audit trail")


@blp.get("/audit-events")
@staff_only("manager")
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditPageSchema)
def list_audit_events(args):
    """Newest first; filter by referral (its events and the lists that showed it), actor,
    action (exact, or a prefix ending in a dot), address, request id and time. Reading
    the trail is itself audited."""
    return queries.search(current_actor(), args)
