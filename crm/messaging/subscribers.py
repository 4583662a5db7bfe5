"""Messaging reacts to a move: what the referral was owed in the stage it left is moot;
and to a password link issued: the staff user gets it by email."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.auth.events import PasswordLinkIssued
from crm.messaging.composing.outbox import cancel_moved_on, enqueue_staff_email
from crm.referrals.events import StageEntered

if TYPE_CHECKING:
    from crm.features import Wiring


def _moved(event: StageEntered) -> None:
    cancel_moved_on(event.referral)


def _password_link(event: PasswordLinkIssued) -> None:
    enqueue_staff_email(
        event.user,
        kind="staff_password_link",
        key=f"password-link:{event.link_id}",
        link=event.url,
    )


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StageEntered, _moved)
    wiring.events.subscribe(PasswordLinkIssued, _password_link)
