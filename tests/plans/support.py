"""Referrals ready for a review or a plan, reached through the real operations."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from crm.core.actors import Actor
from crm.documents.operations import store_document
from crm.documents.samples import write_sample_mri
from crm.documents.upload import storage
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.reviews.operations import record_review
from tests.factories import Caller, Factory

CANDIDATE = {
    "decision": "candidate",
    "findings": "L5-S1 herniation",
    "disc_level": "L5-S1",
    "recommended_procedure": "microdiscectomy",
    "risks_to_discuss": "",
    "notes": "",
}


def upload_sample_mri(referral: Referral, actor) -> None:
    """An MRI through the real upload path (which moves a waiting referral to review)."""
    patient = referral.patient
    temp = storage().new_temp()
    temp.close()
    write_sample_mri(
        Path(temp.name), patient.given_name, patient.family_name, patient.date_of_birth
    )
    store_document(referral, "mri_study", "study.dcm", Path(temp.name), actor)


def in_review(factory: Factory, agency: Caller, coordinator: Caller) -> Referral:
    referral = factory.referral(agency)
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    upload_sample_mri(referral, agency.actor)
    assert referral.stage == "mri_review"
    factory.session.commit()
    return referral


def reviewed_as_candidate(factory: Factory, agency: Caller, coordinator: Caller) -> Referral:
    referral = in_review(factory, agency, coordinator)
    record_review(referral, dict(CANDIDATE), factory.staff("specialist").actor)
    factory.session.commit()
    return referral


def plan_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "procedure": "microdiscectomy",
        "hospital": "Istanbul Spine Centre",
        "surgeon": "Op. Dr. Example",
        "currency": "EUR",
        "items": [
            {"kind": "surgery", "description": "Microdiscectomy", "unit_price_minor": 650000},
            {
                "kind": "hospital_night",
                "description": "Night",
                "quantity": 2,
                "unit_price_minor": 30000,
            },
        ],
        "inclusions": ["surgery", "anaesthesia"],
        "exclusions": ["flights"],
        "deposit_minor": 100000,
        "valid_until": (date.today() + timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return body


CONSENTS = {"treatment_information_acknowledged": True, "data_processing": True}


def patient_of(referral: Referral) -> Actor:
    return Actor("patient", referral.patient_id, "patient")


def offer(client, caller: Caller, referral: Referral, **overrides: Any):
    """POST a plan version through the API."""
    return client.post(
        f"/api/v1/referrals/{referral.id}/plans",
        json=plan_body(**overrides),
        headers=caller.headers(),
    )


def review(client, specialist: Caller, referral: Referral, **body: Any):
    """POST a specialist review (a candidate unless `body` says otherwise)."""
    return client.post(
        f"/api/v1/referrals/{referral.id}/reviews",
        json={**CANDIDATE, **body},
        headers=specialist.headers(),
    )
