"""Messaging reacts to a move: what the referral was owed in the stage it left is moot;
to a password link issued: the staff user gets it by email; and to a webhook endpoint
switched off: the agency gets an email saying why; and to a coordinator's message in a
referral's agency thread: the agency gets an email pointing to its panel (the text stays
behind the sign-in)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.agencies.events import WebhookEndpointDisabled
from crm.agencies.models import Agency
from crm.agency_messages.events import AgencyMessagePosted
from crm.auth.events import PasswordLinkIssued
from crm.extensions import db
from crm.messaging.composing.outbox import (
    cancel_moved_on,
    enqueue,
    enqueue_agency_email,
    enqueue_staff_email,
)
from crm.patients.links import base_url
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


def _webhook_disabled(event: WebhookEndpointDisabled) -> None:
    agency = db.session.get(Agency, event.agency_id)
    if agency is None:
        return
    enqueue_agency_email(
        agency,
        kind="webhook_disabled_agency",
        # one email per switching off: the same event handled twice writes nothing new
        key=f"webhook-disabled:{event.endpoint_id}:{event.disabled_at:%Y%m%dT%H%M%S%f}",
        link=f"{base_url()}/agency/webhooks",
        message=f"{event.url}\n{event.reason}",
    )


def _agency_told(event: AgencyMessagePosted) -> None:
    if event.direction != "to_agency":
        return
    enqueue(
        event.referral,
        kind="agency_message_agency",
        audience="agency",
        channels=["email"],
        key=f"agency-message:{event.message_id}",
    )


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(StageEntered, _moved)
    wiring.events.subscribe(PasswordLinkIssued, _password_link)
    wiring.events.subscribe(WebhookEndpointDisabled, _webhook_disabled)
    wiring.events.subscribe(AgencyMessagePosted, _agency_told)
