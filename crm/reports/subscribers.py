"""Reports keep their rollups by listening: every count is made in the transaction of the
change it counts, so a rolled-back move is never counted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from crm.core.db import utcnow
from crm.messaging.events import MessageStatusChanged
from crm.patients.events import ConsentChanged
from crm.plans.events import PlanAccepted
from crm.referrals.events import ReferralSubmitted, StageEntered
from crm.referrals.sla import service_levels
from crm.reports import rollups

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    wiring.events.subscribe(ReferralSubmitted, _moved)
    wiring.events.subscribe(StageEntered, _moved)
    wiring.events.subscribe(PlanAccepted, _plan_accepted)
    wiring.events.subscribe(ConsentChanged, _consent_changed)
    wiring.events.subscribe(MessageStatusChanged, _messages_changed)


def _moved(event: ReferralSubmitted | StageEntered) -> None:
    history = event.referral.history
    levels = service_levels(current_app.config["CRM"])
    rollups.on_moved(event.referral, history[-1], history[:-1], levels)


def _plan_accepted(event: PlanAccepted) -> None:
    rollups.count_plan_accepted(event.referral, event.plan)


def _consent_changed(event: ConsentChanged) -> None:
    if not event.granted:
        rollups.count_opt_out(event.patient.agency_id, event.channel, utcnow())


def _messages_changed(event: MessageStatusChanged) -> None:
    codes = rollups.procedure_codes(c.referral_id for c in event.changes)
    rollups.count_message_changes(event.changes, codes)
