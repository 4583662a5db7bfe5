"""The referral page: who the patient is, where the case stands, and (in the included
sections) its timeline and the actions its stage allows."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from crm.auth.guards import current_actor, role_allows
from crm.console.auth import current_user, staff_page
from crm.console.views import console
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.referrals.queries import ReferralDetail, referral_detail
from crm.referrals.stages import PIPELINE, LostReason, Stage
from crm.staff.queries import list_staff

OWNER_ROLES = ["coordinator", "manager", "admin"]  # who may own a referral (assign_owner)


@console.get("/referrals/<int:referral_id>")
@staff_page()
def referral(referral_id: int):
    from crm.console.conversation import conversation_panel
    from crm.console.timeline import KINDS, referral_timeline

    actor = current_actor()
    detail = referral_detail(actor, referral_id)  # 404 page when missing; audited once
    can = _actions(detail, actor)
    return render_template(
        "console/referral.html",
        referral=detail,
        days_in_stage=detail.time_in_stages.get(detail.stage, 0) // 86400,
        now=utcnow(),
        timeline=referral_timeline(detail.referral, actor, request.args.get("kind", "all")),
        timeline_kinds=KINDS,
        conversation=conversation_panel(detail.referral, actor),
        can=can,
        owners=_owners() if can["assign"] else [],
        move_targets=_in_pipeline_order(detail.allowed_transitions),
        lost_reasons=[(str(r), str(r).replace("_", " ").capitalize()) for r in LostReason],
        open_duplicates=_open_duplicates(referral_id, actor),
    )


def _open_duplicates(referral_id: int, actor: Actor) -> list[int]:
    """Open likely-duplicate matches of this referral, for those who decide them."""
    from crm.console.duplicates import DECIDERS
    from crm.duplicates.queries import open_match_ids_of_referral

    return open_match_ids_of_referral(referral_id) if role_allows(actor, DECIDERS) else []


def _actions(detail: ReferralDetail, actor: Actor) -> dict[str, bool]:
    """Which forms this viewer gets: the API endpoint's roles, and what the stage allows."""
    from crm.console import referral_actions as forms
    from crm.messaging.operations import MRI_WANTED_STAGES

    sends = role_allows(actor, forms.MESSAGE_SENDERS)
    return {
        "assign": role_allows(actor, forms.OWNER_SETTERS),
        "move": role_allows(actor, forms.MOVERS) and bool(detail.allowed_transitions),
        "note": True,
        "message": sends,
        "request_mri": sends and detail.stage in MRI_WANTED_STAGES,
    }


def _in_pipeline_order(targets: list[str]) -> list[str]:
    """Forward first (the next stage is the default), then on hold, then lost."""
    order = [*PIPELINE, Stage.ON_HOLD, Stage.LOST]
    return sorted(targets, key=lambda t: order.index(Stage(t)))


def _owners() -> list[tuple[int, str]]:
    """Active staff who may own a referral, the viewer first ("Me")."""
    me = current_user()
    people: list[Any] = list_staff({"active": True, "role": OWNER_ROLES})
    mine = [(me.id, f"Me ({me.name})")] if me and any(p.id == me.id for p in people) else []
    return mine + [(p.id, f"{p.name} ({p.role})") for p in people if not me or p.id != me.id]


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
