"""Travel endpoints: thin views over crm.travel.operations and crm.travel.queries."""

from __future__ import annotations

from flask import Response

from crm.auth.guards import any_caller, caller_scope, current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.referrals.queries import referral_for
from crm.travel import operations, queries
from crm.travel.schemas import MomentArgs, TripArgs, TripSchema

blp = Blueprint("travel", __name__, description="Travel: itinerary, flights, hotel, visa letter")


def _locked_referral(referral_id: int):
    return referral_for(current_actor(), referral_id, for_update=True)


@blp.put("/referrals/<int:referral_id>/trip")
@staff_only("coordinator", "manager")
@blp.arguments(TripArgs)
@blp.response(200, TripSchema)
def book_trip(args, referral_id: int):
    """Book (or change) the trip: flights, hotel, transfers, companion.

    The first booking needs an accepted plan and moves the referral to `travel_booked`;
    the pre-travel messages are scheduled on the inbound departure and rescheduled when
    it moves. A trip that does not fit the procedure's stay is refused with 422 naming
    the field (arrival too late, return before discharge plus the nights in the city...).
    """
    referral = _locked_referral(referral_id)
    trip = operations.book_trip(referral, args, current_actor())
    return queries.view_of(referral, trip)


@blp.get("/referrals/<int:referral_id>/trip")
@any_caller
@blp.response(200, TripSchema)
def get_trip(referral_id: int):
    """The trip with every time in UTC and in local time, and the plan it fits."""
    return queries.trip_for(current_actor(), referral_id)


@blp.get("/referrals/<int:referral_id>/trip/visa-letter.pdf")
@any_caller
@blp.doc(
    responses={
        "200": {
            "description": "The invitation letter",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
)
def visa_letter(referral_id: int):
    """The visa invitation letter (PDF); 409 unless the trip asks for one."""
    pdf = queries.visa_letter_for(current_actor(), referral_id)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invitation-{referral_id}.pdf"'},
    )


def _record(step, args, referral_id: int):
    referral = _locked_referral(referral_id)
    trip = step(referral, args.get("at"), current_actor())
    return queries.view_of(referral, trip)


@blp.post("/referrals/<int:referral_id>/admission")
@idempotent(caller_scope)
@staff_only("coordinator")
@blp.arguments(MomentArgs)
@blp.response(200, TripSchema)
def record_admission(args, referral_id: int):
    """The patient was admitted: the referral moves to `in_treatment`."""
    return _record(operations.record_admission, args, referral_id)


@blp.post("/referrals/<int:referral_id>/discharge")
@idempotent(caller_scope)
@staff_only("coordinator")
@blp.arguments(MomentArgs)
@blp.response(200, TripSchema)
def record_discharge(args, referral_id: int):
    """The patient was discharged: `post_op`, and the follow-up check-ins are scheduled."""
    return _record(operations.record_discharge, args, referral_id)


@blp.post("/referrals/<int:referral_id>/departure")
@idempotent(caller_scope)
@staff_only("coordinator")
@blp.arguments(MomentArgs)
@blp.response(200, TripSchema)
def record_departure(args, referral_id: int):
    """The patient went home: the referral moves to `follow_up`."""
    return _record(operations.record_departure, args, referral_id)
