"""Privacy rights over the API, for managers and admins: a person's export (a ZIP), their
erasure, legal holds, and the retention schedule. Agencies and other staff roles: 403."""

from __future__ import annotations

from flask import Response, current_app

from crm.auth.guards import caller_scope, current_actor, staff_only
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.db import utcnow
from crm.core.idempotency import idempotent
from crm.documents.upload import storage
from crm.privacy import export, operations, queries
from crm.privacy.schemas import (
    ErasureSchema,
    HoldSchema,
    PrivacyStatusSchema,
    ReasonArgs,
    RetentionArgs,
    RetentionSchema,
)

blp = Blueprint("privacy", __name__, description="Privacy rights: export, erasure, retention")

PRIVACY_ROLES = ("manager",)  # and admin, who may do everything


def export_response(patient_id: int) -> Response:
    """The person's bundle as a streamed ZIP download, audited (`privacy.export`, one event
    per referral): the API's endpoint and the console's button are this one function."""
    actor = current_actor()
    patient = queries.patient_for(actor, patient_id)
    bundle = export.bundle_of(patient.id, storage())
    for referral_id in bundle.referral_ids or [None]:
        audit.record(
            actor,
            "privacy.export",
            referral_id,
            patient_ids=bundle.patient_ids,
            files=len(bundle.files),
        )
    name = f"patient-{patient.id}-{utcnow():%Y%m%d}.zip"
    return Response(
        export.stream_zip(bundle),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
        direct_passthrough=True,
    )


@blp.get("/patients/<int:patient_id>/export")
@staff_only(*PRIVACY_ROLES)
@blp.response(
    200, content_type="application/zip", description="a ZIP: data.json, documents/, fhir/"
)
def export_patient(patient_id: int):
    """Everything recorded about the person (every patient row linked as the same person,
    all their referrals across agencies) and their documents' files; audited."""
    return export_response(patient_id)


@blp.get("/patients/<int:patient_id>/privacy")
@staff_only(*PRIVACY_ROLES)
@blp.response(200, PrivacyStatusSchema)
def privacy_status(patient_id: int):
    """Linked rows, erasure, holds, and whether an erasure would be refused (and why)."""
    return queries.status_of(current_actor(), patient_id)


@blp.post("/patients/<int:patient_id>/erasure")
@idempotent(caller_scope)
@staff_only(*PRIVACY_ROLES)
@blp.arguments(ReasonArgs)
@blp.response(200, ErasureSchema)
def erase_patient(args, patient_id: int):
    """Pseudonymise the person everywhere (see the README's "Privacy rights"). 409
    `erasure-refused` with `refusal` (legal_hold, open_treatment, active_referral) while one
    applies. Erasing again is fine (`already_erased`)."""
    patient = queries.patient_for(current_actor(), patient_id)
    return operations.erase_person(patient.id, current_actor(), args["reason"])


@blp.post("/patients/<int:patient_id>/legal-hold")
@idempotent(caller_scope)
@staff_only(*PRIVACY_ROLES)
@blp.arguments(ReasonArgs)
@blp.response(201, HoldSchema)
def set_legal_hold(args, patient_id: int):
    """Hold the person's data: no erasure, on request or by retention, until lifted."""
    return operations.set_hold(patient_id, current_actor(), args["reason"])


@blp.delete("/patients/<int:patient_id>/legal-hold")
@staff_only(*PRIVACY_ROLES)
@blp.arguments(ReasonArgs)
@blp.response(200, HoldSchema(many=True))
def lift_legal_hold(args, patient_id: int):
    """Lift every hold in force (kept, with who lifted it and why); 409 when none is."""
    return operations.lift_holds(patient_id, current_actor(), args["reason"])


@blp.get("/privacy/retention")
@staff_only(*PRIVACY_ROLES)
@blp.arguments(RetentionArgs, location="query")
@blp.response(200, RetentionSchema)
def retention(args):
    """The dry run: who the retention job would erase now (and, with `horizon_days`, soon),
    with when each falls due; `held` ones are skipped while their hold lasts."""
    settings = current_app.config["CRM"]
    return {
        "days_after_completed": settings["RETENTION_DAYS_AFTER_COMPLETED"],
        "days_after_lost": settings["RETENTION_DAYS_AFTER_LOST"],
        "items": queries.retention_schedule(settings, utcnow(), args["horizon_days"]),
    }
