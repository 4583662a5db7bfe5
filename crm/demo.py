"""Demo data for `make run`: two agencies, staff, a dozen referrals across the pipeline.

Running it again reissues the demo credentials (revoking the old ones, resetting the
demo passwords and second factors) rather than duplicating data, so the keys and sign-ins
printed are always ones that work.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.auth.models import AgencyApiKey, StaffToken, StaffUser
from crm.auth.signin import clear_failures, end_all_sessions
from crm.core.actors import Actor, patient_actor
from crm.core.db import utcnow
from crm.documents.operations import store_document
from crm.documents.samples import write_sample_mri
from crm.documents.upload import storage
from crm.extensions import db
from crm.patients.links import base_url
from crm.patients.short_links import short_url
from crm.plans.operations import REQUIRED_CONSENTS, accept_plan, offer_plan
from crm.plans.queries import current_plan
from crm.referrals.operations import assign_owner, move_to_stage, submit_referral
from crm.referrals.stages import PIPELINE, Stage
from crm.reviews.operations import record_review
from crm.travel import operations as travel
from crm.travel.samples import sample_trip
from crm.travel.schemas import TripArgs

AGENCIES = (
    ("Berlin MedTravel GmbH", "DE", "ops@berlin-medtravel.example", 1000),
    ("Gulf Care Connect", "AE", "desk@gulfcare.example", 1200),
)
STAFF = (
    ("coordinator@hospital.example", "Elif Coordinator", "coordinator"),
    ("specialist@hospital.example", "Dr. Murat Specialist", "specialist"),
    ("manager@hospital.example", "Ayse Manager", "manager"),
    ("admin@hospital.example", "Deniz Admin", "admin"),
)
# The demo agency's user for the agency panel (/agency/): (agency index, email, name).
AGENCY_USER = (0, "agency@demo.example", "Katrin Agent")
# (agency index or None, given, family, country, phone, language, zone, final stage)
PATIENTS = (
    (0, "Jonas", "Weber", "DE", "+4915112345678", "de", "Europe/Berlin", Stage.ENQUIRY),
    (0, "Anna", "Schmidt", "DE", "+4915212345679", "de", "Europe/Berlin", Stage.AWAITING_MRI),
    (1, "Omar", "Haddad", "AE", "+971501234567", "ar", "Asia/Dubai", Stage.MRI_REVIEW),
    (1, "Layla", "Nasser", "AE", "+971521234568", "ar", "Asia/Dubai", Stage.PLAN_OFFERED),
    (0, "Thomas", "Becker", "AT", "+436641234567", "de", "Europe/Vienna", Stage.PLAN_ACCEPTED),
    (1, "Yousef", "Karim", "AE", "+971551234569", "en", "Asia/Dubai", Stage.TRAVEL_BOOKED),
    (None, "Olga", "Ivanova", "RU", "+79161234567", "ru", "Europe/Moscow", Stage.IN_TREATMENT),
    (0, "Lukas", "Fischer", "DE", "+4917612345670", "de", "Europe/Berlin", Stage.POST_OP),
    (None, "James", "Miller", "GB", "+447700900123", "en", "Europe/London", Stage.FOLLOW_UP),
    (1, "Fatima", "Rahman", "AE", "+971561234560", "ar", "Asia/Dubai", Stage.COMPLETED),
    (0, "Sabine", "Wolf", "DE", "+4916012345671", "de", "Europe/Berlin", Stage.LOST),
    (None, "Mehmet", "Yilmaz", "NL", "+31612345678", "tr", "Europe/Amsterdam", Stage.ON_HOLD),
)


def _ensure_agency(name: str, country: str, email: str, commission: int) -> Agency:
    agency = db.session.scalar(select(Agency).where(Agency.name == name))
    if agency is None:
        agency = Agency(
            name=name, country=country, contact_email=email, commission_basis_points=commission
        )
        db.session.add(agency)
        db.session.flush()
    return agency


def _ensure_staff(email: str, name: str, role: str) -> StaffUser:
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == email))
    return user or auth.create_staff_user(email, name, role)


def _ensure_agency_user(agency: Agency, email: str, name: str) -> StaffUser:
    """An agency's user (role `agency`), who signs in where staff do and lands in the
    agency's panel."""
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == email))
    if user is None:
        user = StaffUser(
            email=email, name=name, role="agency", agency_id=agency.id, time_zone="Europe/Berlin"
        )
        db.session.add(user)
        db.session.flush()
    return user


def _demo_password() -> str:
    """Four random words' worth of letters and digits: printed once, reset on every run."""
    return "-".join(secrets.token_urlsafe(6) for _ in range(3))


def _reset_sign_in(user: StaffUser) -> str:
    """A new password, sessions ended, the second factor forgotten (admins and managers
    enrol again at their first sign-in), the lockout cleared."""
    password = _demo_password()
    auth.set_password(user, password)
    end_all_sessions(user)
    clear_failures(user.email)
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    return password


def _revoke_demo_credentials() -> None:
    now = utcnow()
    for model in (AgencyApiKey, StaffToken):
        for credential in db.session.scalars(
            select(model).where(model.label == "demo", model.revoked_at.is_(None))
        ):
            credential.revoked_at = now


def _walk_to(referral, final: Stage, actor: Actor, specialist: Actor) -> None:
    """Through the pipeline the way people would: a review, a plan, an acceptance."""
    path = PIPELINE[1 : PIPELINE.index(final) + 1] if final in PIPELINE else PIPELINE[1:3]
    for stage in path:
        if stage is Stage.MRI_REVIEW:
            _upload_sample_mri(referral, actor)  # moves the referral to mri_review
        elif stage is Stage.PLAN_OFFERED:
            record_review(referral, DEMO_REVIEW, specialist)
            offer_plan(referral, _demo_plan(), actor)
        elif stage is Stage.PLAN_ACCEPTED:
            consents = dict.fromkeys(REQUIRED_CONSENTS, True)
            patient = patient_actor(referral.patient_id)
            accept_plan(current_plan(referral.id), consents, patient)
        elif stage in _STAY_STEPS:
            _stay_step(referral, stage, final, actor)
        else:
            move_to_stage(referral, stage, actor)
    if final is Stage.LOST:
        move_to_stage(referral, Stage.LOST, actor, reason="price", note="chose to wait a year")
    elif final is Stage.ON_HOLD:
        move_to_stage(referral, Stage.ON_HOLD, actor, note="patient travelling until next month")


# The stages that record a fact of the trip are reached through the operation recording it.
_STAY_STEPS = (Stage.TRAVEL_BOOKED, Stage.IN_TREATMENT, Stage.POST_OP, Stage.FOLLOW_UP)


def _stay_step(referral, stage: Stage, final: Stage, actor: Actor) -> None:
    """A trip in two weeks for a referral stopping at travel_booked; one that began six days
    ago (admitted, two nights, three in the city) for those that go further."""
    past = final is not Stage.TRAVEL_BOOKED
    admission = utcnow().replace(microsecond=0) + timedelta(days=-6 if past else 14)
    if stage is Stage.TRAVEL_BOOKED:
        travel.book_trip(referral, TripArgs().load(sample_trip(admission)), actor)
    elif stage is Stage.IN_TREATMENT:
        travel.record_admission(referral, admission, actor)
    elif stage is Stage.POST_OP:
        travel.record_discharge(referral, admission + timedelta(days=2), actor)
    else:
        travel.record_departure(referral, admission + timedelta(days=5), actor)


def _upload_sample_mri(referral, actor: Actor) -> None:
    patient = referral.patient
    temp = storage().new_temp()
    temp.close()
    write_sample_mri(Path(temp.name), patient.given_name, patient.family_name)
    store_document(referral, "mri_study", "lumbar-mri.dcm", Path(temp.name), actor)


DEMO_REVIEW = {
    "decision": "candidate",
    "findings": "L4-L5 posterolateral herniation compressing the left L5 root",
    "disc_level": "L4-L5",
    "recommended_procedure": "microdiscectomy",
    "risks_to_discuss": "infection, dural tear, recurrence",
    "notes": "",
}


def _demo_plan() -> dict:
    return {
        "procedure": "microdiscectomy",
        "hospital": "Istanbul Spine Centre",
        "surgeon": "Op. Dr. Murat Specialist",
        "currency": "EUR",
        "items": [
            {
                "kind": "surgery",
                "description": "Microdiscectomy, L4-L5",
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
        "inclusions": ["surgery", "anaesthesia", "two hospital nights", "transfers"],
        "exclusions": ["flights", "hotel"],
        "deposit_minor": 100_000,
        "valid_until": utcnow().date() + timedelta(days=30),
        "notes_for_patient": "",
    }


def _referral_payload(row: tuple) -> dict:
    _, given, family, country, phone, language, zone, _ = row
    return {
        "procedure": "microdiscectomy",
        "agency_reference": f"DEMO-{given.upper()}-{family.upper()}",
        "patient": {
            "given_name": given,
            "family_name": family,
            "country": country,
            "phone": phone,
            "email": f"{given.lower()}.{family.lower()}@patient.example",
            "language": language,
            "time_zone": zone,
            "sex": "unknown",
            "consents": {"sms": True, "email": True, "source": "demo intake form"},
        },
        "intake": {
            "complaints": ["severe_persistent_low_back_pain", "radiating_leg_pain"],
            "symptom_duration_weeks": 20,
            "treatments_tried": [
                {"treatment": "physical_therapy", "duration_weeks": 8},
                {"treatment": "medication", "duration_weeks": 12},
            ],
            "pain_score": 7,
        },
    }


def _load_referrals(agencies: list[Agency], coordinator: StaffUser, specialist: StaffUser) -> int:
    staff_actor = Actor("staff", coordinator.id, coordinator.name, role=coordinator.role)
    specialist_actor = Actor("staff", specialist.id, specialist.name, role=specialist.role)
    created = 0
    for row in PATIENTS:
        agency = agencies[row[0]] if row[0] is not None else None
        actor = (
            Actor("agency", agency.id, agency.name, agency_id=agency.id) if agency else staff_actor
        )
        payload = _referral_payload(row)
        if _reference_exists(agency, payload["agency_reference"]):
            continue
        referral = submit_referral(payload, actor)
        assign_owner(referral, coordinator.id, staff_actor)
        _walk_to(referral, row[7], staff_actor, specialist_actor)
        created += 1
    return created


def _reference_exists(agency: Agency | None, reference: str) -> bool:
    from crm.referrals.models import Referral

    same_agency = Referral.agency_id == agency.id if agency else Referral.agency_id.is_(None)
    statement = select(Referral.id).where(Referral.agency_reference == reference, same_agency)
    return db.session.scalar(statement) is not None


def load_demo_data() -> list[str]:
    _revoke_demo_credentials()
    agencies = [_ensure_agency(*row) for row in AGENCIES]
    staff = [_ensure_staff(*row) for row in STAFF]
    created = _load_referrals(agencies, staff[0], staff[1])
    lines = [f"demo: {created} referrals created"]
    for agency in agencies:
        issued = auth.issue_agency_key(agency, label="demo")
        lines.append(f"agency key  {agency.name:<24} {issued.secret}")
    for user in staff:
        issued = auth.issue_staff_token(user, label="demo")
        lines.append(f"staff token {user.role:<24} {issued.secret}")
    for user in staff:
        password = _reset_sign_in(user)
        lines.append(f"sign-in     {user.role:<12} {user.email:<30} {password}")
    lines.extend(_patient_lines())
    console = f"{base_url()}/console/"
    lines.append(f"console     {console}  (admin and manager set up an authenticator app")
    lines.append("            at their first sign-in)")
    lines.extend(_panel_lines(agencies))
    return lines


def _panel_lines(agencies: list[Agency]) -> list[str]:
    """The demo agency's user, for the agency panel: signs in on the console's sign-in page
    and lands on /agency/."""
    index, email, name = AGENCY_USER
    user = _ensure_agency_user(agencies[index], email, name)
    password = _reset_sign_in(user)
    return [
        f"panel       agency       {user.email:<30} {password}",
        f"panel       {base_url()}/agency/  ({agencies[index].name}'s panel; sign in at"
        f" {base_url()}/console/sign-in)",
    ]


def _patient_lines() -> list[str]:
    """Each demo patient's page, by a short link as an SMS would carry it, on the public
    address (`CRM_PUBLIC_BASE_URL`, which make run/serve derive from HOST and PORT)."""
    from crm.referrals.models import Referral

    referrals = db.session.scalars(
        select(Referral).where(Referral.agency_reference.like("DEMO-%")).order_by(Referral.id)
    )
    return [
        f"patient     {r.stage:<14} {r.patient.language} {r.patient.full_name:<16} "
        f"{short_url(r.id)}"
        for r in referrals
    ]
