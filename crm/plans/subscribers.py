"""Plans own the facts of acceptance: a version accepted, and with both consents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.plans.queries import accepted_with_consent
from crm.referrals.stages import PLAN_ACCEPTANCE_RECORDED, PLAN_ACCEPTED_WITH_CONSENT

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    wiring.guards.switch_on(PLAN_ACCEPTANCE_RECORDED, accepted_with_consent)
    wiring.guards.switch_on(PLAN_ACCEPTED_WITH_CONSENT, accepted_with_consent)
