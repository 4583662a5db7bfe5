"""Imports every model so metadata (and Alembic) sees the whole schema."""

from crm.agencies.models import Agency
from crm.agency_messages.models import AgencyMessage
from crm.auth.models import (
    AgencyApiKey,
    PasswordLink,
    SignInThrottle,
    StaffSession,
    StaffToken,
    StaffUser,
)
from crm.catalogue.models import Procedure
from crm.commission.models import (
    CommissionContract,
    CommissionEntry,
    CommissionStatement,
    StatementLine,
)
from crm.conversation.models import ConversationMessage, InboundRead
from crm.core.audit import AuditEvent
from crm.core.cache import ConfigGeneration
from crm.core.idempotency import IdempotencyKey
from crm.documents.models import Document
from crm.duplicates.models import DuplicateMatch
from crm.followup.models import CheckIn
from crm.messaging.models import InboundMessage, OutboxMessage, TemplateOverride
from crm.nudges.models import NudgeRule, ScheduledNudge
from crm.patients.models import Patient, PatientConsent, PatientLink
from crm.plans.models import PlanLineItem, TreatmentPlan
from crm.privacy.models import LegalHold, PatientErasure
from crm.referrals.models import Referral, ReferralNote, StageTransition
from crm.reports.models import OptOutDaily, PlanDaily, StageDaily, StageDuration
from crm.reviews.models import Review
from crm.tasks.models import Task
from crm.travel.models import Flight, Trip
from crm.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookSecret,
)

__all__ = [
    "Agency",
    "AgencyApiKey",
    "AgencyMessage",
    "AuditEvent",
    "CheckIn",
    "CommissionContract",
    "CommissionEntry",
    "CommissionStatement",
    "ConfigGeneration",
    "ConversationMessage",
    "Document",
    "DuplicateMatch",
    "Flight",
    "IdempotencyKey",
    "InboundMessage",
    "InboundRead",
    "LegalHold",
    "NudgeRule",
    "OptOutDaily",
    "OutboxMessage",
    "PasswordLink",
    "Patient",
    "PatientConsent",
    "PatientErasure",
    "PatientLink",
    "PlanDaily",
    "PlanLineItem",
    "Procedure",
    "Referral",
    "ReferralNote",
    "Review",
    "ScheduledNudge",
    "SignInThrottle",
    "StaffSession",
    "StaffToken",
    "StaffUser",
    "StageDaily",
    "StageDuration",
    "StageTransition",
    "StatementLine",
    "Task",
    "TemplateOverride",
    "TreatmentPlan",
    "Trip",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookSecret",
]
