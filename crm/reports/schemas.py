"""The reports' filters and documents. Every report takes the same filters; `format=csv`
answers the same rows as text/csv instead of JSON."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.core.schemas import QueryArgs
from crm.referrals.schemas import ROW_ID


class ReportArgs(QueryArgs):
    date_from = fields.Date(
        data_key="from", metadata={"description": "first day counted (UTC), inclusive"}
    )
    date_to = fields.Date(
        data_key="to", metadata={"description": "last day counted (UTC), inclusive"}
    )
    agency_id = fields.Integer(validate=ROW_ID)
    procedure = fields.String(metadata={"description": "a catalogue code"})
    format = fields.String(
        load_default="json",
        validate=validate.OneOf(["json", "csv"]),
        metadata={"description": "csv: the same rows as text/csv (one header line)"},
    )

    @validates_schema
    def _range(self, data, **_kwargs):
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise ValidationError("must not be after 'to'", field_name="from")


class FunnelStageSchema(Schema):
    stage = fields.String(required=True)
    reached = fields.Integer(required=True, metadata={"description": "referrals reaching it"})
    conversion = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "reached / reached by the stage before; null for the first"},
    )


class LostReasonSchema(Schema):
    reason = fields.String(required=True)
    referrals = fields.Integer(required=True)


class FunnelSchema(Schema):
    stages = fields.List(fields.Nested(FunnelStageSchema), required=True)
    lost = fields.List(fields.Nested(LostReasonSchema), required=True)


class TimeInStageRowSchema(Schema):
    month = fields.String(required=True, metadata={"example": "2026-03"})
    stage = fields.String(required=True)
    visits = fields.Integer(required=True)
    median_hours = fields.Float(required=True)
    p90_hours = fields.Float(required=True)


class TimeInStageSchema(Schema):
    approximation = fields.String(required=True)
    rows = fields.List(fields.Nested(TimeInStageRowSchema), required=True)


class MoneySchema(Schema):
    currency = fields.String(required=True, metadata={"example": "EUR"})
    amount_minor = fields.Integer(required=True)


class AgencyRowSchema(Schema):
    agency_id = fields.Integer(required=True, metadata={"description": "0: direct referrals"})
    referrals = fields.Integer(required=True)
    plan_accepted = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    conversion_plan_accepted = fields.Float(allow_none=True, required=True)
    conversion_completed = fields.Float(allow_none=True, required=True)
    accepted_value = fields.List(fields.Nested(MoneySchema), required=True)
    first_response_median_hours = fields.Float(allow_none=True, required=True)


class AgenciesSchema(Schema):
    agencies = fields.List(fields.Nested(AgencyRowSchema), required=True)


class SuppressedSchema(Schema):
    reason = fields.String(required=True)
    messages = fields.Integer(required=True)


class MessagingRowSchema(Schema):
    channel = fields.String(required=True)
    queued = fields.Integer(required=True)
    sent = fields.Integer(required=True, metadata={"description": "handed to the provider"})
    delivered = fields.Integer(required=True)
    failed = fields.Integer(required=True, metadata={"description": "failed or undelivered"})
    suppressed = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    sms_segments = fields.Integer(required=True)
    opt_outs = fields.Integer(required=True)


class MessagingSchema(Schema):
    channels = fields.List(fields.Nested(MessagingRowSchema), required=True)
    suppressed = fields.List(fields.Nested(SuppressedSchema), required=True)


class SlaLevelSchema(Schema):
    service_level = fields.String(
        required=True, metadata={"example": "first_response", "description": "crm.referrals.sla"}
    )
    stage = fields.String(required=True)
    allowed_hours = fields.Float(required=True, metadata={"description": "the SLA in force"})
    finished = fields.Integer(required=True, metadata={"description": "visits that ended"})
    within = fields.Integer(required=True, metadata={"description": "ended within the SLA"})
    breached = fields.Integer(required=True, metadata={"description": "ended after it"})
    on_time_share = fields.Float(allow_none=True, required=True)
    median_hours = fields.Float(allow_none=True, required=True)
    open_past_due = fields.Integer(
        required=True, metadata={"description": "in the stage right now and past due"}
    )


class SlaBreachSchema(Schema):
    service_level = fields.String(required=True)
    stage = fields.String(required=True)
    referral_id = fields.Integer(required=True)
    reference = fields.String(required=True, metadata={"example": "R-000013"})
    agency_id = fields.Integer(required=True, metadata={"description": "0: direct referrals"})
    agency = fields.String(allow_none=True, required=True)
    procedure = fields.String(required=True)
    entered_at = fields.DateTime(required=True)
    left_at = fields.DateTime(
        allow_none=True, required=True, metadata={"description": "null: still waiting"}
    )
    hours_over = fields.Float(required=True, metadata={"description": "hours past the due time"})


class SlaSchema(Schema):
    levels = fields.List(fields.Nested(SlaLevelSchema), required=True)
    breaches = fields.List(
        fields.Nested(SlaBreachSchema),
        required=True,
        metadata={"description": "open visits past due first, then finished ones, newest first"},
    )
    breaches_total = fields.Integer(required=True, metadata={"description": "listed or not"})
    limit = fields.Integer(required=True, metadata={"description": "most breaches listed"})
