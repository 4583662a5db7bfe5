"""The patient's private link: server-rendered pages, no login.

The signed URL is the credential, so every response says no-referrer and no-store, and a
wrong, revoked or expired token gets the same plain page with nothing about the case.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.errors import DomainError
from crm.extensions import db
from crm.patients.links import resolve
from crm.portal.i18n import STRINGS, Words
from crm.portal.ratelimit import FixedWindowLimiter
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID

portal = Blueprint("portal", __name__, template_folder="templates")
_WOUND_STATES = ("healing_well", "red_or_swollen", "discharge", "opened")


@portal.before_request
def _limit() -> Response | None:
    limiter = current_app.extensions.setdefault(
        "crm.portal.limiter",
        FixedWindowLimiter(current_app.config["CRM"]["PORTAL_RATE_PER_MINUTE"]),
    )
    if not limiter.allow(request.remote_addr or "unknown"):
        return _plain("Too many requests. Please wait a minute.", 429)
    return None


@portal.after_request
def _private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def _invalid() -> Response:
    language = request.accept_languages.best_match(list(STRINGS)) or "en"
    return _plain(Words(language)["invalid"], 404)


def _referral(token: str) -> Referral | None:
    link = resolve(token)
    return db.session.get(Referral, link.referral_id) if link else None


def _patient_actor(referral: Referral) -> Actor:
    return Actor("patient", referral.patient_id, f"patient {referral.patient_id} (link)")


def _page(referral: Referral, token: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    from crm.followup.queries import open_check_in
    from crm.plans.queries import current_plan
    from crm.portal.conversation import conversation_context
    from crm.travel.models import Trip

    words = Words(referral.patient.language.split("-")[0])
    trip = db.session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    context = {
        "words": words,
        "token": token,
        "referral": referral,
        "patient": referral.patient,
        "plan": current_plan(referral.id),
        "trip": trip,
        "check_in": open_check_in(referral.id)
        if referral.stage in {"post_op", "follow_up"}
        else None,
        "wound_states": _WOUND_STATES,
        "phone": current_app.config["CRM"]["HOSPITAL_PHONE"],
        "hospital": current_app.config["CRM"]["HOSPITAL_NAME"],
        "done": request.args.get("done"),
        **conversation_context(referral),
        **extra,
    }
    return render_template("portal/page.html", **context), status


@portal.get("/p/<token>")
def page(token: str):
    referral = _referral(token)
    if referral is None:
        return _invalid()
    audit.record(_patient_actor(referral), "portal.view", referral.id)
    return _page(referral, token)


@portal.post("/p/<token>/accept")
def accept(token: str):
    from crm.plans.models import TreatmentPlan
    from crm.plans.operations import accept_plan

    referral = _referral(token)
    if referral is None:
        return _invalid()
    plan_id = request.form.get("plan_id", type=int) or 0
    plan = db.session.get(TreatmentPlan, plan_id) if 0 < plan_id <= MAX_ROW_ID else None
    if plan is None or plan.referral_id != referral.id:
        return _invalid()
    consents = {
        "treatment_information_acknowledged": request.form.get("ack_info") == "yes",
        "data_processing": request.form.get("ack_data") == "yes",
    }
    try:
        accept_plan(plan, consents, _patient_actor(referral))
    except DomainError as exc:
        db.session.rollback()
        return _page(referral, token, exc.status, error=_fields_of(exc))
    return redirect(url_for("portal.page", token=token, done="accepted"), 303)


@portal.post("/p/<token>/check-in")
def check_in(token: str):
    from crm.followup.operations import record_answers
    from crm.followup.queries import open_check_in

    referral = _referral(token)
    if referral is None:
        return _invalid()
    current = open_check_in(referral.id)
    if current is None:
        return redirect(url_for("portal.page", token=token), 303)
    try:
        answered = record_answers(current, _answers(request.form), _patient_actor(referral))
    except DomainError as exc:
        db.session.rollback()
        return _page(referral, token, exc.status, error=_fields_of(exc))
    done = "urgent" if answered.alert != "none" else "checkin"
    return redirect(url_for("portal.page", token=token, done=done), 303)


def _answers(form) -> dict[str, Any]:
    def score(name: str) -> int | None:
        raw = form.get(name, "").strip()
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None

    return {
        "back_pain": score("back_pain"),
        "leg_pain": score("leg_pain"),
        "numbness": form.get("numbness") == "yes",
        "weakness": form.get("weakness") == "yes",
        "wound": form.get("wound") if form.get("wound") in _WOUND_STATES else None,
        "bladder_or_bowel_trouble": form.get("bladder") == "yes",
        "saddle_numbness": form.get("saddle") == "yes",
        "fever": form.get("fever") == "yes",
        "free_text": form.get("free_text", "")[:2000],
    }


def _fields_of(exc: DomainError) -> str:
    errors = exc.extensions.get("errors")
    if errors:
        return ", ".join(error["field"] for error in errors)
    return exc.detail


@portal.get("/p/<token>/visa-letter.pdf")
def visa_letter(token: str):
    """The invitation letter the trip asks for; the same plain 404 when there is none."""
    from crm.travel.letter import render_visa_letter, unicode_font
    from crm.travel.queries import trip_of, visa_letter_of

    referral = _referral(token)
    if referral is None:
        return _invalid()
    trip = trip_of(referral)
    if trip is None or not trip.visa_letter_needed:
        return _invalid()
    audit.record(_patient_actor(referral), "portal.visa_letter", referral.id)
    pdf = render_visa_letter(visa_letter_of(referral, trip), font=unicode_font())
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invitation-{referral.id}.pdf"'},
    )
