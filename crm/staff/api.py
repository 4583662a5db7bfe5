"""Who am I, and who else works here (to choose a referral's owner)."""

from __future__ import annotations

from crm.auth.guards import any_caller, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.staff import queries
from crm.staff.schemas import MeSchema, StaffListArgs, StaffListSchema

blp = Blueprint("staff", __name__, description="The caller and the hospital's staff")


@blp.get("/me")
@any_caller
@blp.response(200, MeSchema)
def who_am_i():
    """The caller: a staff user with their role, or the agency an API key belongs to."""
    return queries.me(current_actor())


@blp.get("/staff")
@staff_only()
@blp.arguments(StaffListArgs, location="query")
@blp.response(200, StaffListSchema)
def list_staff(args):
    """The hospital's staff by name, for choosing an owner; filter by role and active.

    Staff only (an agency key is 403). Not paged: a hospital's staff is a short list.
    """
    return {"items": queries.list_staff(args)}
