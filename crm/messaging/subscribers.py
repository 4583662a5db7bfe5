"""Messaging reacts to a move: what the referral was owed in the stage it left is moot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.messaging.composing.outbox import cancel_moved_on
from crm.referrals.events import StageEntered

if TYPE_CHECKING:
    from crm.features import Wiring


def _moved(event: StageEntered) -> None:
    cancel_moved_on(event.referral)


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StageEntered, _moved)
