"""Service levels: how long a referral may wait in a stage before it is late.

Three promises, each a stage whose visit must end in time: a new enquiry answered
(`enquiry`, CRM_FIRST_RESPONSE_SLA_HOURS), an MRI reviewed (`mri_review`,
CRM_REVIEW_SLA_HOURS), an offered plan answered (`plan_offered`, CRM_PLAN_ANSWER_SLA_DAYS).
The board, Today and the SLA report all read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crm.referrals.stages import Stage


@dataclass(frozen=True)
class ServiceLevel:
    name: str  # first_response | mri_review | plan_answer
    stage: Stage
    allowed: timedelta

    def due_at(self, entered_at: datetime) -> datetime:
        return entered_at + self.allowed

    def breached(self, entered_at: datetime, left_at: datetime) -> bool:
        return left_at - entered_at > self.allowed


def service_levels(settings: dict[str, Any]) -> tuple[ServiceLevel, ...]:
    """The three service levels under the given settings (`app.config["CRM"]`)."""
    return (
        ServiceLevel(
            "first_response",
            Stage.ENQUIRY,
            timedelta(hours=settings["FIRST_RESPONSE_SLA_HOURS"]),
        ),
        ServiceLevel("mri_review", Stage.MRI_REVIEW, timedelta(hours=settings["REVIEW_SLA_HOURS"])),
        ServiceLevel(
            "plan_answer", Stage.PLAN_OFFERED, timedelta(days=settings["PLAN_ANSWER_SLA_DAYS"])
        ),
    )


def level_for(stage: str, settings: dict[str, Any]) -> ServiceLevel | None:
    """The service level a visit of `stage` is held to, if any."""
    return next((s for s in service_levels(settings) if s.stage == stage), None)
