"""Send a patient: the agency's form for a new referral (`/agency/referrals/new`).

The form's fields are the API's `ReferralCreateArgs` (each named after its schema path,
`patient.phone` is `patient-phone`), loaded by that very schema and submitted by the
API's own operation `submit_referral` with the agency Actor, so a duplicate patient goes
through the same attribution (another agency's patient is only "already in care"). A
refusal shows each reason beside its field with what was typed kept (422).

Sent twice (a double click, a reload of the post) it makes one referral: the form carries
a random key that becomes the request's `Idempotency-Key`, and the API's own `idempotent`
mechanism replays the first answer (the redirect to the new referral) to the second post.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from crm.auth.guards import caller_scope, current_actor
from crm.catalogue.queries import active_procedures
from crm.console.actions import attempt_quietly
from crm.console.clinical_forms import load, refusal_errors
from crm.core.errors import IdempotencyMismatch, RequestInFlight
from crm.core.idempotency import idempotent
from crm.panel.auth import agency_page
from crm.panel.views import panel
from crm.patients.models import SEXES
from crm.referrals.operations import submit_referral
from crm.referrals.schemas import ReferralCreateArgs

FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
INTEGER = re.compile(r"^-?\d{1,10}$")
PATIENT_TEXT = (
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "phone",
    "email",
    "language",
    "country",
    "time_zone",
)
CHANNELS = ("sms", "email", "whatsapp")
TREATMENT_ROWS = 2
SEX_WORDS = {"unknown": "Not given"}
OUT_OF_DATE = "This form is out of date: check it and send it again."


def _text(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def _number(value: str) -> Any:
    """Digits become the integer the JSON API takes; anything else stays text for the
    schema to refuse in its own words."""
    return int(value) if INTEGER.match(value) else value


def payload_of(form: Mapping[str, str]) -> dict[str, Any]:
    """The form as the API's JSON body; a blank field is an absent one."""
    patient: dict[str, Any] = {
        name: value for name in PATIENT_TEXT if (value := _text(form, f"patient-{name}"))
    }
    consents: dict[str, Any] = {c: form.get(f"patient-consents-{c}") == "on" for c in CHANNELS}
    if source := _text(form, "patient-consents-source"):
        consents["source"] = source
    patient["consents"] = consents
    intake: dict[str, Any] = {}
    complaints = [line.strip() for line in form.get("intake-complaints", "").splitlines()]
    if any(complaints):
        intake["complaints"] = [line for line in complaints if line]
    for name in ("symptom_duration_weeks", "pain_score"):
        if value := _text(form, f"intake-{name}"):
            intake[name] = _number(value)
    treatments = []
    for row in range(TREATMENT_ROWS):
        treatment = _text(form, f"intake-treatments_tried-{row}-treatment")
        weeks = _text(form, f"intake-treatments_tried-{row}-duration_weeks")
        if treatment or weeks:
            treatments.append({"treatment": treatment, "duration_weeks": _number(weeks)})
    if treatments:
        intake["treatments_tried"] = treatments
    if notes := _text(form, "intake-notes"):
        intake["notes"] = notes
    body: dict[str, Any] = {"procedure": _text(form, "procedure"), "patient": patient}
    if reference := _text(form, "agency_reference"):
        body["agency_reference"] = reference
    if intake:
        body["intake"] = intake
    return body


def _unknown_first(sex: str) -> tuple[bool, int]:
    return sex != "unknown", SEXES.index(sex)


def _page(values: Mapping[str, str], errors: dict[str, str], status: int = 200):
    """The form; a page shown again after a refusal gets a new key, so the corrected form
    is a new request (a refused one was never remembered)."""
    return render_template(
        "panel/submit.html",
        values=values,
        errors=errors,
        form_key=secrets.token_urlsafe(24),
        procedures=[(p.code, p.name) for p in active_procedures()],
        sexes=[
            (sex, SEX_WORDS.get(sex, sex.capitalize())) for sex in sorted(SEXES, key=_unknown_first)
        ],
        channels=CHANNELS,
        treatment_rows=range(TREATMENT_ROWS),
    ), status


@panel.route("/referrals/new", methods=["GET", "POST"])
@agency_page
def submit():
    if request.method == "GET":
        return _page({"patient-language": "en"}, {})
    key = request.form.get("form_key", "")
    if not FORM_KEY.match(key):
        return _page(request.form, {"form": OUT_OF_DATE}, 422)
    # The API's idempotency, keyed by the form: a second post of the same form replays
    # the first one's redirect instead of submitting again.
    request.environ["HTTP_IDEMPOTENCY_KEY"] = f"panel-submit-{key}"
    try:
        return _submit_once()
    except IdempotencyMismatch:
        return render_template(
            "panel/message.html",
            title="Already sent",
            text="This form was already sent once and made a referral; the changed copy was "
            "not sent. Find the referral in your list, or open a new form for another patient.",
        ), 409
    except RequestInFlight:
        return render_template(
            "panel/message.html",
            title="Being sent",
            text="This form is being sent already. In a moment, find the new referral at the "
            "top of your referrals.",
        ), 409


@idempotent(caller_scope)
def _submit_once():
    args, errors = load(ReferralCreateArgs(), payload_of(request.form))
    if errors:
        return _page(request.form, errors, 422)
    referral, refused = attempt_quietly(lambda: submit_referral(args, current_actor()))
    if refused is not None:
        errors = refusal_errors(refused, "UTC")
        if not errors and (field := refused.extensions.get("field")):
            errors = {field: refused.detail}
        errors = errors or {"form": refused.detail}
        return _page(request.form, errors, refused.status)
    assert referral is not None
    flash(f"Sent: {referral.reference} for {referral.patient.full_name}.")
    return redirect(url_for("panel.referral", referral_id=referral.id), 303)
