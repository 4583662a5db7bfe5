"""Wiring between features that the pipeline core must not import: guards and stage hooks.

Called once from create_app(); registering twice is harmless.
"""

from __future__ import annotations


def register() -> None:
    from crm.documents.operations import register_guards as document_guards
    from crm.followup.operations import ensure_check_ins
    from crm.followup.operations import register_guards as follow_up_guards
    from crm.messaging.outbox import cancel_moved_on
    from crm.plans.operations import register_guards as plan_guards
    from crm.referrals import hooks
    from crm.referrals.stages import ALL_STAGES
    from crm.reviews.operations import register_guards as review_guards
    from crm.travel.operations import register_guards as travel_guards

    hooks.on_enter("post_op", ensure_check_ins)
    for stage in ALL_STAGES:  # what a referral was owed in the stage it left is moot
        hooks.on_enter(stage, cancel_moved_on)
    document_guards()
    review_guards()
    plan_guards()
    travel_guards()
    follow_up_guards()
