"""One referral as a FHIR R4 Bundle of type `collection`.

`collection`, not `document`: a document Bundle must open with a Composition that attests
the whole as one signed clinical document, and this export is a set of related records
read at one moment (the referral, its stage, its files' metadata, its messages, check-ins
and consents), which is what `collection` means. Every resource has a stable `urn:uuid:`
fullUrl, and references between them use those.

The caller has been checked (`referral_for`) and the read audited; what each part shows
follows the API (`records.py`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.fhir import codes, records
from crm.fhir.codes import instant, reference
from crm.referrals.models import Referral
from crm.referrals.schemas import attribution_of
from crm.referrals.stages import Stage


def referral_bundle(referral: Referral, actor: Actor) -> dict[str, Any]:
    patient = patient_resource(referral)
    organization = organization_resource(referral)
    request = service_request(referral, patient, organization)
    resources = [patient, *([organization] if organization else []), request]
    resources.append(task_resource(referral, patient, request))
    resources.extend(records.document_references(referral, patient, request))
    resources.extend(records.communications(referral, actor, patient))
    resources.extend(records.questionnaire_responses(referral, actor, patient, request))
    resources.extend(records.consents(referral, patient))
    return {
        "resourceType": "Bundle",
        "id": f"referral-{referral.id}",
        "type": "collection",
        "timestamp": instant(utcnow()),
        "identifier": {"system": codes.HOSPITAL_REFERENCE, "value": referral.reference},
        "entry": [
            {"fullUrl": codes.full_url(r["resourceType"], r["id"]), "resource": r}
            for r in resources
        ],
    }


def _identifiers(referral: Referral) -> list[dict[str, Any]]:
    identifiers: list[dict[str, Any]] = [
        {"use": "official", "system": codes.HOSPITAL_REFERENCE, "value": referral.reference}
    ]
    if referral.agency_reference and referral.agency is not None:
        identifiers.append(
            {
                "use": "secondary",
                "system": codes.AGENCY_REFERENCE,
                "value": referral.agency_reference,
                "assigner": {"display": referral.agency.name},
            }
        )
    return identifiers


def patient_resource(referral: Referral) -> dict[str, Any]:
    person = referral.patient
    telecom = []
    if person.phone:
        telecom.append({"system": "phone", "value": person.phone, "use": "mobile"})
    if person.email:
        telecom.append({"system": "email", "value": person.email})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"patient-{person.id}",
        "identifier": _identifiers(referral),
        "name": [
            {
                "use": "official",
                "family": person.family_name,
                "given": [person.given_name],
                "text": person.full_name,
            }
        ],
        "gender": person.sex,
        "telecom": telecom,
        "address": [{"country": person.country}],
        "communication": [
            {
                "language": codes.concept(codes.LANGUAGE, person.language),
                "preferred": True,
            }
        ],
        "extension": [{"url": codes.TIME_ZONE, "valueCode": person.time_zone}],
    }
    if isinstance(person.date_of_birth, date):
        resource["birthDate"] = person.date_of_birth.isoformat()
    return resource


def organization_resource(referral: Referral) -> dict[str, Any] | None:
    """The referral's own agency (never the one the patient is attributed to)."""
    agency = referral.agency
    if agency is None:
        return None
    return {
        "resourceType": "Organization",
        "id": f"agency-{agency.id}",
        "identifier": [{"system": codes.AGENCY_ID, "value": str(agency.id)}],
        "active": True,
        "name": agency.name,
        "type": [{"text": "partner agency"}],
    }


def _effective_stage(referral: Referral) -> Stage:
    """The stage the request stood at: the one held from, or the last before lost."""
    if referral.held_from_stage:
        return Stage(referral.held_from_stage)
    if referral.stage == Stage.LOST and referral.history:
        before = referral.history[-1].from_stage
        return Stage(before) if before else Stage.ENQUIRY
    return Stage(referral.stage)


def _intent(referral: Referral) -> str:
    stage = _effective_stage(referral)
    if stage in codes.PROPOSAL_STAGES:
        return "proposal"
    return "plan" if stage == Stage.PLAN_OFFERED else "order"


def service_request(
    referral: Referral, patient: dict[str, Any], organization: dict[str, Any] | None
) -> dict[str, Any]:
    procedure = referral.procedure
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"referral-{referral.id}",
        "identifier": _identifiers(referral),
        "status": codes.REQUEST_STATUS.get(Stage(referral.stage), "active"),
        "intent": _intent(referral),
        "code": codes.concept(codes.PROCEDURE, procedure.code, procedure.name),
        "subject": reference(patient),
        "authoredOn": instant(referral.created_at),
        "reasonCode": [{"text": complaint} for complaint in referral.complaints or []],
    }
    if organization is not None:
        resource["requester"] = reference(organization)
    if referral.intake_notes:
        resource["note"] = [{"text": referral.intake_notes}]
    attribution = attribution_of(referral)
    if attribution:
        resource["extension"] = [{"url": codes.ATTRIBUTION, "valueCode": attribution}]
    if not resource["reasonCode"]:
        del resource["reasonCode"]
    return resource


def task_status(referral: Referral) -> str:
    if referral.stage == Stage.LOST and referral.lost_reason in codes.REJECTING_REASONS:
        return "rejected"
    return codes.TASK_STATUS[Stage(referral.stage)]


def task_resource(
    referral: Referral, patient: dict[str, Any], request: dict[str, Any]
) -> dict[str, Any]:
    """One Task for the pipeline: the stage now in `businessStatus`, since when in
    `lastModified`, and each stage entered, in order, as an `output` (its code and when)."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"referral-{referral.id}-pipeline",
        "identifier": [{"system": codes.HOSPITAL_REFERENCE, "value": referral.reference}],
        "status": task_status(referral),
        "businessStatus": codes.concept(codes.STAGE, referral.stage),
        "intent": "order",
        "focus": reference(request),
        "for": reference(patient),
        "authoredOn": instant(referral.created_at),
        "lastModified": instant(referral.stage_entered_at),
        "output": [
            {
                "type": codes.concept(codes.STAGE, move.to_stage),
                "valueDateTime": instant(move.occurred_at),
            }
            for move in referral.history
        ],
    }
    if referral.lost_reason:
        resource["statusReason"] = codes.concept(codes.LOST_REASON, referral.lost_reason)
    return resource
