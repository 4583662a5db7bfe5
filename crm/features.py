"""Wiring between features that the pipeline core must not import: guards and stage hooks.

Called once from create_app(); registering twice is harmless.
"""

from __future__ import annotations


def register() -> None:
    from crm.documents.operations import register_guards as document_guards
    from crm.followup.operations import ensure_check_ins
    from crm.followup.operations import register_guards as follow_up_guards
    from crm.plans.operations import register_guards as plan_guards
    from crm.referrals import hooks
    from crm.reviews.operations import register_guards as review_guards
    from crm.travel.operations import register_guards as travel_guards

    hooks.on_enter("post_op", ensure_check_ins)
    document_guards()
    review_guards()
    plan_guards()
    travel_guards()
    follow_up_guards()
