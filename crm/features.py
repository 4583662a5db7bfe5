"""Wiring between features that the pipeline core must not import: guards and stage hooks.

Called once from create_app(); registering twice is harmless.
"""

from __future__ import annotations


def register() -> None:
    from crm.followup.operations import ensure_check_ins
    from crm.referrals import hooks

    hooks.on_enter("post_op", ensure_check_ins)
