"""The referral page's clinical actions: the specialist's review, the treatment plan and its
versions, travel, and the stay (admission, discharge, departure).

Each form is loaded by the API's own `...Args` schema and runs the API's own operation
through `attempt_quietly(...)`, for the roles the API endpoint allows; a refusal renders the form
again (422, or the refusal's status) with each reason next to its field and what was typed
kept. Specialists never reach the plan pages (revenue).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor, role_allows
from crm.catalogue.queries import active_procedures
from crm.console import clinical_forms as forms
from crm.console.actions import ERROR, attempt_quietly, flash_problems, in_words
from crm.console.auth import current_user, staff_page
from crm.console.views import console
from crm.core import audit
from crm.core.db import utcnow
from crm.core.errors import DomainError, ValidationFailed
from crm.documents.queries import documents_of
from crm.plans.models import LINE_KINDS
from crm.plans.operations import offer_plan
from crm.plans.queries import plans_of
from crm.plans.schemas import PlanArgs
from crm.referrals.models import Referral
from crm.referrals.queries import referral_for
from crm.referrals.stages import Stage
from crm.reviews.models import DECISIONS
from crm.reviews.operations import record_review
from crm.reviews.queries import latest_review
from crm.reviews.schemas import ReviewArgs
from crm.travel import operations as travel
from crm.travel.operations import CHANGEABLE_STAGES
from crm.travel.queries import plan_of, trip_of
from crm.travel.schemas import DEFAULT_TRIP_ZONE, MomentArgs, TripArgs

# The roles of the matching API endpoints (their `staff_only(...)`); an admin always.
REVIEW_ROLES = ("specialist",)
PLAN_ROLES = ("coordinator", "manager")
TRIP_ROLES = ("coordinator", "manager")
STAY_ROLES = ("coordinator",)
STAY_STEPS = {
    # step: (the stage it is recorded from, the operation, the button, what is said after)
    "admission": (Stage.TRAVEL_BOOKED, travel.record_admission, "Record admission", "Admitted."),
    "discharge": (Stage.IN_TREATMENT, travel.record_discharge, "Record discharge", "Discharged."),
    "departure": (Stage.POST_OP, travel.record_departure, "Record departure", "Went home."),
}
DECISION_WORDS = {
    "candidate": "Candidate",
    "not_a_candidate": "Not a candidate",
    "need_more_information": "Need more information",
}
CURRENCIES = ("EUR", "USD", "GBP", "TRY", "CHF", "SAR", "AED", "KWD", "RUB", "JPY")
BLANK_ROWS = 2
MIN_ROWS = 4
MORE_ROWS = 3


def _run(action: Callable[[], Any], done: str) -> tuple[Any, DomainError | None]:
    """The operation's result and its refusal: a field's reason is shown beside the field
    (the alert above the form counts them), any other refusal is said in words."""
    result, refused = attempt_quietly(action)
    if isinstance(refused, ValidationFailed):
        flash_problems(forms.errors_by_field(refused.extensions["errors"]))
    elif refused is not None:
        flash(in_words(refused), ERROR)
    else:
        flash(done)
    return result, refused


def _zone() -> str:
    return current_user().time_zone


def _back_to(referral: Referral):
    return redirect(url_for("console.referral", referral_id=referral.id), 303)


# --- the specialist's review ---------------------------------------------------------


@console.route("/referrals/<int:referral_id>/review", methods=["GET", "POST"])
@staff_page(*REVIEW_ROLES)
def review(referral_id: int):
    actor = current_actor()
    if request.method == "GET":
        return _review_page(referral_for(actor, referral_id), {}, {})
    referral = referral_for(actor, referral_id, for_update=True)
    form = request.form
    data = {
        "decision": forms.text(form, "decision"),
        "findings": forms.text(form, "findings"),
        "recommended_procedure": forms.optional(form, "recommended_procedure"),
        "risks_to_discuss": forms.text(form, "risks_to_discuss"),
        "notes": forms.text(form, "notes"),
        "request_to_patient": forms.optional(form, "request_to_patient"),
    }
    for field in referral.procedure.review_field_list:  # the procedure's own findings
        data[field.code] = forms.optional(form, field.code)
    args, errors = forms.load(ReviewArgs(), data)
    if errors:
        flash_problems(errors)
        return _review_page(referral, form, errors, 422)
    words = DECISION_WORDS[args["decision"]]
    _, refused = _run(lambda: record_review(referral, args, actor), f"Review recorded: {words}.")
    if refused:
        return _review_page(referral, form, forms.refusal_errors(refused, _zone()), refused.status)
    return _back_to(referral)


def _review_page(referral: Referral, values: Mapping[str, str], errors: forms.Errors, status=200):
    studies = [d for d in documents_of(referral.id) if d.kind == "mri_study"]
    audit.record(current_actor(), "document.list", referral.id)
    return render_template(
        "console/clinical/review.html",
        referral=referral,
        studies=studies,
        procedures=active_procedures(),
        review_fields=referral.procedure.review_field_list,
        decisions=[(d, DECISION_WORDS[d]) for d in DECISIONS],
        values=values,
        errors=errors,
    ), status


# --- plans ---------------------------------------------------------------------------


@console.route("/referrals/<int:referral_id>/plans/new", methods=["GET", "POST"])
@staff_page(*PLAN_ROLES)
def new_plan(referral_id: int):
    actor = current_actor()
    if request.method == "GET":
        referral = referral_for(actor, referral_id)
        versions = plans_of(referral.id)
        audit.record(actor, "plan.read", referral.id)
        if versions:
            values, rows = forms.plan_values(versions[-1])
        else:
            values, rows = {"procedure": referral.procedure.code, "currency": "EUR"}, []
        return _plan_form(referral, values, rows, {}, latest=versions[-1] if versions else None)
    form = request.form
    rows = forms.item_rows(form)
    referral = referral_for(actor, referral_id, for_update=True)
    versions = plans_of(referral.id)
    latest = versions[-1] if versions else None
    again = partial(_plan_form, referral, form, rows, latest=latest)
    if "more_rows" in form:  # more empty rows, nothing offered yet
        shown = form["more_rows"]
        return again({}, extra=min(int(shown) if shown.isdigit() else BLANK_ROWS, 40) + MORE_ROWS)
    if form.get("based_on") != str(latest.version if latest else 0):
        # Sent twice, or someone offered a version since this form was opened.
        flash(
            f"Nothing offered: version {latest.version if latest else 0} was offered after this "
            "form was opened. Check the plan versions; send this form again if it still stands.",
            ERROR,
        )
        return again({}, status=409)
    data, typed_errors = forms.plan_data(form, rows)
    args, errors = forms.load(PlanArgs(), data, forms.PLAN_RENAMES)
    errors = {**errors, **typed_errors}
    if errors:
        flash_problems(errors)
        return again(errors, status=422)
    plan, refused = _run(lambda: offer_plan(referral, args, actor), "")
    if refused:
        errors = forms.refusal_errors(refused, _zone(), forms.PLAN_RENAMES)
        return again(errors, status=refused.status)
    total = forms.money(plan.total_minor, plan.currency)
    flash(f"Plan version {plan.version} offered to the patient: total {total}.")
    return redirect(url_for("console.plans", referral_id=referral.id), 303)


def _plan_form(referral, values, rows, errors, *, latest=None, extra=BLANK_ROWS, status=200):
    extra = max(extra, MIN_ROWS - len(rows))
    blank = {**dict.fromkeys(forms.ITEM_FIELDS, ""), "quantity": "1"}
    rows = list(rows) + [dict(blank) for _ in range(extra)]
    currency = values.get("currency") or "EUR"
    return render_template(
        "console/clinical/plan_form.html",
        referral=referral,
        values=values,
        rows=rows,
        errors=errors,
        latest=latest,
        based_on=latest.version if latest else 0,
        procedures=active_procedures(),
        kinds=LINE_KINDS,
        currencies=CURRENCIES if currency in CURRENCIES else (*CURRENCIES, currency),
        extra=extra,
    ), status


@console.get("/referrals/<int:referral_id>/plans")
@staff_page(*PLAN_ROLES)
def plans(referral_id: int):
    actor = current_actor()
    referral = referral_for(actor, referral_id)
    versions = plans_of(referral.id)
    audit.record(actor, "plan.read", referral.id)
    changes = [
        forms.what_changed(plan, versions[n - 1] if n else None) for n, plan in enumerate(versions)
    ]
    return render_template(
        "console/clinical/plans.html",
        referral=referral,
        versions=versions,
        changes=changes,
        rows=max((len(p.items) for p in versions), default=0),
        may_offer=referral.stage in (Stage.MRI_REVIEW, Stage.PLAN_OFFERED),
    )


# --- travel --------------------------------------------------------------------------


@console.route("/referrals/<int:referral_id>/trip", methods=["GET", "POST"])
@staff_page(*TRIP_ROLES)
def trip(referral_id: int):
    actor = current_actor()
    if request.method == "GET":
        referral = referral_for(actor, referral_id)
        booked = trip_of(referral)
        if booked is None:
            return _trip_form(referral, _new_trip_values(referral), {}, booked=False)
        audit.record(actor, "trip.read", referral.id)
        values = forms.trip_values(booked)
        values["hospital_nights"] = str(plan_of(referral, booked).hospital_nights)
        return _trip_form(referral, values, {}, booked=True)
    referral = referral_for(actor, referral_id, for_update=True)
    booked = trip_of(referral) is not None
    form = request.form
    data, typed_errors = forms.trip_data(form)
    args, errors = forms.load(TripArgs(), data)
    errors = {**errors, **typed_errors}
    if errors:
        flash_problems(errors)
        return _trip_form(referral, form, errors, booked=booked, status=422)
    done = "Travel changed; the patient is told." if booked else "Travel booked."
    _, refused = _run(lambda: travel.book_trip(referral, args, actor), done)
    if refused:
        errors = forms.refusal_errors(refused, _zone())
        return _trip_form(referral, form, errors, booked=booked, status=refused.status)
    return _back_to(referral)


def _new_trip_values(referral: Referral) -> dict[str, str]:
    home = referral.patient.time_zone
    return {
        "time_zone": DEFAULT_TRIP_ZONE,
        "flights-inbound-departure_time_zone": home,
        "flights-inbound-arrival_time_zone": DEFAULT_TRIP_ZONE,
        "flights-outbound-departure_time_zone": DEFAULT_TRIP_ZONE,
        "flights-outbound-arrival_time_zone": home,
    }


def _trip_form(referral, values, errors, *, booked: bool, status=200):
    return render_template(
        "console/clinical/trip.html",
        referral=referral,
        values=values,
        errors=errors,
        booked=booked,
        stay=referral.procedure,
    ), status


# --- the stay ------------------------------------------------------------------------


@console.route("/referrals/<int:referral_id>/stay/<step>", methods=["GET", "POST"])
@staff_page(*STAY_ROLES)
def stay(referral_id: int, step: str):
    if step not in STAY_STEPS:
        abort(404)
    actor = current_actor()
    if request.method == "GET":
        return _stay_form(referral_for(actor, referral_id), step, {}, {})
    referral = referral_for(actor, referral_id, for_update=True)
    zone = current_user().time_zone
    typed = forms.text(request.form, "at")
    try:
        at = forms.in_zone(typed, zone)
    except ValueError as exc:
        flash_problems({"at": str(exc)})
        return _stay_form(referral, step, request.form, {"at": str(exc)}, 422)
    args, errors = forms.load(MomentArgs(), {"at": at})
    if errors:
        flash_problems(errors)
        return _stay_form(referral, step, request.form, errors, 422)
    _, operation, _, done = STAY_STEPS[step]
    _, refused = _run(lambda: operation(referral, args["at"], actor), done)
    if refused:
        errors = forms.refusal_errors(refused, _zone())
        return _stay_form(referral, step, request.form, errors, refused.status)
    return _back_to(referral)


def _stay_form(referral, step, values, errors, status=200):
    return render_template(
        "console/clinical/stay.html",
        referral=referral,
        step=step,
        button=STAY_STEPS[step][2],
        values=values,
        errors=errors,
    ), status


# --- the section on the referral page ------------------------------------------------


@console.app_template_global()
def clinical_actions(referral: Any) -> dict[str, Any]:
    """What `console/referral/clinical.html` offers: the actions the stage and the viewer's
    role allow, each a link to its form or (the stay) a small form of its own."""
    actor = current_actor()
    stage = referral.stage
    review = latest_review(referral.id)  # shown on the referral page, whose read is audited
    links: list[tuple[str, str]] = []
    if stage == Stage.MRI_REVIEW and role_allows(actor, REVIEW_ROLES):
        label = "Record a new review" if review else "Record the review"
        links.append((label, url_for("console.review", referral_id=referral.id)))
    has_trip = False
    if role_allows(actor, PLAN_ROLES):
        versions = plans_of(referral.id)
        if stage in (Stage.MRI_REVIEW, Stage.PLAN_OFFERED):
            label = "Offer a new plan version" if versions else "Build and offer a plan"
            links.append((label, url_for("console.new_plan", referral_id=referral.id)))
        if versions:
            links.append(("Plan versions", url_for("console.plans", referral_id=referral.id)))
    if role_allows(actor, TRIP_ROLES):
        has_trip = trip_of(referral) is not None
        if stage == Stage.PLAN_ACCEPTED and not has_trip:
            links.append(("Book travel", url_for("console.trip", referral_id=referral.id)))
        elif has_trip and stage in CHANGEABLE_STAGES:
            links.append(("Change travel", url_for("console.trip", referral_id=referral.id)))
    steps = []
    if role_allows(actor, STAY_ROLES):
        steps = [
            (step, button)
            for step, (from_stage, _, button, _) in STAY_STEPS.items()
            if stage == from_stage
        ]
    return {
        "review": review,
        "decision": DECISION_WORDS[review.decision] if review else None,
        "links": links,
        "steps": steps,
        "now": forms.wall_time(utcnow(), current_user().time_zone),
        "zone": current_user().time_zone,
    }


@console.app_template_filter("money")
def money_filter(minor: int, currency: str) -> str:
    return forms.money(minor, currency)


@console.app_template_filter("wall_time")
def wall_time_filter(moment, zone: str) -> str:
    return forms.wall_time(moment, zone)
