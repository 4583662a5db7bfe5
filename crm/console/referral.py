"""The referral page: who the patient is, where the case stands, and (in the included
sections) its timeline and the actions its stage allows."""

from __future__ import annotations

from flask import render_template

from crm.auth.guards import current_actor
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core.db import utcnow
from crm.referrals.queries import referral_detail
from crm.referrals.stages import Stage


@console.get("/referrals/<int:referral_id>")
@staff_page()
def referral(referral_id: int):
    detail = referral_detail(current_actor(), referral_id)  # 404 page when missing; audited
    return render_template(
        "console/referral.html",
        referral=detail,
        days_in_stage=detail.time_in_stages.get(detail.stage, 0) // 86400,
        now=utcnow(),
    )


@console.app_template_filter("stage")
def stage_label(stage: str) -> str:
    """`mri_review` -> `MRI review`: a stage as the console names it."""
    return STAGE_LABELS.get(stage, stage.replace("_", " ").capitalize())


STAGE_LABELS = {
    Stage.ENQUIRY: "Enquiry",
    Stage.AWAITING_MRI: "Awaiting MRI",
    Stage.MRI_REVIEW: "MRI review",
    Stage.PLAN_OFFERED: "Plan offered",
    Stage.PLAN_ACCEPTED: "Plan accepted",
    Stage.TRAVEL_BOOKED: "Travel booked",
    Stage.IN_TREATMENT: "In treatment",
    Stage.POST_OP: "Post-op (in the city)",
    Stage.FOLLOW_UP: "Follow-up (home)",
    Stage.COMPLETED: "Completed",
    Stage.LOST: "Lost",
    Stage.ON_HOLD: "On hold",
}
