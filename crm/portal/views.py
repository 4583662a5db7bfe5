"""The patient's private link: server-rendered pages, no login.

The signed URL is the credential, so every response keeps it from other sites (referrer
policy same-origin: see crm/portal/origin.py) and from caches (no-store), and a
wrong, revoked or expired token gets the same page (404, in the browser's language, with the
hospital's phone) with nothing about the case. Every page says who is speaking: the
hospital's name, address, accreditation and phones, from configuration.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from crm.core import audit
from crm.core.actors import Actor, patient_actor
from crm.core.db import utcnow
from crm.core.errors import DomainError
from crm.core.i18n import shipped_languages, use_language
from crm.extensions import db
from crm.patients import short_links
from crm.patients.links import resolve, token_for
from crm.portal import words
from crm.portal.consent import consent_context, plan_document, shown_information
from crm.portal.i18n import HELPERS, direction, language
from crm.referrals.models import Referral
from crm.referrals.queries import MAX_ROW_ID

portal = Blueprint("portal", __name__, template_folder="templates")


def rate_limited() -> Response:
    """The page a refused request gets (the limit itself: crm/auth/rate_limits.py, per
    address on the shared storage), in the browser's language."""
    _browser_language()
    text, status = _notice(_("Too many requests. Please wait a minute and try again."), 429)
    return make_response(text, status)


@portal.after_request
def _private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "same-origin"  # our own posts name their origin
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


@portal.context_processor
def _speaking() -> dict[str, Any]:
    """Who is speaking (the hospital, on every page) and the page's language helpers."""
    settings = current_app.config["CRM"]
    hospital = {
        "name": settings["HOSPITAL_NAME"],
        "address": settings["HOSPITAL_ADDRESS"],
        "accreditation": settings["HOSPITAL_ACCREDITATION"],
        "phone": settings["HOSPITAL_PHONE"],
        "emergency_phone": settings["HOSPITAL_EMERGENCY_PHONE"],
    }
    return {"hospital": hospital, "page_lang": language(), "page_dir": direction(), **HELPERS}


def _browser_language() -> str:
    """The best of the shipped languages for this browser's Accept-Language."""
    best = request.accept_languages.best_match(shipped_languages())
    return use_language(best or "en")


def _notice(text: str, status: int) -> tuple[str, int]:
    return render_template("portal/notice.html", text=text), status


def _invalid() -> tuple[str, int]:
    """A wrong, revoked or expired link: the same page, saying nothing about any case."""
    _browser_language()
    return render_template("portal/invalid.html"), 404


def _referral(token: str) -> Referral | None:
    """The link's referral, the rest of the request then speaking its patient's language."""
    link = resolve(token)
    referral = db.session.get(Referral, link.referral_id) if link else None
    if referral is not None:
        use_language(referral.patient.language)
    return referral


def _patient_actor(referral: Referral) -> Actor:
    return patient_actor(referral.patient_id, via="link")


def _page(referral: Referral, token: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    from crm.plans.queries import current_plan
    from crm.portal.check_in import check_in_context
    from crm.portal.contact import contact_context
    from crm.portal.conversation import conversation_context
    from crm.portal.uploads import documents_section
    from crm.travel.models import Trip

    trip = db.session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    context = {
        "token": token,
        "referral": referral,
        "patient": referral.patient,
        "plan": current_plan(referral.id),
        "trip": trip,
        **check_in_context(referral),
        "words": words,
        "progress": words.progress_of(referral.stage, referral.held_from_stage),
        "done": request.args.get("done"),
        "problem": None,
        "form": {},
        **documents_section(referral),
        **conversation_context(referral),
        **contact_context(referral),
        **extra,
    }
    context.update(consent_context(referral, context["plan"], trip))
    return render_template("portal/page.html", **context), status


@portal.get("/p/<token>")
def page(token: str):
    referral = _referral(token)
    if referral is None:
        return _invalid()
    audit.record(_patient_actor(referral), "portal.view", referral.id)
    return _page(referral, token)


@portal.get("/s/<code>")
def short_link(code: str):
    """An SMS's short link: on to the private page it stands for (same headers, same limit)."""
    link = short_links.resolve(code)
    if link is None:
        return _invalid()
    return redirect(url_for("portal.page", token=token_for(link)), 303)


@portal.post("/p/<token>/accept")
def accept(token: str):
    from crm.plans.information import InformationChanged
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
        shown = shown_information(request.form, referral)
        accept_plan(plan, consents, _patient_actor(referral), shown=shown)
    except InformationChanged:
        db.session.rollback()
        return _page(referral, token, 409, consent_changed=True)
    except DomainError as exc:
        db.session.rollback()
        expired = plan.valid_until < utcnow().date()
        problem = words.acceptance_problem(exc, plan_expired=expired)
        return _page(referral, token, exc.status, problem=problem, form=request.form)
    return redirect(url_for("portal.page", token=token, done="accepted"), 303)


@portal.post("/p/<token>/check-in")
def check_in(token: str):
    from crm.followup.operations import record_answers
    from crm.followup.queries import open_check_in
    from crm.portal.check_in import answers_from_form

    referral = _referral(token)
    if referral is None:
        return _invalid()
    current = open_check_in(referral.id)
    if current is None:
        return redirect(url_for("portal.page", token=token), 303)
    answers = answers_from_form(request.form, referral.procedure.check_in_form)
    try:
        answered = record_answers(current, answers, _patient_actor(referral))
    except DomainError as exc:
        db.session.rollback()
        language = referral.patient.language
        labels = {q.code: q.label_in(language) for q in referral.procedure.check_in_form.questions}
        problem = words.check_in_problem(exc, labels)
        return _page(referral, token, exc.status, problem=problem, form=request.form)
    done = "urgent" if answered.alert != "none" else "checkin"
    return redirect(url_for("portal.page", token=token, done=done), 303)


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


@portal.get("/p/<token>/plan.pdf")
def plan_pdf(token: str):
    """The current plan with the information shown (or accepted) and the checklist."""
    from crm.plans.queries import current_plan
    from crm.portal.plan_pdf import render_plan_pdf
    from crm.travel.letter import unicode_font
    from crm.travel.queries import trip_of

    referral = _referral(token)
    if referral is None:
        return _invalid()
    plan = current_plan(referral.id)
    if plan is None:
        return _invalid()
    audit.record(_patient_actor(referral), "portal.plan_pdf", referral.id, plan_id=plan.id)
    document = plan_document(referral, plan, trip_of(referral))
    return Response(
        render_plan_pdf(document, font=unicode_font()),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": (
                f'attachment; filename="plan-{referral.reference}-v{plan.version}.pdf"'
            )
        },
    )
