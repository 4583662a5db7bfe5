"""A rich referral for the FHIR export: stages moved, a document, messages both ways, an
answered check-in, an accepted plan with its informed consent."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from crm.conversation.models import ConversationMessage
from crm.core.db import utcnow
from crm.documents.models import Document
from crm.followup.models import CheckIn
from crm.messaging.models import OutboxMessage
from crm.plans.models import TreatmentPlan
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from tests.factories import Caller, Factory
from tests.helpers import API

HOSPITAL_ONLY_BODY = "Internal: coordinator reminder about the quote"
PATIENT_WROTE = "When should I arrive?"


def fhir_url(referral_id: int) -> str:
    return f"{API}/referrals/{referral_id}/fhir"


def _outbox(referral: Referral, n: int, audience: str, body: str, status: str):
    return OutboxMessage(
        idempotency_key=f"fhir-test-{referral.id}-{n}",
        referral_id=referral.id,
        agency_id=referral.agency_id,
        patient_id=referral.patient_id,
        audience=audience,
        channel="sms" if audience == "patient" else "email",
        kind="ad_hoc" if audience == "patient" else "coordinator_alert",
        to_address="+4915112345678" if audience == "patient" else "team@hospital.example",
        body_text=body,
        status=status,
        sent_at=utcnow() if status in {"sent", "delivered"} else None,
        delivered_at=utcnow() if status == "delivered" else None,
    )


def rich_referral(factory: Factory, agency: Caller, coordinator: Caller) -> Referral:
    """Moved to follow-up by the state machine alone (needs `without_clinical_guards`)."""
    referral = factory.referral(agency)
    for stage in ("awaiting_mri", "mri_review", "plan_offered", "plan_accepted"):
        move_to_stage(referral, stage, coordinator.actor)
    session = factory.session
    now = utcnow()
    session.add_all(
        [
            Document(
                referral_id=referral.id,
                kind="mri_study",
                content_type="dicom_zip",
                filename="mri.zip",
                size_bytes=123456,
                sha256="ab" * 32,
                uploaded_by_type="agency",
                uploaded_by_id=agency.actor.id,
                uploaded_by_label=agency.actor.label,
            ),
            ConversationMessage(
                referral_id=referral.id, direction="in", channel="page", body=PATIENT_WROTE
            ),
            ConversationMessage(
                referral_id=referral.id,
                direction="out",
                channel="page",
                staff_id=coordinator.actor.id,
                body="The day before admission.",
            ),
            _outbox(referral, 1, "patient", "Your plan is ready", "delivered"),
            _outbox(referral, 2, "coordinator", HOSPITAL_ONLY_BODY, "sent"),
            CheckIn(
                referral_id=referral.id,
                label="day_7",
                position=1,
                due_at=now - timedelta(days=1),
                answered_at=now,
                answers={"pain_score": 3, "fever": False, "wound": "healing_well"},
                free_text="feeling better",
            ),
            TreatmentPlan(
                referral_id=referral.id,
                version=1,
                status="accepted",
                procedure_code="microdiscectomy",
                hospital="Istanbul Spine Centre",
                surgeon="Op. Dr. Example",
                currency="EUR",
                deposit_minor=50000,
                valid_until=date.today() + timedelta(days=30),
                created_by_label=coordinator.actor.label,
                accepted_at=now,
                consent_plan_version=1,
                consent_language="de",
                consent_information_sha256="cd" * 32,
                consent_information_text="Information shown to the patient",
            ),
        ]
    )
    session.commit()
    return referral


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]
