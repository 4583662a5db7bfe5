"""Imports every model so metadata (and Alembic) sees the whole schema."""

from crm.agencies.models import Agency
from crm.auth.models import AgencyApiKey, StaffToken, StaffUser
from crm.catalogue.models import Procedure
from crm.core.audit import AuditEvent
from crm.core.idempotency import IdempotencyKey
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.nudges.models import NudgeRule, ScheduledNudge
from crm.patients.models import Patient, PatientConsent
from crm.referrals.models import Referral, ReferralNote, StageTransition
from crm.tasks.models import Task

__all__ = [
    "Agency",
    "AgencyApiKey",
    "AuditEvent",
    "IdempotencyKey",
    "InboundMessage",
    "NudgeRule",
    "OutboxMessage",
    "Patient",
    "PatientConsent",
    "Procedure",
    "Referral",
    "ReferralNote",
    "ScheduledNudge",
    "StaffToken",
    "StaffUser",
    "StageTransition",
    "Task",
]
