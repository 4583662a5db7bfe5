"""A knee replacement patient after surgery: the catalogue's second procedure."""

from __future__ import annotations

from crm.followup.models import CheckIn
from crm.followup.queries import check_ins_of
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from tests.factories import Caller, Factory

TO_POST_OP = (
    "awaiting_mri",
    "mri_review",
    "plan_offered",
    "plan_accepted",
    "travel_booked",
    "in_treatment",
    "post_op",
)
KNEE_CALM = {
    "knee_pain": 3,
    "knee_swelling": "about_the_same",
    "calf_pain_or_swelling": False,
    "breathless_or_chest_pain": False,
    "wound": "healing_well",
    "fever": False,
    "knee_bend": "right_angle",
    "free_text": "",
}


def knee_patient_after_surgery(
    factory: Factory, agency: Caller, coordinator: Caller, language: str = "de"
) -> Referral:
    """In post_op by the state machine alone (the `without_clinical_guards` fixture), its
    check-ins counted from now; the first one is made due now, so it is open."""
    referral = factory.referral(
        agency,
        procedure="knee_replacement",
        patient={"language": language},
        intake={"complaints": ["knee_pain", "knee_stiffness"]},
    )
    for stage in TO_POST_OP:
        move_to_stage(referral, stage, coordinator.actor)
    first = check_ins_of(referral.id)[0]
    first.due_at = referral.stage_entered_at
    factory.session.commit()
    return referral


def check_in(referral: Referral, label: str) -> CheckIn:
    return next(c for c in check_ins_of(referral.id) if c.label == label)
