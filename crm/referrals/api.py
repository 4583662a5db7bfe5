"""Thin views: parse, call one operation or query, return. The request boundary commits."""

from __future__ import annotations

from flask import url_for

from crm.auth.guards import agency_only, any_caller, caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.referrals import operations, queries
from crm.referrals.schemas import (
    ContactUpdateArgs,
    NoteArgs,
    NoteSchema,
    OwnerArgs,
    ReferralCreateArgs,
    ReferralDetailSchema,
    ReferralPageSchema,
    StaffReferralListArgs,
    TransitionArgs,
    TransitionSchema,
)

blp = Blueprint("referrals", __name__, description="Referrals through the pipeline")


def _detail(referral_id: int):
    return queries.referral_detail(current_actor(), referral_id)


@blp.post("/referrals")
@idempotent(caller_scope)
@any_caller
@blp.arguments(ReferralCreateArgs)
@blp.response(201, ReferralDetailSchema)
def submit_referral(args):
    """Submit a referral: the patient, the procedure and the intake.

    Agencies submit their own patients; staff submit direct enquiries.
    """
    referral = operations.submit_referral(args, current_actor())
    location = url_for("referrals.get_referral", referral_id=referral.id)
    return queries.detail_of(referral, current_actor()), 201, {"Location": location}


@blp.get("/referrals")
@any_caller
@blp.arguments(StaffReferralListArgs, location="query")
@blp.response(200, ReferralPageSchema)
def list_referrals(args):
    """List referrals, most recently changed first.

    Agencies see their own and may filter by stage and `updated_since`; staff see all
    and may also filter by agency, owner, procedure and search text. Follow
    `next_cursor` for the next page.
    """
    return queries.list_referrals(current_actor(), args)


@blp.get("/referrals/<int:referral_id>")
@any_caller
@blp.response(200, ReferralDetailSchema)
def get_referral(referral_id: int):
    """One referral with its stage history and time in each stage."""
    return _detail(referral_id)


@blp.patch("/referrals/<int:referral_id>/patient")
@agency_only
@blp.arguments(ContactUpdateArgs)
@blp.response(200, ReferralDetailSchema)
def update_patient_contact(args, referral_id: int):
    """Update the patient's contact details, language, time zone and consent."""
    referral = queries.referral_for(current_actor(), referral_id, for_update=True)
    operations.update_patient_contact(referral, args, current_actor())
    return _detail(referral_id)


@blp.post("/referrals/<int:referral_id>/transitions")
@idempotent(caller_scope)
@staff_only("coordinator", "specialist", "manager")
@blp.arguments(TransitionArgs)
@blp.response(201, TransitionSchema)
def move_referral(args, referral_id: int):
    """Move a referral to another stage; 409 names the guard that refused."""
    referral = queries.referral_for(current_actor(), referral_id, for_update=True)
    return operations.move_to_stage(
        referral, args["to"], current_actor(), args.get("reason"), args.get("note")
    )


@blp.put("/referrals/<int:referral_id>/owner")
@staff_only("coordinator", "manager")
@blp.arguments(OwnerArgs)
@blp.response(200, ReferralDetailSchema)
def assign_owner(args, referral_id: int):
    """Assign the coordinator who owns this referral (null to unassign)."""
    referral = queries.referral_for(current_actor(), referral_id, for_update=True)
    operations.assign_owner(referral, args["owner_id"], current_actor())
    return _detail(referral_id)


@blp.post("/referrals/<int:referral_id>/notes")
@idempotent(caller_scope)
@staff_only()
@blp.arguments(NoteArgs)
@blp.response(201, NoteSchema)
def add_note(args, referral_id: int):
    """Add an internal note (never shown to agencies or patients)."""
    referral = queries.referral_for(current_actor(), referral_id, for_update=True)
    return operations.add_note(referral, args["body"], current_actor())
