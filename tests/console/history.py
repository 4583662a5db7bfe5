"""A referral with a history of every kind, built through the real operations: the MRI,
a review, a plan (accepted), the trip and the stay, a check-in with a red flag, a note, a
message to the patient and the patient's SMS reply (through Twilio's signed webhook)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.documents.operations import store_document
from crm.documents.samples import write_sample_mri
from crm.followup.operations import record_answers
from crm.followup.queries import check_ins_of
from crm.messaging.operations import send_ad_hoc
from crm.plans.operations import REQUIRED_CONSENTS, accept_plan, offer_plan
from crm.plans.queries import current_plan
from crm.referrals.models import Referral
from crm.referrals.operations import add_note
from crm.reviews.operations import record_review
from crm.travel import operations as travel
from crm.travel.samples import sample_trip
from crm.travel.schemas import TripArgs

TWILIO_TOKEN = "console-test-token"
REPLY_TEXT = "Thank you, my scans are on a CD, can I bring it?"
PLAN_TOTAL = "€7,200.00"  # 6,500 + 2 x 300 + 2 x 50
REVIEW = {
    "decision": "candidate",
    "findings": "L4-L5 posterolateral herniation compressing the left L5 root",
    "disc_level": "L4-L5",
    "recommended_procedure": "microdiscectomy",
    "risks_to_discuss": "infection, dural tear, recurrence",
    "notes": "",
}
RED_FLAG_ANSWERS = {
    "back_pain": 3,
    "leg_pain": 2,
    "numbness": False,
    "weakness": False,
    "wound": "healing_well",
    "bladder_or_bowel_trouble": True,
    "saddle_numbness": False,
    "fever": False,
    "free_text": "some trouble since yesterday",
}


def plan_args() -> dict[str, Any]:
    return {
        "procedure": "microdiscectomy",
        "hospital": "Istanbul Spine Centre",
        "surgeon": "Op. Dr. Murat Specialist",
        "currency": "EUR",
        "items": [
            {
                "kind": "surgery",
                "description": "Microdiscectomy",
                "quantity": 1,
                "unit_price_minor": 650_000,
            },
            {
                "kind": "hospital_night",
                "description": "Hospital night",
                "quantity": 2,
                "unit_price_minor": 30_000,
            },
            {
                "kind": "transfer",
                "description": "Airport transfers",
                "quantity": 2,
                "unit_price_minor": 5_000,
            },
        ],
        "inclusions": ["surgery", "two hospital nights"],
        "exclusions": ["flights"],
        "deposit_minor": 100_000,
        "valid_until": utcnow().date() + timedelta(days=30),
        "notes_for_patient": "",
    }


def upload_mri(referral: Referral, actor: Actor, tmp: Path, someone_else: bool = False):
    """The sample MRI, named for the patient (or, `someone_else`, for another person)."""
    patient = referral.patient
    given, family = (
        ("Maria", "Someone") if someone_else else (patient.given_name, patient.family_name)
    )
    path = write_sample_mri(tmp / f"mri-{referral.id}.dcm", given, family)
    return store_document(referral, "mri_study", "lumbar-mri.dcm", path, actor)


def walk_through_treatment(referral: Referral, staff: Actor, specialist: Actor, tmp: Path) -> None:
    """MRI, review, plan accepted, trip six days ago, stay, home, a red-flag check-in."""
    upload_mri(referral, staff, tmp)
    record_review(referral, REVIEW, specialist)
    offer_plan(referral, plan_args(), staff)
    patient = Actor("patient", referral.patient_id, f"patient {referral.patient_id}")
    accept_plan(current_plan(referral.id), dict.fromkeys(REQUIRED_CONSENTS, True), patient)
    admission = utcnow().replace(microsecond=0) - timedelta(days=6)
    travel.book_trip(referral, TripArgs().load(sample_trip(admission)), staff)
    travel.record_admission(referral, admission, staff)
    travel.record_discharge(referral, admission + timedelta(days=2), staff)
    travel.record_departure(referral, admission + timedelta(days=5), staff)
    first = check_ins_of(referral.id)[0]
    record_answers(first, RED_FLAG_ANSWERS, patient, now=first.due_at)


def talk(referral: Referral, staff: Actor) -> None:
    add_note(referral, "Called the patient: prefers email.", staff)
    send_ad_hoc(
        referral,
        {"channels": ["email"], "fallback": False, "subject": "Hello", "message": "Welcome."},
        staff,
    )


def patient_replies(app, client, phone: str, sid: str = "SMreply1", body: str = REPLY_TEXT):
    """The patient's SMS reply from `phone`, posted to the inbound webhook signed as Twilio
    signs it (the webhook finds the patient's latest referral)."""
    settings = app.config["CRM"]
    previous = settings["TWILIO_AUTH_TOKEN"]
    settings["TWILIO_AUTH_TOKEN"] = TWILIO_TOKEN
    try:
        path = "/webhooks/twilio/inbound"
        form = {"MessageSid": sid, "From": phone, "Body": body}
        url = settings["PUBLIC_BASE_URL"].rstrip("/") + path
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
        response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.get_data(as_text=True)
    finally:
        settings["TWILIO_AUTH_TOKEN"] = previous
