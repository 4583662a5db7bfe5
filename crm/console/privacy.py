"""A patient's privacy page (managers, admins): the export download, legal holds and the
erasure form, each running the API endpoint's own operation; and the retention dry run.
The referral page links here (its "Privacy" section)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from crm.auth.guards import current_actor
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core import audit
from crm.core.db import utcnow
from crm.core.errors import ValidationFailed
from crm.privacy import operations, queries
from crm.privacy.api import PRIVACY_ROLES, export_response

CONFIRM = "erase"  # typed by the manager, so a stray click erases nobody
HORIZONS = (0, 30, 90, 365)


def _back(patient_id: int):
    return redirect(url_for("console.patient_privacy", patient_id=patient_id), 303)


@console.get("/patients/<int:patient_id>/privacy")
@staff_page(*PRIVACY_ROLES)
def patient_privacy(patient_id: int):
    actor = current_actor()
    status = queries.status_of(actor, patient_id)  # 404 page when missing
    referrals = queries.referrals_of(status.patient_ids)
    for referral in referrals:
        audit.record(actor, "privacy.read", referral.id, patient_id=patient_id)
    return render_template(
        "console/privacy.html",
        patient=queries.patient_for(actor, patient_id),
        status=status,
        referrals=referrals,
        confirm_word=CONFIRM,
    )


@console.get("/patients/<int:patient_id>/export")
@staff_page(*PRIVACY_ROLES)
def patient_export(patient_id: int):
    """The same streamed ZIP as GET /api/v1/patients/{id}/export, audited the same way."""
    return export_response(patient_id)


@console.post("/patients/<int:patient_id>/erasure")
@staff_page(*PRIVACY_ROLES)
def patient_erasure(patient_id: int):
    queries.patient_for(current_actor(), patient_id)

    def run():
        if request.form.get("confirm", "").strip().lower() != CONFIRM:
            raise ValidationFailed({"confirm": f"type {CONFIRM} to confirm"})
        return operations.erase_person(patient_id, current_actor(), request.form.get("reason"))

    result = attempt(run)
    if result is not None:
        flash(
            f"Erased: {len(result.patient_ids)} patient record(s), {len(result.referral_ids)}"
            f" referral(s), {result.documents_removed} document(s)."
        )
    return _back(patient_id)


@console.post("/patients/<int:patient_id>/legal-hold")
@staff_page(*PRIVACY_ROLES)
def patient_hold(patient_id: int):
    reason = request.form.get("reason")
    attempt(
        lambda: operations.set_hold(patient_id, current_actor(), reason),
        done="Legal hold set: no erasure, on request or by retention, until it is lifted.",
    )
    return _back(patient_id)


@console.post("/patients/<int:patient_id>/legal-hold/lift")
@staff_page(*PRIVACY_ROLES)
def patient_hold_lift(patient_id: int):
    reason = request.form.get("reason")
    attempt(
        lambda: operations.lift_holds(patient_id, current_actor(), reason),
        done="Legal hold lifted.",
    )
    return _back(patient_id)


@console.get("/privacy/retention")
@staff_page(*PRIVACY_ROLES)
def retention():
    """The dry run: who the retention job would erase now or within the horizon."""
    raw = request.args.get("horizon", "0")
    horizon = int(raw) if raw.isdigit() and int(raw) in HORIZONS else 0
    settings = current_app.config["CRM"]
    items = queries.retention_schedule(settings, utcnow(), horizon)
    return render_template(
        "console/retention.html",
        items=items,
        horizon=horizon,
        horizons=HORIZONS,
        days_completed=settings["RETENTION_DAYS_AFTER_COMPLETED"],
        days_lost=settings["RETENTION_DAYS_AFTER_LOST"],
    )
