"""The code systems and identifier systems the FHIR mapping uses, and the stage mappings.

The hospital's own vocabularies (procedure catalogue, pipeline stages, document kinds,
contact channels) are named by URNs of this application: they are not SNOMED or LOINC
codes, and a receiver maps them by these systems.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crm.referrals.stages import Stage

BASE = "urn:referral-crm"
HOSPITAL_REFERENCE = f"{BASE}:hospital-reference"  # R-000013, told to the patient
AGENCY_REFERENCE = f"{BASE}:agency-reference"  # the agency's own id for its patient
AGENCY_ID = f"{BASE}:agency"  # the agency's id in this application
PROCEDURE = f"{BASE}:procedure"  # the catalogue's procedure codes (microdiscectomy)
STAGE = f"{BASE}:stage"  # the pipeline's stages (enquiry ... completed, lost, on_hold)
LOST_REASON = f"{BASE}:lost-reason"
DOCUMENT_KIND = f"{BASE}:document-kind"  # mri_study, radiology_report, passport, ...
DOCUMENT_SHA256 = f"{BASE}:sha256"  # a document's SHA-256 (hex), as stored
CHANNEL = f"{BASE}:channel"  # sms, email, whatsapp, page
MESSAGE_KIND = f"{BASE}:message-kind"  # the outbox's kinds (referral_received, ...)
MESSAGE_AUDIENCE = f"{BASE}:message-audience"
CHECK_IN = f"{BASE}:check-in"  # a questionnaire per procedure: {CHECK_IN}:<procedure>
CONSENT_INFORMATION = f"{BASE}:consent-information"  # the information text shown
ATTRIBUTION = f"{BASE}:attribution"  # extension: attributed | already_in_care
TIME_ZONE = "http://hl7.org/fhir/StructureDefinition/tz-code"  # an IANA zone
LANGUAGE = "urn:ietf:bcp:47"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"

MIME_TYPES = {
    "dicom": "application/dicom",
    "dicom_zip": "application/zip",
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
}

# Task.status: where the hospital's work on the referral stands.
TASK_STATUS = {
    Stage.ENQUIRY: "requested",
    Stage.AWAITING_MRI: "received",
    Stage.MRI_REVIEW: "received",
    Stage.PLAN_OFFERED: "received",
    Stage.PLAN_ACCEPTED: "accepted",
    Stage.TRAVEL_BOOKED: "accepted",
    Stage.IN_TREATMENT: "in-progress",
    Stage.POST_OP: "in-progress",
    Stage.FOLLOW_UP: "in-progress",
    Stage.COMPLETED: "completed",
    Stage.LOST: "cancelled",
    Stage.ON_HOLD: "on-hold",
}
# A referral lost because the hospital said no is `rejected`, not `cancelled`.
REJECTING_REASONS = frozenset({"not_a_candidate", "medical_contraindication"})

# ServiceRequest.status: the request itself.
REQUEST_STATUS = {Stage.COMPLETED: "completed", Stage.LOST: "revoked", Stage.ON_HOLD: "on-hold"}
# ServiceRequest.intent: a proposal until a plan is offered, a plan while it is, then an order.
PROPOSAL_STAGES = frozenset({Stage.ENQUIRY, Stage.AWAITING_MRI, Stage.MRI_REVIEW})

# Communication.status from the outbox's status.
COMMUNICATION_STATUS = {
    "queued": "preparation",
    "sending": "in-progress",
    "sent": "completed",
    "delivered": "completed",
    "undelivered": "stopped",
    "failed": "stopped",
    "suppressed": "not-done",
    "cancelled": "not-done",
}

_NAMESPACE = uuid.UUID("6f1c2c3e-5a0b-4d8e-9a57-1f2e3d4c5b6a")


def full_url(resource_type: str, resource_id: str) -> str:
    """A stable `urn:uuid:` for one resource: the same referral exports the same urls."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{resource_id}')}"


def coding(system: str, code: str, display: str | None = None) -> dict:
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(system: str, code: str, display: str | None = None) -> dict:
    return {"coding": [coding(system, code, display)], "text": display or code}


def instant(moment: datetime) -> str:
    """A FHIR instant/dateTime: always with a zone (stored times are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reference(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": full_url(resource["resourceType"], resource["id"])}
