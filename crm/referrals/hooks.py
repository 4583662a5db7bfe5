"""What other features do when a referral enters a stage, however it got there.

A feature registers its hook at start-up (see `crm.features`); `move_to_stage` runs the
hooks of the stage entered, in the same transaction, after the move is recorded.
"""

from __future__ import annotations

from collections.abc import Callable

from crm.referrals.models import Referral

StageHook = Callable[[Referral], None]

_on_enter: dict[str, list[StageHook]] = {}


def on_enter(stage: str, hook: StageHook) -> None:
    hooks = _on_enter.setdefault(stage, [])
    if hook not in hooks:
        hooks.append(hook)


def run_on_enter(referral: Referral) -> None:
    for hook in _on_enter.get(referral.stage, ()):
        hook(referral)
